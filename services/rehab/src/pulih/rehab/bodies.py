"""What rehab's API takes and gives back (request and response bodies).

Request bodies are the commands the use cases take: strict (:mod:`pulih.kit.strict`: a date is
``YYYY-MM-DD``, a count a JSON integer, a yes/no a JSON boolean), each with an example of a
request the service takes. Response bodies (:class:`View`) are read
from rows and domain values by attribute (``AssessmentView.model_validate(row)``); where an
answer shows more than its row holds (an enrolment's phases, the phase a session counted for),
:func:`row_with` adds those values.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from pulih.contracts.codes import FollowUpStatus, Phase, QolTimepoint, SessionKind
from pulih.kit.happened_on import HappenedOn
from pulih.kit.pagination import Page
from pulih.kit.strict import FROM_TEXT, JSON_INTEGER, STRICT_BODY, Id, strict_body

if TYPE_CHECKING:
    from pulih.rehab.store import Enrolment, PhaseRecord, SessionRecord

Answer = Annotated[int | None, Field(ge=1, le=5), JSON_INTEGER]


class Body(BaseModel):
    """Request bodies are strict and refuse unknown fields, so a typo is an error rather than
    ignored."""

    model_config = STRICT_BODY


WHOQOL_EXAMPLE: dict[str, object] = {
    **{f"q{item}": 3 for item in range(1, 27)},
    "q1": 4,
    "q2": 3,
    "q10": 4,
    "q15": 4,
    "q26": 2,
}
"""A whole WHOQOL-BREF form, every item answered."""


class WhoqolAnswers(Body):
    """The 26 WHOQOL-BREF items, each 1-5; leave an item out (or null) when it was not answered."""

    model_config = strict_body(WHOQOL_EXAMPLE, {**WHOQOL_EXAMPLE, "q3": None, "q21": None})

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
    model_config = strict_body(
        {
            "client_id": "9d5b7c1e-2f4a-4e8b-8c3d-6a1f0e2b4c57",
            "agent_id": "5b0b4a43-64f5-4c1b-9a53-0d5c4a1e7f21",
            "enrolled_on": "2025-01-13",
            "baseline": WHOQOL_EXAMPLE,
        },
        {
            "client_id": "9d5b7c1e-2f4a-4e8b-8c3d-6a1f0e2b4c57",
            "agent_id": "5b0b4a43-64f5-4c1b-9a53-0d5c4a1e7f21",
            "enrolled_on": "2025-01-13",
            "enrollment_id": "3e7a9c20-5d1b-4f6e-a8c4-71b2d9e0f3a6",
        },
    )

    client_id: Id
    agent_id: Id = Field(description="the recovery agent who will run the client's programme")
    enrolled_on: HappenedOn
    enrollment_id: Id | None = Field(None, description="a device-made id; one is assigned if absent")
    baseline: WhoqolAnswers | None = Field(None, description="the baseline WHOQOL-BREF taken at intake")


class RecordSession(Body):
    model_config = strict_body(
        {
            "agent_id": "5b0b4a43-64f5-4c1b-9a53-0d5c4a1e7f21",
            "held_on": "2025-01-14",
            "kind": "konseling",
            "attended": True,
            "minutes": 45,
        }
    )

    agent_id: Id
    held_on: HappenedOn
    kind: Annotated[SessionKind, FROM_TEXT]
    attended: bool
    minutes: Annotated[int, Field(ge=0, le=600), JSON_INTEGER]
    session_id: Id | None = Field(None, description="a device-made id; one is assigned if absent")


class AssessQualityOfLife(Body):
    model_config = strict_body(
        {"timepoint": "follow_up", "assessed_on": "2025-01-14", "answers": WHOQOL_EXAMPLE}
    )

    timepoint: Annotated[QolTimepoint, FROM_TEXT]
    assessed_on: HappenedOn
    answers: WhoqolAnswers
    assessment_id: Id | None = None


class DischargeClient(Body):
    model_config = strict_body({"on": "2025-01-14", "reason": "moved"})

    on: HappenedOn
    reason: Literal["moved", "died", "dropped_out", "referred_out"]


class RecordFollowUp(Body):
    model_config = strict_body({"on": "2025-01-14", "status": "abstinent"})

    on: HappenedOn
    status: Annotated[FollowUpStatus, FROM_TEXT]
    follow_up_id: Id | None = None


class _RowWith:
    """A row seen together with values it has no column for."""

    def __init__(self, row: object, extra: dict[str, Any]) -> None:
        self._row = row
        self._extra = extra

    def __getattr__(self, name: str) -> Any:
        if name in self._extra:
            return self._extra[name]
        return getattr(self._row, name)


def row_with(row: object, **extra: Any) -> Any:
    """``row`` with ``extra`` values, for ``model_validate(..., from_attributes=True)``: the
    ``update={...}`` that pydantic's ``model_validate`` lacks, validated like the rest."""
    return _RowWith(row, extra)


class View(BaseModel):
    """A response body, read from a row or a domain value by attribute (``from_attributes``)."""

    model_config = ConfigDict(from_attributes=True)


class PhaseView(View):
    phase: Phase
    started_on: date
    ended_on: date | None


class EnrolmentView(View):
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

    @classmethod
    def of(
        cls, enrolment: Enrolment, phases: Sequence[PhaseRecord], sessions: tuple[int, int]
    ) -> EnrolmentView:
        """An enrolment with its phases so far and its sessions (held, attended)."""
        held, attended = sessions
        return cls.model_validate(
            row_with(enrolment, phases=phases, sessions_held=held, sessions_attended=attended)
        )


class SessionView(View):
    session_id: UUID
    enrollment_id: UUID
    client_id: UUID
    agent_id: UUID
    held_on: date
    kind: SessionKind
    attended: bool
    minutes: int
    phase: Phase

    @classmethod
    def of(cls, record: SessionRecord, phase: Phase) -> SessionView:
        """A recorded session and the phase it counted for."""
        return cls.model_validate(row_with(record, phase=phase))


class AssessmentView(View):
    assessment_id: UUID
    enrollment_id: UUID
    client_id: UUID
    timepoint: QolTimepoint
    assessed_on: date
    physical: float
    psychological: float
    social: float
    environment: float


class FollowUpView(View):
    follow_up_id: UUID
    enrollment_id: UUID
    client_id: UUID
    due_on: date | None
    recorded_on: date | None
    status: FollowUpStatus | None


class ClientProgrammeView(View):
    """What rehab knows of a client: enough to decide on enrolment, nothing identifying."""

    client_id: UUID
    unit_id: UUID
    erased: bool
    screened_on: date | None
    overall_risk: str | None
    recommendation: str | None
    consent_scopes_today: list[str]
    enrolments: list[EnrolmentView]


class TaskView(View):
    client_id: UUID
    enrollment_id: UUID
    kind: str
    due_on: date
    detail: str


class AgentTasks(View):
    agent_id: UUID
    tasks: list[TaskView]


class WorklistView(View):
    unit_id: UUID
    date: date
    agents: list[AgentTasks]


class EnrolmentPage(Page[EnrolmentView]):
    """A page of enrolments, newest first."""
