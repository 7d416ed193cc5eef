"""Routes for the work with a client: programme sessions and follow-ups after discharge."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from pulih.kit.auth import allow
from pulih.kit.commands import CommandDep
from pulih.rehab import handlers
from pulih.rehab.access import FIELD_ROLES
from pulih.rehab.bodies import FollowUpView, RecordFollowUp, RecordSession, SessionView
from pulih.rehab.deps import Deps

router = APIRouter(prefix="/v1", tags=["sessions"], dependencies=[allow(*FIELD_ROLES)])
"""Every route refuses a caller without a field role (403) before it reads the request."""


@router.post("/enrolments/{enrollment_id}/sessions", status_code=201, response_model=SessionView)
async def record_session(
    enrollment_id: UUID, body: RecordSession, cmd: CommandDep, deps: Deps
) -> JSONResponse:
    """Record a session held with the client, attended or not; its kind must suit the stage."""
    today = cmd.runtime.clock.today()
    async with cmd.transaction() as tx:
        record, phase = await handlers.record_session(
            tx, deps.programme, cmd.principal, enrollment_id, body, today
        )
        return tx.reply(SessionView.of(record, phase), status_code=201)


@router.post("/clients/{client_id}/follow-ups", status_code=201, response_model=FollowUpView)
async def record_follow_up(client_id: UUID, body: RecordFollowUp, cmd: CommandDep) -> JSONResponse:
    """Record a follow-up after discharge (the +3 and +6 month ones the worklist shows)."""
    today = cmd.runtime.clock.today()
    async with cmd.transaction() as tx:
        follow_up = await handlers.record_follow_up(tx, cmd.principal, client_id, body, today)
        return tx.reply(FollowUpView.model_validate(follow_up), status_code=201)
