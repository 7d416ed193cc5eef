"""An agent's worklist for one day: what the programme asks of them for each of their clients.

Pure: it takes the enrolments as they stand on that day (already advanced by the time rules),
their sessions and assessments, and the follow-ups due, and lists the tasks:

- ``session_due``: the stage asks for ``min_sessions`` attended sessions every ``every_weeks``
  weeks and the current period has fewer so far; ``session_overdue`` when, besides, the
  previous period of the stage already fell short;
- ``assessment_due``: the baseline WHOQOL-BREF is missing, or the exit one from its week on;
- ``follow_up_due``: a follow-up is due within the next week or overdue;
- ``dropout_risk``: the client has not been seen for all but the last week before the dropout
  rule discharges them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from uuid import UUID

from pulih.contracts.codes import QolTimepoint
from pulih.rehab.domain.programme import Programme
from pulih.rehab.domain.timeline import Status, Timeline, dropout_on, stage_ends_on

FOLLOW_UP_NOTICE = timedelta(weeks=1)


class TaskKind(StrEnum):
    """What an agent has to do."""

    SESSION_DUE = "session_due"
    SESSION_OVERDUE = "session_overdue"
    ASSESSMENT_DUE = "assessment_due"
    FOLLOW_UP_DUE = "follow_up_due"
    DROPOUT_RISK = "dropout_risk"


@dataclass(frozen=True)
class EnrolmentToday:
    """One enrolment as it stands on the worklist's day, with what has been done in it."""

    enrollment_id: UUID
    client_id: UUID
    agent_id: UUID
    timeline: Timeline
    attended_on: tuple[date, ...]
    assessed: frozenset[QolTimepoint]


@dataclass(frozen=True)
class FollowUpDue:
    """A follow-up the programme expects, not yet recorded."""

    client_id: UUID
    enrollment_id: UUID
    agent_id: UUID
    due_on: date


@dataclass(frozen=True)
class Task:
    """One thing an agent should do, by when, and why."""

    agent_id: UUID
    client_id: UUID
    enrollment_id: UUID
    kind: TaskKind
    due_on: date
    detail: str


def _session_task(programme: Programme, e: EnrolmentToday, today: date) -> Task | None:
    tl = e.timeline
    stage = programme.stage(tl.phase)
    if stage.min_sessions == 0:
        return None
    period = timedelta(weeks=stage.every_weeks)
    index = (today - tl.stage_started_on) // period
    start = tl.stage_started_on + index * period
    end = min(start + period - timedelta(days=1), stage_ends_on(programme, tl))

    def attended(first: date, last: date) -> int:
        return sum(1 for d in e.attended_on if first <= d <= last)

    if attended(start, today) >= stage.min_sessions:
        return None
    if index > 0 and attended(start - period, start - timedelta(days=1)) < stage.min_sessions:
        return Task(
            e.agent_id,
            e.client_id,
            e.enrollment_id,
            TaskKind.SESSION_OVERDUE,
            start - timedelta(days=1),
            f"{tl.phase}: fewer than {stage.min_sessions} attended session(s) in the last "
            f"{stage.every_weeks} week(s); kinds: {', '.join(sorted(stage.kinds))}",
        )
    return Task(
        e.agent_id,
        e.client_id,
        e.enrollment_id,
        TaskKind.SESSION_DUE,
        end,
        f"{tl.phase}: {stage.min_sessions} attended session(s) every {stage.every_weeks} "
        f"week(s); kinds: {', '.join(sorted(stage.kinds))}",
    )


def _assessment_tasks(programme: Programme, e: EnrolmentToday, today: date) -> list[Task]:
    tl = e.timeline
    tasks = []
    if QolTimepoint.BASELINE not in e.assessed:
        tasks.append(
            Task(
                e.agent_id,
                e.client_id,
                e.enrollment_id,
                TaskKind.ASSESSMENT_DUE,
                today,
                "baseline WHOQOL-BREF (taken at intake)",
            )
        )
    week = programme.week_of(tl.phase, tl.stage_started_on, today)
    if (
        tl.phase is programme.aftercare_phase
        and week >= programme.exit_assessment_week
        and QolTimepoint.EXIT not in e.assessed
    ):
        tasks.append(
            Task(
                e.agent_id,
                e.client_id,
                e.enrollment_id,
                TaskKind.ASSESSMENT_DUE,
                stage_ends_on(programme, tl),
                f"exit WHOQOL-BREF (week {programme.exit_assessment_week})",
            )
        )
    return tasks


def _dropout_task(programme: Programme, e: EnrolmentToday, today: date) -> Task | None:
    gone = dropout_on(programme, e.timeline)
    if gone - today >= timedelta(weeks=1):
        return None
    return Task(
        e.agent_id,
        e.client_id,
        e.enrollment_id,
        TaskKind.DROPOUT_RISK,
        gone,
        f"not seen since {e.timeline.last_seen_on}; discharged as dropped out unless seen by {gone}",
    )


def worklist(
    programme: Programme,
    today: date,
    enrolments: Iterable[EnrolmentToday],
    follow_ups: Iterable[FollowUpDue],
) -> list[Task]:
    """Every task of the day, ordered by agent, then due date."""
    tasks: list[Task] = []
    for e in enrolments:
        if e.timeline.status is not Status.ACTIVE:
            continue
        tasks.extend(
            t
            for t in (_session_task(programme, e, today), _dropout_task(programme, e, today))
            if t is not None
        )
        tasks.extend(_assessment_tasks(programme, e, today))
    for f in follow_ups:
        if f.due_on - today <= FOLLOW_UP_NOTICE:
            tasks.append(
                Task(
                    f.agent_id,
                    f.client_id,
                    f.enrollment_id,
                    TaskKind.FOLLOW_UP_DUE,
                    f.due_on,
                    "follow-up after discharge: abstinent, reduced use, relapsed or unreachable",
                )
            )
    return sorted(tasks, key=lambda t: (str(t.agent_id), t.due_on, t.kind))
