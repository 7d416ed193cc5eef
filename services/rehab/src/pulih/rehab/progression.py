"""Moving enrolments along: the timeline's changes written to the store and to the outbox.

The routes, the consumers and the scheduler all change enrolments through here, inside their
own transaction, so a phase closing is always its ``PhaseCompleted`` event and its history row
together. Every write bumps the enrolment's version: if another replica or request got there
first, the transaction fails (``StaleDataError``) and nothing is applied twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import date, timedelta

from dateutil.relativedelta import relativedelta
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from pulih.contracts.codes import DischargeReason, Phase
from pulih.contracts.events.rehab import ClientDischarged, PhaseCompleted
from pulih.kit.emitter import Emitter
from pulih.kit.programme import load_programme
from pulih.kit.runtime import ServiceRuntime
from pulih.rehab.programme import Programme, programme_from
from pulih.rehab.store import Enrolment, FollowUp, PhaseRecord
from pulih.rehab.timeline import (
    Change,
    Discharged,
    PhaseClosed,
    PhasePeriod,
    Status,
    Timeline,
    advance,
    dropout_on,
    stage_ends_on,
)

log = logging.getLogger("pulih.rehab.progression")


def programme_of(runtime: ServiceRuntime) -> Programme:
    """The programme this regency runs (its programme file, read once)."""
    programme = runtime.extras.get("programme")
    if not isinstance(programme, Programme):
        programme = programme_from(load_programme(runtime.settings.programme_file))
        runtime.extras["programme"] = programme
    return programme


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
    if timeline.status is Status.ACTIVE:
        first = min(stage_ends_on(programme, timeline), dropout_on(programme, timeline))
        enrolment.next_rule_on = first + timedelta(days=1)
    else:
        enrolment.next_rule_on = None


async def phase_periods(session: AsyncSession, enrollment_id: uuid.UUID) -> list[PhasePeriod]:
    """The enrolment's phases, oldest first."""
    rows = (
        await session.scalars(
            select(PhaseRecord).where(PhaseRecord.enrollment_id == enrollment_id).order_by(PhaseRecord.id)
        )
    ).all()
    return [PhasePeriod(Phase(r.phase), r.started_on, r.ended_on) for r in rows]


async def apply_changes(
    session: AsyncSession,
    emitter: Emitter,
    programme: Programme,
    enrolment: Enrolment,
    timeline: Timeline,
    changes: Sequence[Change],
    *,
    correlationid: str | None = None,
    causationid: str | None = None,
) -> None:
    """Store ``timeline`` (the state after ``changes``) and emit one event per change."""
    open_period = await session.scalar(
        select(PhaseRecord).where(
            PhaseRecord.enrollment_id == enrolment.enrollment_id, PhaseRecord.ended_on.is_(None)
        )
    )
    closings = [c for c in changes if isinstance(c, PhaseClosed)]
    for change in changes:
        if isinstance(change, PhaseClosed):
            await emitter.emit(
                session,
                PhaseCompleted(
                    enrollment_id=enrolment.enrollment_id,
                    client_id=enrolment.client_id,
                    phase=change.phase,
                    completed_on=change.on,
                    next_phase=change.next_phase,
                ),
                correlationid=correlationid,
                causationid=causationid,
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
            await emitter.emit(
                session,
                ClientDischarged(
                    enrollment_id=enrolment.enrollment_id,
                    client_id=enrolment.client_id,
                    on=change.on,
                    reason=change.reason,
                ),
                correlationid=correlationid,
                causationid=causationid,
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


async def catch_up(
    session: AsyncSession,
    emitter: Emitter,
    programme: Programme,
    enrolment: Enrolment,
    today: date,
    *,
    correlationid: str | None = None,
    causationid: str | None = None,
) -> list[Change]:
    """Apply the time rules due before ``today`` to one enrolment; return what changed."""
    timeline, changes = advance(programme, timeline_of(enrolment), today)
    if changes:
        await apply_changes(
            session,
            emitter,
            programme,
            enrolment,
            timeline,
            changes,
            correlationid=correlationid,
            causationid=causationid,
        )
    return changes


async def advance_enrolments(runtime: ServiceRuntime) -> int:
    """The scheduler's job: every active enrolment with a rule due by today, one transaction each.

    Safe with several replicas: an enrolment another replica moved first fails on its version
    and is skipped here.
    """
    programme = programme_of(runtime)
    today = runtime.clock.today()
    async with runtime.database.sessions() as session:
        due = (
            await session.scalars(
                select(Enrolment.enrollment_id)
                .where(Enrolment.status == Status.ACTIVE.value, Enrolment.next_rule_on <= today)
                .order_by(Enrolment.next_rule_on)
            )
        ).all()
    changed = 0
    for enrollment_id in due:
        try:
            async with runtime.database.transaction() as tx:
                enrolment = await tx.get(Enrolment, enrollment_id)
                if enrolment is None or enrolment.status != Status.ACTIVE.value:
                    continue
                changed += len(await catch_up(tx, runtime.emitter, programme, enrolment, today))
        except (StaleDataError, OperationalError) as exc:
            # another replica moved it first (PostgreSQL: the version check; SQLite: the file's
            # single writer); the next run sees the new state
            log.info("enrolment %s left for now: %s", enrollment_id, type(exc).__name__)
    return changed
