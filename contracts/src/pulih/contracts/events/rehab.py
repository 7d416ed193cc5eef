"""Events of the rehab service: the 16-week IBM programme of one client."""

from datetime import date
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import Field

from pulih.contracts.codes import (
    DischargeReason,
    FollowUpStatus,
    Phase,
    ProgrammeCode,
    QolTimepoint,
    SessionKind,
)
from pulih.contracts.event import Event

WhoqolScore = Annotated[float, Field(ge=0, le=100)]
"""A WHOQOL-BREF domain score transformed to 0-100."""

SessionMinutes = Annotated[int, Field(ge=0, le=600)]
"""How long a session lasted, in minutes (at most ten hours)."""


class _RehabEvent(Event):
    service_name: ClassVar[str] = "rehab"
    about: ClassVar[str] = "client_id"


class ClientEnrolled(_RehabEvent):
    """A screened client started the programme with a recovery agent."""

    enrollment_id: UUID
    client_id: UUID
    unit_id: UUID
    agent_id: UUID
    enrolled_on: date
    programme: ProgrammeCode
    """The programme followed, e.g. ``ibm-16w-2021``."""
    planned_end_on: date


class SessionHeld(_RehabEvent):
    """A programme session was planned and held, attended or not."""

    session_id: UUID
    enrollment_id: UUID
    client_id: UUID
    unit_id: UUID
    agent_id: UUID
    held_on: date
    kind: SessionKind
    attended: bool
    minutes: SessionMinutes


class QualityOfLifeAssessed(_RehabEvent):
    """A client's quality of life was measured with WHOQOL-BREF (four domains, 0-100)."""

    assessment_id: UUID
    enrollment_id: UUID
    client_id: UUID
    timepoint: QolTimepoint
    physical: WhoqolScore
    psychological: WhoqolScore
    social: WhoqolScore
    environment: WhoqolScore
    assessed_on: date | None = None
    """The day of the assessment (added in contract v1.1; older events lack it, and readers
    then take the regency's local day of the event's ``time``)."""


class PhaseCompleted(_RehabEvent):
    """A client finished one phase of the programme."""

    enrollment_id: UUID
    client_id: UUID
    phase: Phase
    completed_on: date
    next_phase: Phase | None
    """The phase the client moves on to; null after the last one."""


class ClientDischarged(_RehabEvent):
    """A client left the programme."""

    enrollment_id: UUID
    client_id: UUID
    on: date
    reason: DischargeReason


class DropoutReversed(_RehabEvent):
    """A dropout was disproved: an attended session dated before it was recorded late (field
    devices sync days later), so the client is back in the programme. The ``ClientDischarged``
    (``dropped_out``) of ``dropped_out_on`` no longer counts."""

    enrollment_id: UUID
    client_id: UUID
    dropped_out_on: date
    """The day of the dropout this reverses."""
    on: date
    """The day of the late attended session that disproved it."""


class FollowUpRecorded(_RehabEvent):
    """A recovery agent followed up a client after the programme."""

    follow_up_id: UUID
    client_id: UUID
    on: date
    status: FollowUpStatus
