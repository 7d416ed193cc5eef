"""The work with a client: programme sessions, and follow-ups after discharge."""

from __future__ import annotations

import uuid
from datetime import date
from uuid import UUID

from pulih.contracts.codes import Phase
from pulih.contracts.events.rehab import FollowUpRecorded, SessionHeld
from pulih.kit.auth import Principal
from pulih.kit.database import insert_new
from pulih.kit.dates import not_in_future
from pulih.kit.errors import Conflict
from pulih.kit.read_model import active_agent_of
from pulih.kit.unit_of_work import UnitOfWork
from pulih.rehab.access import client_for, enrolment_for
from pulih.rehab.bodies import RecordFollowUp, RecordSession
from pulih.rehab.domain.follow_ups import check_follow_up
from pulih.rehab.domain.programme import Programme
from pulih.rehab.domain.sessions import check_session_day, stage_of_session
from pulih.rehab.domain.timeline import disproves_dropout, reverse_dropout, seen
from pulih.rehab.progression import apply_reversal, catch_up, phase_periods, store_timeline, timeline_of
from pulih.rehab.store import (
    FollowUp,
    KnownAgent,
    SessionRecord,
    follow_up_due,
    last_discharge,
    open_enrolment,
)


async def record_session(
    uow: UnitOfWork,
    programme: Programme,
    principal: Principal,
    enrollment_id: UUID,
    body: RecordSession,
    today: date,
) -> tuple[SessionRecord, Phase]:
    """Record a session held with the client, attended or not; return it and the phase it counted
    for. An attended session restarts the dropout count; one synced late that disproves the
    client's dropout reverses it first (``DropoutReversed``), and the time rules then run again
    from its day to today."""
    session = uow.session
    enrolment = await enrolment_for(session, enrollment_id, principal)
    not_in_future(body.held_on, today, "held_on")
    if body.session_id is not None and await session.get(SessionRecord, body.session_id) is not None:
        raise Conflict("session_exists", f"session {body.session_id} is already recorded", "session_id")
    await catch_up(uow, programme, enrolment, today)
    timeline = timeline_of(enrolment)
    check_session_day(timeline, enrolment.enrolled_on, body.held_on, body.attended)
    if disproves_dropout(timeline, body.held_on, body.attended):
        enrolled_again = await open_enrolment(session, enrolment.client_id) is not None
        timeline, reversal = reverse_dropout(timeline, body.held_on, enrolled_again=enrolled_again)
        await apply_reversal(uow, programme, enrolment, timeline, reversal)
    await active_agent_of(session, KnownAgent, body.agent_id, enrolment.unit_id)
    phase = stage_of_session(programme, await phase_periods(session, enrollment_id), body.held_on, body.kind)
    record = SessionRecord(
        session_id=body.session_id or uuid.uuid4(),
        enrollment_id=enrollment_id,
        client_id=enrolment.client_id,
        agent_id=body.agent_id,
        held_on=body.held_on,
        kind=body.kind.value,
        attended=body.attended,
        minutes=body.minutes,
    )
    await insert_new(session, record)
    if body.attended:
        store_timeline(programme, enrolment, seen(timeline_of(enrolment), body.held_on))
    await uow.emit(
        SessionHeld(
            session_id=record.session_id,
            enrollment_id=enrollment_id,
            client_id=enrolment.client_id,
            unit_id=enrolment.unit_id,
            agent_id=body.agent_id,
            held_on=body.held_on,
            kind=body.kind,
            attended=body.attended,
            minutes=body.minutes,
        )
    )
    await catch_up(uow, programme, enrolment, today)  # a reopened enrolment meets the rules again
    return record, phase


async def record_follow_up(
    uow: UnitOfWork, principal: Principal, client_id: UUID, body: RecordFollowUp, today: date
) -> FollowUp:
    """Record a follow-up after discharge: the earliest one due, or one more than the programme
    asks for (welcome too)."""
    session = uow.session
    await client_for(session, client_id, principal)
    not_in_future(body.on, today, "on")
    enrolment = await last_discharge(session, client_id)
    check_follow_up(enrolment.discharged_on if enrolment is not None else None, body.on)
    assert enrolment is not None  # check_follow_up refused a client never discharged
    due = await follow_up_due(session, enrolment.enrollment_id)
    if due is None:
        due = FollowUp(
            follow_up_id=body.follow_up_id or uuid.uuid4(),
            enrollment_id=enrolment.enrollment_id,
            client_id=client_id,
            agent_id=enrolment.agent_id,
        )
        session.add(due)
    due.recorded_on, due.status = body.on, body.status.value
    await uow.emit(
        FollowUpRecorded(follow_up_id=due.follow_up_id, client_id=client_id, on=body.on, status=body.status)
    )
    return due
