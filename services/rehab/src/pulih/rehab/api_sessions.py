"""Routes for the work with a client: programme sessions and follow-ups after discharge."""

from __future__ import annotations

import uuid
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.contracts.events.rehab import FollowUpRecorded, SessionHeld
from pulih.kit.commands import CommandDep
from pulih.kit.errors import Conflict, Invalid
from pulih.rehab.access import active_agent_of, client_for, enrolment_for
from pulih.rehab.progression import catch_up, phase_periods, programme_of, store_timeline, timeline_of
from pulih.rehab.store import Enrolment, FollowUp, SessionRecord
from pulih.rehab.timeline import Status, phase_on, seen
from pulih.rehab.views import FollowUpView, RecordFollowUp, RecordSession, SessionView

router = APIRouter(prefix="/v1", tags=["sessions"])


async def _exists(session: AsyncSession, model: type[SessionRecord], key: UUID) -> bool:
    return await session.get(model, key) is not None


@router.post("/enrolments/{enrollment_id}/sessions", status_code=201, response_model=SessionView)
async def record_session(enrollment_id: UUID, body: RecordSession, cmd: CommandDep) -> JSONResponse:
    """Record a session held with the client, attended or not; its kind must suit the stage."""
    runtime = cmd.runtime
    programme = programme_of(runtime)
    today = runtime.clock.today()
    if body.held_on > today:
        raise Invalid("date_in_future", f"held_on is after today ({today})", "held_on")
    async with cmd.transaction() as tx:
        enrolment = await enrolment_for(tx.session, enrollment_id, cmd.principal)
        if body.session_id is not None and await _exists(tx.session, SessionRecord, body.session_id):
            raise Conflict("session_exists", f"session {body.session_id} is already recorded", "session_id")
        await catch_up(
            tx.session, runtime.emitter, programme, enrolment, today, correlationid=tx.correlationid
        )
        if enrolment.status == Status.DISCHARGED.value:
            raise Conflict(
                "enrolment_discharged",
                f"the client was discharged on {enrolment.discharged_on} ({enrolment.discharge_reason})",
            )
        if enrolment.status == Status.PAUSED.value:
            raise Conflict(
                "enrolment_paused", "the client is with a clinic; sessions resume when they return"
            )
        if body.held_on < enrolment.enrolled_on:
            raise Invalid("date_before_enrolment", "held_on is before the enrolment", "held_on")
        await active_agent_of(tx.session, body.agent_id, enrolment.unit_id)
        phase = phase_on(await phase_periods(tx.session, enrollment_id), body.held_on)
        if phase is None:
            raise Invalid(
                "not_in_programme", f"the client was not in the programme on {body.held_on}", "held_on"
            )
        stage = programme.stage(phase)
        if body.kind not in stage.kinds:
            allowed = ", ".join(sorted(stage.kinds)) or "none"
            raise Invalid(
                "kind_not_in_stage",
                f"a {body.kind} session is not part of {phase} (allowed: {allowed})",
                "kind",
            )
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
        tx.session.add(record)
        if body.attended:
            store_timeline(programme, enrolment, seen(timeline_of(enrolment), body.held_on))
        await tx.emit(
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
        view = SessionView.model_validate(
            {**body.model_dump(), "session_id": record.session_id, "enrollment_id": enrollment_id}
            | {"client_id": enrolment.client_id, "phase": phase}
        )
        return tx.reply(view, status_code=201)


@router.post("/clients/{client_id}/follow-ups", status_code=201, response_model=FollowUpView)
async def record_follow_up(client_id: UUID, body: RecordFollowUp, cmd: CommandDep) -> JSONResponse:
    """Record a follow-up after discharge (the +3 and +6 month ones the worklist shows)."""
    if body.on > cmd.runtime.clock.today():
        raise Invalid("date_in_future", "the follow-up date is after today", "on")
    async with cmd.transaction() as tx:
        await client_for(tx.session, client_id, cmd.principal)
        enrolment = await tx.session.scalar(
            select(Enrolment)
            .where(Enrolment.client_id == client_id, Enrolment.status == Status.DISCHARGED.value)
            .order_by(Enrolment.discharged_on.desc())
        )
        if enrolment is None or enrolment.discharged_on is None:
            raise Conflict("not_discharged", "follow-ups are recorded after the client's discharge")
        if body.on < enrolment.discharged_on:
            raise Invalid(
                "date_before_discharge", f"the client was discharged on {enrolment.discharged_on}", "on"
            )
        due = await tx.session.scalar(
            select(FollowUp)
            .where(FollowUp.enrollment_id == enrolment.enrollment_id, FollowUp.recorded_on.is_(None))
            .order_by(FollowUp.due_on)
        )
        if due is None:  # more follow-ups than the programme asks for are welcome
            due = FollowUp(
                follow_up_id=body.follow_up_id or uuid.uuid4(),
                enrollment_id=enrolment.enrollment_id,
                client_id=client_id,
                agent_id=enrolment.agent_id,
            )
            tx.session.add(due)
        due.recorded_on, due.status = body.on, body.status.value
        await tx.emit(
            FollowUpRecorded(
                follow_up_id=due.follow_up_id, client_id=client_id, on=body.on, status=body.status
            )
        )
        return tx.reply(FollowUpView.model_validate(due, from_attributes=True), status_code=201)
