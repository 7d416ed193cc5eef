"""What outreach's API takes and gives back (request and response bodies)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from pulih.contracts.codes import (
    AgeBand,
    AgentDeactivationReason,
    CameThrough,
    ConsentScope,
    OutreachKind,
    Recommendation,
    RiskLevel,
    Sex,
    VillageCode,
)
from pulih.outreach.domain.assist import Injecting, Substance
from pulih.outreach.domain.duplicates import Resolution


def _utc(moment: datetime) -> datetime:
    # SQLite gives back naive datetimes for DateTime(timezone=True): they were stored in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
"""A moment in UTC, whichever store it came from."""


class Body(BaseModel):
    """Request bodies refuse unknown fields, so a typo is an error rather than ignored."""

    model_config = ConfigDict(extra="forbid")


class EstablishUnit(Body):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    village_code: VillageCode
    established_on: date


class UnitView(BaseModel):
    unit_id: UUID
    name: str
    village_code: str
    established_on: date
    active_agents: int = 0


class RegisterAgent(Body):
    trained_on: date
    agent_id: UUID | None = Field(None, description="a device-made id; one is assigned if absent")


class AgentView(BaseModel):
    agent_id: UUID
    unit_id: UUID
    trained_on: date
    active: bool
    deactivated_on: date | None = None


class DeactivateAgent(Body):
    on: date
    reason_code: AgentDeactivationReason


class RecordOutreach(Body):
    agent_id: UUID
    kind: OutreachKind
    held_on: date
    people_reached: Annotated[int, Field(ge=0, le=100_000)]


class OutreachView(RecordOutreach):
    activity_id: UUID
    unit_id: UUID


class Identity(Body):
    """Who the client is. Stored only in outreach, each field encrypted; never in an event."""

    full_name: Annotated[str, Field(min_length=1, max_length=200)]
    nik: Annotated[str, Field(description="16-digit Nomor Induk Kependudukan")]
    birth_date: date
    sex: Sex
    phone: Annotated[str | None, Field(max_length=30)] = None
    address: Annotated[str | None, Field(max_length=500)] = None


class RegisterClient(Body):
    unit_id: UUID
    registered_on: date
    came_through: CameThrough
    identity: Identity


class ClientView(BaseModel):
    """A client as everyone but an identity read sees them: pseudonymous."""

    client_id: UUID
    unit_id: UUID
    registered_on: date
    sex: Sex
    age_band: AgeBand
    came_through: CameThrough
    erased: bool = False


class IdentityView(BaseModel):
    client_id: UUID
    unit_id: UUID
    full_name: str
    nik: str
    birth_date: date
    sex: Sex
    phone: str | None
    address: str | None


class RecordConsent(Body):
    scopes: Annotated[list[ConsentScope], Field(min_length=1)]
    given_on: date
    expires_on: date | None = None


class ConsentView(BaseModel):
    consent_id: UUID
    client_id: UUID
    scopes: list[ConsentScope]
    given_on: date
    expires_on: date | None
    withdrawn_on: date | None


class WithdrawConsent(Body):
    on: date


class SubstanceAnswersIn(Body):
    """ASSIST v3 answers for one substance. Q1 = ever used; Q2-Q7 as scored by the form."""

    substance: Substance
    ever_used: bool
    q2: int | None = None
    q3: int | None = None
    q4: int | None = None
    q5: int | None = None
    q6: int | None = None
    q7: int | None = None


class ScreenClient(Body):
    agent_id: UUID
    screened_on: date
    substances: list[SubstanceAnswersIn]
    injecting: Injecting = Field(description="Q8: never, past_3_months, earlier")


class SubstanceResultView(BaseModel):
    substance: Substance
    score: int
    risk: RiskLevel


class ScreeningView(BaseModel):
    screening_id: UUID
    client_id: UUID
    screened_on: date
    substances: list[SubstanceResultView]
    overall_risk: RiskLevel
    injected_last_3_months: bool
    recommendation: Recommendation


class EraseClient(Body):
    on: date


class IdentityReadView(BaseModel):
    """One attempt to read a client's identity, as the audit shows it."""

    actor: str
    actor_role: str
    on_behalf_of: str | None
    purpose: str
    outcome: str
    reason: str | None = Field(None, description="why a denied attempt was refused (its error code)")
    read_at: UtcDatetime


class DuplicateView(BaseModel):
    """A registration whose NIK was already registered, flagged for a facilitator."""

    duplicate_id: UUID
    client_id: UUID = Field(description="the newer registration")
    unit_id: UUID | None = None
    existing_client_id: UUID = Field(description="the registration it may repeat")
    existing_unit_id: UUID | None = None
    flagged_at: UtcDatetime
    flagged_by: str
    flagged_by_role: str
    resolution: Resolution | None
    resolved_at: UtcDatetime | None
    resolved_by: str | None


class ResolveDuplicate(Body):
    resolution: Resolution = Field(
        description="same_person: the newer registration's identity is erased; "
        "different_people: both registrations stand"
    )
