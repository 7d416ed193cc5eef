"""Routes for clients: registration, the pseudonymous list, possible duplicates, and erasure."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select

from pulih.kit.auth import CurrentUser, Role, allow
from pulih.kit.commands import CommandDep
from pulih.kit.deps import RuntimeDep
from pulih.kit.errors import Forbidden
from pulih.outreach import handlers
from pulih.outreach.access import FIELD_ROLES, REGENCY_ROLES
from pulih.outreach.bodies import ClientView, DuplicateView, EraseClient, RegisterClient, ResolveDuplicate
from pulih.outreach.deps import Deps
from pulih.outreach.store import Client

router = APIRouter(prefix="/v1", tags=["clients"])

DUPLICATE_RESOLVERS = (Role.FACILITATOR,)
"""Who sees and resolves possible duplicates: facilitators, who see the whole regency."""


@router.post("/clients", status_code=201, response_model=ClientView, dependencies=[allow(*FIELD_ROLES)])
async def register_client(body: RegisterClient, cmd: CommandDep, deps: Deps) -> JSONResponse:
    """Register a client: the identity is sealed here; the event carries only sex and age band.

    The answer is the same whether the NIK is new or already registered: a repeated NIK is
    flagged as a possible duplicate for a facilitator (``GET /v1/duplicates``)."""
    today = cmd.runtime.clock.today()
    async with cmd.transaction() as tx:
        client = await handlers.register_client(tx, deps, cmd.principal, today, body)
        return tx.reply(ClientView.model_validate(client, from_attributes=True), status_code=201)


@router.get("/clients", response_model=list[ClientView], dependencies=[allow(*FIELD_ROLES)])
async def list_clients(
    runtime: RuntimeDep, principal: CurrentUser, unit_id: Annotated[UUID | None, Query()] = None
) -> list[ClientView]:
    """Clients the caller may see, pseudonymous (no identity)."""
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


@router.post("/clients/{client_id}/erase", response_model=ClientView, dependencies=[allow(*REGENCY_ROLES)])
async def erase_client(client_id: UUID, body: EraseClient, cmd: CommandDep) -> JSONResponse:
    """Erase a client for good: their data key is destroyed, so no copy can be decrypted."""
    today = cmd.runtime.clock.today()
    async with cmd.transaction() as tx:
        client = await handlers.erase_client(tx, client_id, today, body)
        return tx.reply(ClientView.model_validate(client, from_attributes=True))


@router.get("/duplicates", response_model=list[DuplicateView], dependencies=[allow(*DUPLICATE_RESOLVERS)])
async def list_duplicates(
    runtime: RuntimeDep, status: Annotated[Literal["open", "resolved"] | None, Query()] = None
) -> list[DuplicateView]:
    """Registrations whose NIK was already registered, oldest first (facilitator)."""
    async with runtime.database.sessions() as session:
        return await handlers.possible_duplicates(session, status=status)


@router.post(
    "/duplicates/{duplicate_id}/resolve",
    response_model=DuplicateView,
    dependencies=[allow(*DUPLICATE_RESOLVERS)],
)
async def resolve_duplicate(duplicate_id: UUID, body: ResolveDuplicate, cmd: CommandDep) -> JSONResponse:
    """``same_person`` erases the newer registration's identity (``ClientErased``);
    ``different_people`` keeps both. Once (facilitator)."""
    today = cmd.runtime.clock.today()
    async with cmd.transaction() as tx:
        view = await handlers.resolve_duplicate(tx, cmd.principal, duplicate_id, today, body)
        return tx.reply(view)
