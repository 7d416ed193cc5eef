"""Events of the outreach service: IBM units, recovery agents, outreach, screening, consent.

Outreach owns identities; none of them travels in these events. A client is only ever its
``client_id``.
"""

from datetime import date
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from pulih.contracts.codes import (
    AgeBand,
    AgentDeactivationReason,
    CameThrough,
    ConsentScope,
    Count,
    Instrument,
    OutreachKind,
    Recommendation,
    RiskLevel,
    Sex,
    Substance,
    VillageCode,
)
from pulih.contracts.event import Event

AssistScore = Annotated[int, Field(ge=0, le=39)]
"""An ASSIST v3 specific substance involvement score (0-39)."""


class _OutreachEvent(Event):
    service_name: ClassVar[str] = "outreach"


class UnitEstablished(_OutreachEvent):
    """An IBM unit (a village's community rehabilitation group) was set up."""

    about: ClassVar[str] = "unit_id"

    unit_id: UUID
    name: Annotated[str, Field(min_length=1, max_length=200)]
    """The unit's name (a place or group name, never a person's)."""
    village_code: VillageCode
    established_on: date


class AgentRegistered(_OutreachEvent):
    """A trained recovery agent (agen pemulihan) joined a unit."""

    about: ClassVar[str] = "agent_id"

    agent_id: UUID
    unit_id: UUID
    trained_on: date


class AgentDeactivated(_OutreachEvent):
    """A recovery agent stopped working for a unit."""

    about: ClassVar[str] = "agent_id"

    agent_id: UUID
    unit_id: UUID
    on: date
    reason_code: AgentDeactivationReason


class OutreachActivityRecorded(_OutreachEvent):
    """A recovery agent held an outreach activity and counted the people reached."""

    about: ClassVar[str] = "unit_id"

    activity_id: UUID
    unit_id: UUID
    agent_id: UUID
    kind: OutreachKind
    held_on: date
    people_reached: Count


class ClientRegistered(_OutreachEvent):
    """A person became a client of a unit (their identity stays in outreach's store)."""

    about: ClassVar[str] = "client_id"

    client_id: UUID
    unit_id: UUID
    registered_on: date
    sex: Sex
    age_band: AgeBand
    came_through: CameThrough


class ConsentRecorded(_OutreachEvent):
    """A client gave consent for one or more scopes."""

    about: ClassVar[str] = "client_id"

    consent_id: UUID
    client_id: UUID
    scopes: Annotated[list[ConsentScope], Field(min_length=1)]
    given_on: date
    expires_on: date | None = None


class ConsentWithdrawn(_OutreachEvent):
    """A client withdrew a consent they had given."""

    about: ClassVar[str] = "client_id"

    consent_id: UUID
    client_id: UUID
    on: date


class SubstanceResult(BaseModel):
    """One substance's ASSIST score and the risk level it means."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    substance: Substance
    score: AssistScore
    risk: RiskLevel


class ClientScreened(_OutreachEvent):
    """A recovery agent screened a client with ASSIST."""

    about: ClassVar[str] = "client_id"

    screening_id: UUID
    client_id: UUID
    unit_id: UUID
    agent_id: UUID
    screened_on: date
    instrument: Instrument
    substances: list[SubstanceResult]
    """One result per substance ever used; empty when the client never used any."""
    injected_last_3_months: bool
    overall_risk: RiskLevel
    recommendation: Recommendation


class ClientErased(_OutreachEvent):
    """A client's identity key was destroyed: their identity is gone everywhere."""

    about: ClassVar[str] = "client_id"

    client_id: UUID
    on: date
