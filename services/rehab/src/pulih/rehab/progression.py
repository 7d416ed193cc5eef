"""Moving enrolments along: the timeline's changes written to the store and to the outbox.

Every use case (a command, a consumed referral event, the scheduler's job) changes enrolments
through here, inside its own unit of work, so a phase closing is always its ``PhaseCompleted``
event and its history row together, and every event carries the unit of work's correlation.
Every write bumps the enrolment's version: if another replica or request got there first, the
transaction fails (``StaleDataError``) and nothing is applied twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, timedelta

from dateutil.relativedelta import relativedelta
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.contracts.codes import DischargeReason, Phase
from pulih.contracts.events.rehab import ClientDischarged, DropoutReversed, PhaseCompleted
from pulih.kit.unit_of_work import UnitOfWork
from pulih.rehab.domain.programme import Programme
from pulih.rehab.domain.timeline import (
    Change,
    Discharged,
    DropoutReversal,
    PhaseClosed,
    PhasePeriod,
    Status,
    Timeline,
    advance,
    dropout_on,
    stage_ends_on,
)
from pulih.rehab.store import Enrolment, FollowUp, PhaseRecord, phase_history


def timeline_of(enrolment: Enrolment) -> Timeline:
    """The enrolment's state as a domain value."""
    return Timeline(
        phase=Phase(enrolment.phase),
        stage_started_on=enrolment.stage_started_on,
        last_seen_on=enrolment.last_seen_on,
        status=Status(enrolment.status),
        paused_since=enrolment.paused_since,
        discharged_on=enrolment.discharged_on,
        discharge_reason=DischargeReason(enrolment.discharge_reason) if enrolment.discharge_reason else None,
        discharged_by_rule=enrolment.discharged_by_rule,
    )


def store_timeline(programme: Programme, enrolment: Enrolment, timeline: Timeline) -> None:
    """Write a timeline back onto its enrolment row, with the first day a rule can fire."""
    enrolment.phase = timeline.phase.value
    enrolment.stage_started_on = timeline.stage_started_on
    enrolment.last_seen_on = timeline.last_seen_on
    enrolment.status = timeline.status.value
    enrolment.paused_since = timeline.paused_since
    enrolment.discharged_on = timeline.discharged_on
    enrolment.discharge_reason = timeline.discharge_reason.value if timeline.discharge_reason else None
    enrolment.discharged_by_rule = timeline.discharged_by_rule
    if timeline.status is Status.ACTIVE:
        first = min(stage_ends_on(programme, timeline), dropout_on(programme, timeline))
        enrolment.next_rule_on = first + timedelta(days=1)
    else:
        enrolment.next_rule_on = None


async def phase_periods(session: AsyncSession, enrollment_id: uuid.UUID) -> list[PhasePeriod]:
    """The enrolment's phases, oldest first, as the domain reads them."""
    return [
        PhasePeriod(Phase(r.phase), r.started_on, r.ended_on)
        for r in await phase_history(session, enrollment_id)
    ]


async def apply_changes(
    uow: UnitOfWork,
    programme: Programme,
    enrolment: Enrolment,
    timeline: Timeline,
    changes: Sequence[Change],
) -> None:
    """Store ``timeline`` (the state after ``changes``) and emit one event per change."""
    session = uow.session
    open_period = await session.scalar(
        select(PhaseRecord).where(
            PhaseRecord.enrollment_id == enrolment.enrollment_id, PhaseRecord.ended_on.is_(None)
        )
    )
    closings = [c for c in changes if isinstance(c, PhaseClosed)]
    for change in changes:
        if isinstance(change, PhaseClosed):
            await uow.emit(
                PhaseCompleted(
                    enrollment_id=enrolment.enrollment_id,
                    client_id=enrolment.client_id,
                    phase=change.phase,
                    completed_on=change.on,
                    next_phase=change.next_phase,
                )
            )
            if open_period is not None and open_period.phase == change.phase.value:
                open_period.ended_on = change.on
                open_period = None
            if change.next_phase is not None:
                last = change is closings[-1]
                open_period = PhaseRecord(
                    enrollment_id=enrolment.enrollment_id,
                    phase=change.next_phase.value,
                    started_on=timeline.stage_started_on if last else change.on + timedelta(days=1),
                )
                session.add(open_period)
        elif isinstance(change, Discharged):
            await uow.emit(
                ClientDischarged(
                    enrollment_id=enrolment.enrollment_id,
                    client_id=enrolment.client_id,
                    on=change.on,
                    reason=change.reason,
                )
            )
            if open_period is not None and open_period.ended_on is None:
                open_period.ended_on = change.on
            if change.reason in programme.follow_up_after:
                for months in programme.follow_up_months:
                    session.add(
                        FollowUp(
                            follow_up_id=uuid.uuid4(),
                            enrollment_id=enrolment.enrollment_id,
                            client_id=enrolment.client_id,
                            agent_id=enrolment.agent_id,
                            due_on=change.on + relativedelta(months=months),
                        )
                    )
    store_timeline(programme, enrolment, timeline)


async def catch_up(uow: UnitOfWork, programme: Programme, enrolment: Enrolment, today: date) -> list[Change]:
    """Apply the time rules due before ``today`` to one enrolment; return what changed."""
    timeline, changes = advance(programme, timeline_of(enrolment), today)
    if changes:
        await apply_changes(uow, programme, enrolment, timeline, changes)
    return changes


async def apply_reversal(
    uow: UnitOfWork,
    programme: Programme,
    enrolment: Enrolment,
    timeline: Timeline,
    reversal: DropoutReversal,
) -> None:
    """Store ``timeline`` (the enrolment reopened by ``reversal``) and publish the correction:
    ``DropoutReversed``; the stage the dropout closed is open again, and the follow-ups the
    dropout scheduled and nobody recorded are dropped."""
    session = uow.session
    await uow.emit(
        DropoutReversed(
            enrollment_id=enrolment.enrollment_id,
            client_id=enrolment.client_id,
            dropped_out_on=reversal.dropped_out_on,
            on=reversal.on,
        )
    )
    closed_by_dropout = await session.scalar(
        select(PhaseRecord)
        .where(
            PhaseRecord.enrollment_id == enrolment.enrollment_id,
            PhaseRecord.phase == timeline.phase.value,
            PhaseRecord.ended_on == reversal.dropped_out_on,
        )
        .order_by(PhaseRecord.id.desc())
        .limit(1)
    )
    if closed_by_dropout is not None:
        closed_by_dropout.ended_on = None
    await session.execute(
        delete(FollowUp).where(
            FollowUp.enrollment_id == enrolment.enrollment_id, FollowUp.recorded_on.is_(None)
        )
    )
    store_timeline(programme, enrolment, timeline)
