"""What rehab's API takes and gives back (request and response bodies)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from pulih.contracts.codes import FollowUpStatus, Phase, QolTimepoint, SessionKind

Answer = Annotated[int | None, Field(ge=1, le=5)]


class Body(BaseModel):
    """Request bodies refuse unknown fields, so a typo is an error rather than ignored."""

    model_config = ConfigDict(extra="forbid")


class WhoqolAnswers(Body):
    """The 26 WHOQOL-BREF items, each 1-5; leave an item out (or null) when it was not answered."""

    q1: Answer = None
    q2: Answer = None
    q3: Answer = None
    q4: Answer = None
    q5: Answer = None
    q6: Answer = None
    q7: Answer = None
    q8: Answer = None
    q9: Answer = None
    q10: Answer = None
    q11: Answer = None
    q12: Answer = None
    q13: Answer = None
    q14: Answer = None
    q15: Answer = None
    q16: Answer = None
    q17: Answer = None
    q18: Answer = None
    q19: Answer = None
    q20: Answer = None
    q21: Answer = None
    q22: Answer = None
    q23: Answer = None
    q24: Answer = None
    q25: Answer = None
    q26: Answer = None

    def by_item(self) -> dict[int, int | None]:
        """Item number → answer."""
        return {int(name[1:]): value for name, value in self.model_dump().items()}


class EnrolClient(Body):
    client_id: UUID
    agent_id: UUID = Field(description="the recovery agent who will run the client's programme")
    enrolled_on: date
    enrollment_id: UUID | None = Field(None, description="a device-made id; one is assigned if absent")
    baseline: WhoqolAnswers | None = Field(None, description="the baseline WHOQOL-BREF taken at intake")


class RecordSession(Body):
    agent_id: UUID
    held_on: date
    kind: SessionKind
    attended: bool
    minutes: Annotated[int, Field(ge=0, le=600)]
    session_id: UUID | None = Field(None, description="a device-made id; one is assigned if absent")


class AssessQualityOfLife(Body):
    timepoint: QolTimepoint
    assessed_on: date
    answers: WhoqolAnswers
    assessment_id: UUID | None = None


class DischargeClient(Body):
    on: date
    reason: Literal["moved", "died", "dropped_out", "referred_out"]


class RecordFollowUp(Body):
    on: date
    status: FollowUpStatus
    follow_up_id: UUID | None = None


class PhaseView(BaseModel):
    phase: Phase
    started_on: date
    ended_on: date | None


class EnrolmentView(BaseModel):
    enrollment_id: UUID
    client_id: UUID
    unit_id: UUID
    agent_id: UUID
    programme: str
    enrolled_on: date
    planned_end_on: date
    aftercare_only: bool
    phase: Phase
    status: str
    paused_since: date | None = None
    discharged_on: date | None = None
    discharge_reason: str | None = None
    phases: list[PhaseView] = Field(default_factory=list)
    sessions_held: int = 0
    sessions_attended: int = 0


class SessionView(BaseModel):
    session_id: UUID
    enrollment_id: UUID
    client_id: UUID
    agent_id: UUID
    held_on: date
    kind: SessionKind
    attended: bool
    minutes: int
    phase: Phase


class AssessmentView(BaseModel):
    assessment_id: UUID
    enrollment_id: UUID
    client_id: UUID
    timepoint: QolTimepoint
    assessed_on: date
    physical: float
    psychological: float
    social: float
    environment: float


class FollowUpView(BaseModel):
    follow_up_id: UUID
    enrollment_id: UUID
    client_id: UUID
    due_on: date | None
    recorded_on: date | None
    status: FollowUpStatus | None


class ClientProgrammeView(BaseModel):
    """What rehab knows of a client: enough to decide on enrolment, nothing identifying."""

    client_id: UUID
    unit_id: UUID
    erased: bool
    screened_on: date | None
    overall_risk: str | None
    recommendation: str | None
    consent_scopes_today: list[str]
    enrolments: list[EnrolmentView]


class TaskView(BaseModel):
    client_id: UUID
    enrollment_id: UUID
    kind: str
    due_on: date
    detail: str


class AgentTasks(BaseModel):
    agent_id: UUID
    tasks: list[TaskView]


class WorklistView(BaseModel):
    unit_id: UUID
    date: date
    agents: list[AgentTasks]
