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
from pulih.kit.pagination import PAGED, Order, Page, Pages, paged
from pulih.outreach import handlers, queries
from pulih.outreach.access import FIELD_ROLES, REGENCY_ROLES
from pulih.outreach.bodies import (
    ClientPage,
    ClientView,
    DuplicatePage,
    DuplicateView,
    EraseClient,
    RegisterClient,
    ResolveDuplicate,
)
from pulih.outreach.deps import Deps
from pulih.outreach.store import Client

router = APIRouter(prefix="/v1", tags=["clients"])

DUPLICATE_RESOLVERS = (Role.FACILITATOR,)
"""Who sees and resolves possible duplicates: facilitators, who see the whole regency."""

CLIENTS = Order.by(Client.registered_on, Client.client_id)


@router.post("/clients", status_code=201, response_model=ClientView, dependencies=[allow(*FIELD_ROLES)])
async def register_client(body: RegisterClient, cmd: CommandDep, deps: Deps) -> JSONResponse:
    """Register a client: the identity is sealed here; the event carries only sex and age band.

    The answer is the same whether the NIK is new or already registered: a repeated NIK is
    flagged as a possible duplicate for a facilitator (``GET /v1/duplicates``)."""
    today = cmd.runtime.clock.today()
    async with cmd.transaction() as tx:
        client = await handlers.register_client(tx, deps, cmd.principal, today, body)
        return tx.reply(ClientView.model_validate(client, from_attributes=True), status_code=201)


@router.get("/clients", response_model=ClientPage, responses=PAGED, dependencies=[allow(*FIELD_ROLES)])
async def list_clients(
    runtime: RuntimeDep,
    principal: CurrentUser,
    pages: Annotated[Pages, paged(CLIENTS)],
    unit_id: Annotated[UUID | None, Query(description="one unit's clients (agents: their own)")] = None,
) -> Page[ClientView]:
    """Clients the caller may see, pseudonymous (no identity), by registration date."""
    if principal.role is Role.AGENT:
        if unit_id is not None and unit_id != principal.unit_id:
            raise Forbidden("other_unit", "agents see their own unit's clients only", "unit_id")
        unit_id = principal.unit_id
    async with runtime.database.sessions() as session:
        query = select(Client)
        if unit_id is not None:
            query = query.where(Client.unit_id == unit_id)
        clients = await pages.scalars(session, query)
    return pages.page([ClientView.model_validate(c, from_attributes=True) for c in clients])


@router.post("/clients/{client_id}/erase", response_model=ClientView, dependencies=[allow(*REGENCY_ROLES)])
async def erase_client(client_id: UUID, body: EraseClient, cmd: CommandDep) -> JSONResponse:
    """Erase a client for good: their data key is destroyed, so no copy can be decrypted."""
    today = cmd.runtime.clock.today()
    async with cmd.transaction() as tx:
        client = await handlers.erase_client(tx, client_id, today, body)
        return tx.reply(ClientView.model_validate(client, from_attributes=True))


@router.get(
    "/duplicates", response_model=DuplicatePage, responses=PAGED, dependencies=[allow(*DUPLICATE_RESOLVERS)]
)
async def list_duplicates(
    runtime: RuntimeDep,
    pages: Annotated[Pages, paged(queries.DUPLICATES)],
    status: Annotated[Literal["open", "resolved"] | None, Query(description="all if left out")] = None,
) -> Page[DuplicateView]:
    """Registrations whose NIK was already registered, oldest first (facilitator)."""
    async with runtime.database.sessions() as session:
        rows = await pages.rows(session, queries.possible_duplicates(status))
    return pages.page([queries.duplicate_view(*row) for row in rows])


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
