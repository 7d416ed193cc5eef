"""Routes for clients: registration, the pseudonymous list, and erasure."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select

from pulih.kit.auth import CurrentUser, Role, require
from pulih.kit.commands import CommandDep
from pulih.kit.deps import RuntimeDep
from pulih.kit.errors import Forbidden
from pulih.outreach import handlers
from pulih.outreach.access import FIELD_ROLES, REGENCY_ROLES
from pulih.outreach.bodies import ClientView, EraseClient, RegisterClient
from pulih.outreach.deps import Deps
from pulih.outreach.store import Client

router = APIRouter(prefix="/v1", tags=["clients"])


@router.post("/clients", status_code=201, response_model=ClientView)
async def register_client(body: RegisterClient, cmd: CommandDep, deps: Deps) -> JSONResponse:
    """Register a client: the identity is sealed here; the event carries only sex and age band."""
    require(cmd.principal, *FIELD_ROLES)
    async with cmd.transaction() as tx:
        client = await handlers.register_client(tx, deps, cmd.principal, body)
        return tx.reply(ClientView.model_validate(client, from_attributes=True), status_code=201)


@router.get("/clients", response_model=list[ClientView])
async def list_clients(
    runtime: RuntimeDep, principal: CurrentUser, unit_id: Annotated[UUID | None, Query()] = None
) -> list[ClientView]:
    """Clients the caller may see, pseudonymous (no identity)."""
    require(principal, *FIELD_ROLES)
    if principal.role is Role.AGENT:
        if unit_id is not None and unit_id != principal.unit_id:
            raise Forbidden("other_unit", "agents see their own unit's clients only", "unit_id")
        unit_id = principal.unit_id
    async with runtime.database.sessions() as session:
        query = select(Client).order_by(Client.registered_on)
        if unit_id is not None:
            query = query.where(Client.unit_id == unit_id)
        clients = (await session.scalars(query)).all()
    return [ClientView.model_validate(c, from_attributes=True) for c in clients]


@router.post("/clients/{client_id}/erase", response_model=ClientView)
async def erase_client(client_id: UUID, body: EraseClient, cmd: CommandDep) -> JSONResponse:
    """Erase a client for good: their data key is destroyed, so no copy can be decrypted."""
    require(cmd.principal, *REGENCY_ROLES)
    async with cmd.transaction() as tx:
        client = await handlers.erase_client(tx, client_id, body)
        return tx.reply(ClientView.model_validate(client, from_attributes=True))
