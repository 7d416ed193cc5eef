"""Routes for WHO ASSIST v3 screenings."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from pulih.kit.auth import allow
from pulih.kit.commands import CommandDep
from pulih.outreach import handlers
from pulih.outreach.access import FIELD_ROLES
from pulih.outreach.bodies import ScreenClient, ScreeningView
from pulih.outreach.deps import Deps

router = APIRouter(prefix="/v1", tags=["screenings"])


@router.post(
    "/clients/{client_id}/screenings",
    status_code=201,
    response_model=ScreeningView,
    dependencies=[allow(*FIELD_ROLES)],
)
async def screen_client(client_id: UUID, body: ScreenClient, cmd: CommandDep, deps: Deps) -> JSONResponse:
    """Screen with WHO ASSIST v3: scores, risks and the regency's recommended path."""
    today = cmd.runtime.clock.today()
    async with cmd.transaction() as tx:
        screening = await handlers.screen_client(tx, deps, cmd.principal, client_id, today, body)
        return tx.reply(ScreeningView.model_validate(screening, from_attributes=True), status_code=201)
