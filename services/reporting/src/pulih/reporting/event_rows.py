"""What each event of the regency stream adds to a batch's rows, per projection table.

A batch is folded here in stream order, in plain Python (no query), into :class:`Rows`;
:mod:`pulih.reporting.projection` then writes each table's rows with one statement. Dates are
the events' domain dates; an assessment without ``assessed_on`` (contract v1.0) takes the
regency's local day of its ``time``.

A clinic's answers (accepted, declined, attended) are kept as rows of their own
(``referral_answers``: ``referrals_accepted`` counts those that stand, each on its own day), and
the referral's ``accepted_on``, ``declined_on`` and ``attended_on`` are the earliest of those
that stand: the referral service may refuse one
(``AnswerRejected``, always later in the stream), and a refused answer must change nothing. A
clinic may publish an answer refused as early again, under the same id:
:mod:`pulih.reporting.projection` folds such a later copy again, and the answer stands unless it
is refused after its latest copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol
from uuid import UUID
from zoneinfo import ZoneInfo

from pulih.contracts import CloudEvent
from pulih.contracts.events.clinic import (
    ClientAttended,
    ReferralAccepted,
    ReferralDeclined,
    TreatmentCompleted,
)
from pulih.contracts.events.outreach import (
    AgentDeactivated,
    AgentRegistered,
    ClientRegistered,
    ClientScreened,
    OutreachActivityRecorded,
    UnitEstablished,
)
from pulih.contracts.events.referral import (
    AnswerRejected,
    ReferralCancelled,
    ReferralClosed,
    ReferralEscalated,
    ReferredToClinic,
)
from pulih.contracts.events.rehab import (
    ClientDischarged,
    ClientEnrolled,
    DropoutReversed,
    FollowUpRecorded,
    PhaseCompleted,
    QualityOfLifeAssessed,
    SessionHeld,
)


class Delivered(Protocol):
    """What the batch consumer hands over (``pulih.kit.batch_consumer.Received``)."""

    @property
    def event(self) -> CloudEvent[Any]: ...

    @property
    def stream_seq(self) -> int: ...


REFERRAL_COLUMNS = (
    "client_id",
    "unit_id",
    "clinic_id",
    "service",
    "reason",
    "urgency",
    "referred_on",
    "respond_by",
    "accepted_on",
    "declined_on",
    "attended_on",
    "escalated_on",
    "cancelled_on",
    "closed_on",
    "outcome",
    "back_referral",
)

ANSWER_COLUMNS = {"accepted": "accepted_on", "declined": "declined_on", "attended": "attended_on"}
"""Each kind of clinic answer kept in ``referral_answers``, and the referral column it sets."""

CLINIC_ANSWERS = (ReferralAccepted, ReferralDeclined, ClientAttended)
"""The answers kept, which a later copy (the same id) may stand again after a refusal."""


@dataclass
class Rows:
    """The rows one batch writes, per table, in stream order."""

    timezone: ZoneInfo
    inserts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    referrals: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    deactivations: list[dict[str, Any]] = field(default_factory=list)
    reversals: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    answered: set[UUID] = field(default_factory=set)
    discharged: set[UUID] = field(default_factory=set)
    qol_enrolments: set[UUID] = field(default_factory=set)
    dates: set[date] = field(default_factory=set)

    def add(self, table: str, row: dict[str, Any]) -> None:
        """A row for ``table`` that only ever appears (``ON CONFLICT DO NOTHING``)."""
        self.inserts.setdefault(table, []).append(row)

    def referral(self, referral_id: UUID, **values: Any) -> None:
        """Columns of a referral's row: a later event of the batch wins over an earlier one."""
        row = self.referrals.get(referral_id)
        if row is None:
            row = self.referrals[referral_id] = dict.fromkeys(REFERRAL_COLUMNS)
            row["referral_id"] = referral_id
        row.update(values)

    def answer(self, kind: str, referral_id: UUID, on: date, delivered: Delivered) -> None:
        """A clinic's answer (its latest copy in the batch wins); the referral's row exists
        from then on, whatever else arrived."""
        self.referral(referral_id)
        self.answers[delivered.event.id] = {
            "answer_id": delivered.event.id,
            "referral_id": referral_id,
            "kind": kind,
            "on": on,
            "stream_seq": delivered.stream_seq,
            "rejected": False,
        }
        self.answered.add(referral_id)
        self.dates.add(on)


_Fold = Callable[[Rows, Any, Delivered], None]


def _unit(rows: Rows, e: UnitEstablished, _: Delivered) -> None:
    rows.add(
        "units",
        {
            "unit_id": e.unit_id,
            "name": e.name,
            "village_code": e.village_code,
            "district_code": e.village_code[:6],
            "established_on": e.established_on,
        },
    )
    rows.dates.add(e.established_on)


def _agent(rows: Rows, e: AgentRegistered, _: Delivered) -> None:
    rows.add(
        "agents",
        {"agent_id": e.agent_id, "unit_id": e.unit_id, "trained_on": e.trained_on, "deactivated_on": None},
    )
    rows.dates.add(e.trained_on)


def _agent_gone(rows: Rows, e: AgentDeactivated, _: Delivered) -> None:
    rows.deactivations.append({"b_agent_id": e.agent_id, "b_on": e.on})
    rows.dates.add(e.on)


def _outreach(rows: Rows, e: OutreachActivityRecorded, _: Delivered) -> None:
    rows.add(
        "outreach_activities",
        {
            "activity_id": e.activity_id,
            "unit_id": e.unit_id,
            "kind": e.kind.value,
            "held_on": e.held_on,
            "people_reached": e.people_reached,
        },
    )
    rows.dates.add(e.held_on)


def _client(rows: Rows, e: ClientRegistered, _: Delivered) -> None:
    rows.add(
        "clients",
        {
            "client_id": e.client_id,
            "unit_id": e.unit_id,
            "registered_on": e.registered_on,
            "sex": e.sex.value,
            "age_band": e.age_band.value,
            "came_through": e.came_through.value,
        },
    )
    rows.dates.add(e.registered_on)


def _screening(rows: Rows, e: ClientScreened, d: Delivered) -> None:
    rows.add(
        "screenings",
        {
            "screening_id": e.screening_id,
            "client_id": e.client_id,
            "unit_id": e.unit_id,
            "screened_on": e.screened_on,
            "overall_risk": e.overall_risk.value,
            "stream_seq": d.stream_seq,
        },
    )
    rows.dates.add(e.screened_on)


def _enrolment(rows: Rows, e: ClientEnrolled, _: Delivered) -> None:
    rows.add(
        "enrolments",
        {
            "enrollment_id": e.enrollment_id,
            "client_id": e.client_id,
            "unit_id": e.unit_id,
            "enrolled_on": e.enrolled_on,
            "planned_end_on": e.planned_end_on,
            "discharged_on": None,
            "discharge_reason": None,
        },
    )
    rows.dates.add(e.enrolled_on)


def _session(rows: Rows, e: SessionHeld, _: Delivered) -> None:
    rows.add(
        "sessions",
        {
            "session_id": e.session_id,
            "enrollment_id": e.enrollment_id,
            "client_id": e.client_id,
            "unit_id": e.unit_id,
            "held_on": e.held_on,
            "kind": e.kind.value,
            "attended": e.attended,
            "minutes": e.minutes,
        },
    )
    rows.dates.add(e.held_on)


def _qol(rows: Rows, e: QualityOfLifeAssessed, d: Delivered) -> None:
    # Contract v1.1 added assessed_on; an older event is dated by the regency's day of its time.
    assessed_on = e.assessed_on or d.event.time.astimezone(rows.timezone).date()
    rows.add(
        "qol_assessments",
        {
            "assessment_id": e.assessment_id,
            "enrollment_id": e.enrollment_id,
            "client_id": e.client_id,
            "timepoint": e.timepoint.value,
            "assessed_on": assessed_on,
            "physical": e.physical,
            "psychological": e.psychological,
            "social": e.social,
            "environment": e.environment,
        },
    )
    rows.qol_enrolments.add(e.enrollment_id)
    rows.dates.add(assessed_on)


def _phase(rows: Rows, e: PhaseCompleted, _: Delivered) -> None:
    rows.add(
        "phase_completions",
        {
            "enrollment_id": e.enrollment_id,
            "phase": e.phase.value,
            "client_id": e.client_id,
            "completed_on": e.completed_on,
            "next_phase": e.next_phase.value if e.next_phase is not None else None,
        },
    )
    rows.dates.add(e.completed_on)


def _discharge(rows: Rows, e: ClientDischarged, _: Delivered) -> None:
    rows.add(
        "discharges",
        {
            "enrollment_id": e.enrollment_id,
            "on": e.on,
            "reason": e.reason.value,
            "client_id": e.client_id,
            "reversed": False,
        },
    )
    rows.discharged.add(e.enrollment_id)
    rows.dates.add(e.on)


def _reversal(rows: Rows, e: DropoutReversed, _: Delivered) -> None:
    rows.reversals.append({"b_enrollment_id": e.enrollment_id, "b_on": e.dropped_out_on})
    rows.discharged.add(e.enrollment_id)
    rows.dates.update((e.dropped_out_on, e.on))


def _follow_up(rows: Rows, e: FollowUpRecorded, _: Delivered) -> None:
    rows.add(
        "follow_ups",
        {"follow_up_id": e.follow_up_id, "client_id": e.client_id, "on": e.on, "status": e.status.value},
    )
    rows.dates.add(e.on)


def _referred(rows: Rows, e: ReferredToClinic, _: Delivered) -> None:
    rows.referral(
        e.referral_id,
        client_id=e.client_id,
        unit_id=e.unit_id,
        clinic_id=e.clinic_id,
        service=e.service.value,
        reason=e.reason.value,
        urgency=e.urgency.value,
        referred_on=e.referred_on,
        respond_by=e.respond_by,
    )
    rows.dates.update((e.referred_on, e.respond_by))


def _escalated(rows: Rows, e: ReferralEscalated, _: Delivered) -> None:
    rows.referral(e.referral_id, escalated_on=e.on)
    rows.dates.add(e.on)


def _cancelled(rows: Rows, e: ReferralCancelled, _: Delivered) -> None:
    rows.referral(e.referral_id, cancelled_on=e.on)
    rows.dates.add(e.on)


def _closed(rows: Rows, e: ReferralClosed, _: Delivered) -> None:
    rows.referral(e.referral_id, closed_on=e.on, outcome=e.outcome.value, back_referral=e.back_referral)
    rows.dates.add(e.on)


def _accepted(rows: Rows, e: ReferralAccepted, d: Delivered) -> None:
    rows.answer("accepted", e.referral_id, e.accepted_on, d)


def _declined(rows: Rows, e: ReferralDeclined, d: Delivered) -> None:
    rows.answer("declined", e.referral_id, e.on, d)


def _attended(rows: Rows, e: ClientAttended, d: Delivered) -> None:
    rows.answer("attended", e.referral_id, e.on, d)


def _refused(rows: Rows, e: AnswerRejected, d: Delivered) -> None:
    # Refuses the copies of the answer before it in the stream (a later copy may stand). The
    # days it changes are the referral's before and after (the projection reads them).
    rows.rejections.append({"b_answer_id": e.answer_id, "b_seq": d.stream_seq})
    rows.answered.add(e.referral_id)


def _treated(rows: Rows, e: TreatmentCompleted, _: Delivered) -> None:
    # The referral service answers it with ReferralClosed, which carries what the indicators count.
    rows.dates.add(e.on)


FOLDS: dict[type[Any], _Fold] = {
    UnitEstablished: _unit,
    AgentRegistered: _agent,
    AgentDeactivated: _agent_gone,
    OutreachActivityRecorded: _outreach,
    ClientRegistered: _client,
    ClientScreened: _screening,
    ClientEnrolled: _enrolment,
    SessionHeld: _session,
    QualityOfLifeAssessed: _qol,
    PhaseCompleted: _phase,
    ClientDischarged: _discharge,
    DropoutReversed: _reversal,
    FollowUpRecorded: _follow_up,
    ReferredToClinic: _referred,
    ReferralEscalated: _escalated,
    ReferralCancelled: _cancelled,
    ReferralClosed: _closed,
    ReferralAccepted: _accepted,
    ReferralDeclined: _declined,
    ClientAttended: _attended,
    TreatmentCompleted: _treated,
    AnswerRejected: _refused,
}
"""The events reporting projects, each with what it adds to the batch's rows. Every other
event of the stream (consents, erasures, reporting's own aggregates…) is only tracked."""
