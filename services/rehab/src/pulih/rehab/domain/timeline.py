"""Where one client stands in the programme, and how time and referrals move them on.

A :class:`Timeline` is the state of one enrolment: its phase, when that stage started, the last
day the client was seen (an attended session, enrolment or return from a clinic), and whether
it is active, paused while the client is at a clinic, or discharged.

Time moves a timeline by two rules, each taking effect once its day has fully passed:

- a stage ends on its last day: ``PhaseClosed`` and the next stage starts the day after; the
  last stage closing discharges the client as ``completed``;
- a client not seen for ``dropout_after_weeks`` weeks is discharged as ``dropped_out`` on the
  last day of that run.

:func:`advance` applies every rule due by a date in the order their days fall, so a service that
was down for a month catches up with the same dates it would have had.

A dropout the rule decided is a conclusion from missing data: an attended session within the
weeks it counted as unseen, synced late from a field device, disproves it
(:func:`disproves_dropout`), and :func:`reverse_dropout` puts the client back where they were.
Everything here is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum

from pulih.contracts.codes import DischargeReason, Phase
from pulih.kit.dates import not_before
from pulih.kit.errors import Conflict, Invalid
from pulih.rehab.domain.programme import Programme


class Status(StrEnum):
    """Whether an enrolment is running, waiting on a clinic, or over."""

    ACTIVE = "active"
    PAUSED = "paused"
    """The client was referred to a clinic; the programme's clock stands still."""
    DISCHARGED = "discharged"


@dataclass(frozen=True)
class Timeline:
    """The state of one enrolment."""

    phase: Phase
    stage_started_on: date
    last_seen_on: date
    status: Status = Status.ACTIVE
    paused_since: date | None = None
    discharged_on: date | None = None
    discharge_reason: DischargeReason | None = None
    discharged_by_rule: bool = False
    """The time rules discharged the client (completed, or dropped out for weeks unseen), not an
    agent's request or a clinic's outcome."""


@dataclass(frozen=True)
class PhaseClosed:
    """A stage ended; ``next_phase`` is None when it was the last one."""

    phase: Phase
    on: date
    next_phase: Phase | None


@dataclass(frozen=True)
class Discharged:
    """The client left the programme."""

    on: date
    reason: DischargeReason


Change = PhaseClosed | Discharged


@dataclass(frozen=True)
class DropoutReversal:
    """The rule's dropout of ``dropped_out_on`` no longer holds: the client attended on ``on``."""

    dropped_out_on: date
    on: date


class TimelineError(Conflict):
    """A change that the enrolment's state does not allow (a conflict: 409)."""


def enrol(programme: Programme, enrolled_on: date) -> tuple[Timeline, list[Change]]:
    """A new enrolment: screening is over and intake starts on ``enrolled_on``."""
    intake = programme.intake_phase
    timeline = Timeline(phase=intake, stage_started_on=enrolled_on, last_seen_on=enrolled_on)
    return timeline, [PhaseClosed(programme.stages[0].phase, enrolled_on, intake)]


def enrol_in_aftercare(programme: Programme, on: date) -> Timeline:
    """An aftercare-only enrolment for a client a clinic sent back who was never enrolled."""
    return Timeline(phase=programme.aftercare_phase, stage_started_on=on, last_seen_on=on)


def stage_ends_on(programme: Programme, timeline: Timeline) -> date:
    """The last day of the timeline's current stage."""
    return programme.stage(timeline.phase).ends_on(timeline.stage_started_on)


def dropout_on(programme: Programme, timeline: Timeline) -> date:
    """The day the client counts as dropped out if not seen before it ends."""
    return timeline.last_seen_on + timedelta(weeks=programme.dropout_after_weeks)


def advance(programme: Programme, timeline: Timeline, today: date) -> tuple[Timeline, list[Change]]:
    """Apply every rule whose day has passed before ``today``, in order of their days."""
    changes: list[Change] = []
    while timeline.status is Status.ACTIVE:
        ends = stage_ends_on(programme, timeline)
        gone = dropout_on(programme, timeline)
        if gone < ends and gone < today:
            timeline = _discharge(timeline, gone, DischargeReason.DROPPED_OUT, by_rule=True)
            changes.append(Discharged(gone, DischargeReason.DROPPED_OUT))
        elif ends <= gone and ends < today:
            follows = programme.next_phase(timeline.phase)
            changes.append(PhaseClosed(timeline.phase, ends, follows))
            if follows is None:
                timeline = _discharge(timeline, ends, DischargeReason.COMPLETED, by_rule=True)
                changes.append(Discharged(ends, DischargeReason.COMPLETED))
            else:
                timeline = replace(timeline, phase=follows, stage_started_on=ends + timedelta(days=1))
        else:
            break
    return timeline, changes


def seen(timeline: Timeline, on: date) -> Timeline:
    """The client attended a session on ``on``: the dropout count starts again from then."""
    return replace(timeline, last_seen_on=max(timeline.last_seen_on, on))


def disproves_dropout(timeline: Timeline, held_on: date, attended: bool) -> bool:
    """Whether a session held on ``held_on`` disproves the client's dropout.

    Only a dropout the rule decided can be disproved, and only by an attended session inside the
    run it counted as unseen: after the last time the client was seen and up to the dropout day,
    the run's last day (seen that day, the client would not have dropped out). An agent's own
    ``dropped_out`` discharge, a clinic's, and every other discharge stand.
    """
    return (
        attended
        and timeline.status is Status.DISCHARGED
        and timeline.discharge_reason is DischargeReason.DROPPED_OUT
        and timeline.discharged_by_rule
        and timeline.discharged_on is not None
        and timeline.last_seen_on < held_on <= timeline.discharged_on
    )


def reverse_dropout(
    timeline: Timeline, seen_on: date, *, enrolled_again: bool = False
) -> tuple[Timeline, DropoutReversal]:
    """The client attended on ``seen_on``, inside the weeks the rule counted as unseen: the
    dropout is reversed and the enrolment is active again, in the stage it was in, the client
    last seen on ``seen_on``. The caller then lets :func:`advance` apply the rules from that day
    on: the client may drop out again later, or move on to the next stage.

    A client ``enrolled_again`` since the dropout is in the programme already: the dropout
    stands (409), as a client is in one enrolment at a time.
    """
    if not disproves_dropout(timeline, seen_on, attended=True):
        raise TimelineError(
            "enrolment_discharged",
            f"the client was discharged on {timeline.discharged_on} ({timeline.discharge_reason})",
        )
    if enrolled_again:
        raise TimelineError(
            "enrolled_again",
            f"the client was enrolled again after dropping out on {timeline.discharged_on}: "
            "that enrolment goes on, and this dropout stands",
        )
    assert timeline.discharged_on is not None  # disproves_dropout checked it
    reversal = DropoutReversal(dropped_out_on=timeline.discharged_on, on=seen_on)
    reopened = replace(
        timeline,
        status=Status.ACTIVE,
        last_seen_on=seen_on,
        discharged_on=None,
        discharge_reason=None,
        discharged_by_rule=False,
    )
    return reopened, reversal


def pause(timeline: Timeline, on: date) -> Timeline:
    """The client was referred to a clinic on ``on``: stop the programme's clock."""
    if timeline.status is not Status.ACTIVE:
        raise TimelineError("enrolment_not_active", f"an enrolment that is {timeline.status} cannot pause")
    return replace(timeline, status=Status.PAUSED, paused_since=on)


def resume_where_paused(timeline: Timeline, on: date) -> Timeline:
    """The clinic did not take the client (declined, cancelled): carry on with the same stage,
    which keeps the weeks it had left when the client was referred."""
    if timeline.status is not Status.PAUSED or timeline.paused_since is None:
        raise TimelineError("enrolment_not_paused", "only a paused enrolment can resume")
    away = max(on - timeline.paused_since, timedelta(0))
    return replace(
        timeline,
        status=Status.ACTIVE,
        paused_since=None,
        stage_started_on=timeline.stage_started_on + away,
        last_seen_on=on,
    )


def resume_in_aftercare(programme: Programme, timeline: Timeline, on: date) -> tuple[Timeline, list[Change]]:
    """A clinic sent the client back (``back_referral``): aftercare starts on ``on``; the stage
    the client was in when referred closes then, the clinic having done its work."""
    if timeline.status is Status.DISCHARGED:
        raise TimelineError("enrolment_discharged", "a discharged enrolment cannot resume")
    aftercare = programme.aftercare_phase
    changes: list[Change] = []
    if timeline.phase is not aftercare:
        changes.append(PhaseClosed(timeline.phase, on, aftercare))
    resumed = replace(
        timeline,
        phase=aftercare,
        stage_started_on=on,
        last_seen_on=on,
        status=Status.ACTIVE,
        paused_since=None,
    )
    return resumed, changes


def discharge(timeline: Timeline, on: date, reason: DischargeReason) -> tuple[Timeline, Discharged]:
    """Discharge the client on ``on`` (moved, died, referred out, or by the rules)."""
    if timeline.status is Status.DISCHARGED:
        raise TimelineError("enrolment_discharged", "this enrolment was already discharged")
    return _discharge(timeline, on, reason), Discharged(on, reason)


def discharge_on_request(
    timeline: Timeline, on: date, reason: DischargeReason
) -> tuple[Timeline, Discharged]:
    """A discharge an agent asks for (moved, died, referred out, dropped out): it may not be dated
    before the current stage began, nor before the client was last seen (422), nor come after
    another discharge (409)."""
    if on < timeline.stage_started_on:
        raise Invalid("date_before_stage", "the discharge date is before the current stage began", "on")
    not_before(on, timeline.last_seen_on, "on", "day the client was last seen", code="date_before_last_seen")
    return discharge(timeline, on, reason)


def _discharge(timeline: Timeline, on: date, reason: DischargeReason, *, by_rule: bool = False) -> Timeline:
    return replace(
        timeline,
        status=Status.DISCHARGED,
        paused_since=None,
        discharged_on=on,
        discharge_reason=reason,
        discharged_by_rule=by_rule,
    )


@dataclass(frozen=True)
class PhasePeriod:
    """A phase the enrolment was in, from ``started_on`` to ``ended_on`` (None: still in it)."""

    phase: Phase
    started_on: date
    ended_on: date | None


def phase_on(periods: list[PhasePeriod], day: date) -> Phase | None:
    """The phase the enrolment was in on ``day``, or None if it was not in any.

    ``periods`` are oldest first; on a day one phase ends and the next begins (enrolment day,
    a return from a clinic) the later phase is the one in force.
    """
    for period in reversed(periods):
        if period.started_on <= day and (period.ended_on is None or day <= period.ended_on):
            return period.phase
    return None
