"""Routes for units, their recovery agents, and outreach counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from pulih.kit.auth import CurrentUser, Role, allow
from pulih.kit.commands import CommandDep
from pulih.kit.deps import RuntimeDep
from pulih.kit.pagination import PAGED, Order, Page, Pages, paged
from pulih.outreach import handlers
from pulih.outreach.access import FIELD_ROLES, REGENCY_ROLES, unit_for
from pulih.outreach.bodies import (
    AgentPage,
    AgentView,
    DeactivateAgent,
    EstablishUnit,
    OutreachView,
    RecordOutreach,
    RegisterAgent,
    UnitPage,
    UnitView,
)
from pulih.outreach.store import Agent, Unit

router = APIRouter(prefix="/v1", tags=["units"])

UNITS = Order.by(Unit.name, Unit.unit_id)
AGENTS = Order.by(Agent.trained_on, Agent.agent_id)


def villages_of(app: FastAPI, regency: str) -> None:
    """Have ``app``'s OpenAPI document say that a unit's village is in ``regency``: the pattern
    of ``EstablishUnit.village_code`` begins with the regency's code, and so do its examples
    (the request model, shared by every regency, says only ten digits)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()
        establish = document["components"]["schemas"]["EstablishUnit"]
        establish["properties"]["village_code"]["pattern"] = f"^{regency}[0-9]{{6}}$"
        for example in establish.get("examples", []):
            example["village_code"] = regency + example["village_code"][len(regency) :]
        return document

    app.openapi = openapi  # type: ignore[method-assign]


@router.post("/units", status_code=201, response_model=UnitView, dependencies=[allow(*REGENCY_ROLES)])
async def establish_unit(body: EstablishUnit, cmd: CommandDep) -> JSONResponse:
    """Establish a Unit IBM in a village of this regency (facilitator, admin)."""
    today = cmd.runtime.clock.today()
    async with cmd.transaction() as tx:
        unit = await handlers.establish_unit(tx, cmd.runtime.settings.regency, today, body)
        return tx.reply(UnitView.model_validate(unit, from_attributes=True), status_code=201)


@router.get(
    "/units", response_model=UnitPage, responses=PAGED, dependencies=[allow(Role.AGENT, *REGENCY_ROLES)]
)
async def list_units(
    runtime: RuntimeDep, principal: CurrentUser, pages: Annotated[Pages, paged(UNITS)]
) -> Page[UnitView]:
    """Units the caller may see, by name: an agent's own, or the whole regency."""
    async with runtime.database.sessions() as session:
        active = (
            select(Agent.unit_id, func.count().label("n"))
            .where(Agent.active)
            .group_by(Agent.unit_id)
            .subquery()
        )
        query = select(Unit, func.coalesce(active.c.n, 0)).outerjoin(active, active.c.unit_id == Unit.unit_id)
        if principal.role is Role.AGENT:
            query = query.where(Unit.unit_id == principal.unit_id)
        rows = await pages.rows(session, query)
    return pages.page(
        [
            UnitView.model_validate(unit, from_attributes=True).model_copy(update={"active_agents": n})
            for unit, n in rows
        ]
    )


@router.post(
    "/units/{unit_id}/agents",
    status_code=201,
    response_model=AgentView,
    dependencies=[allow(*REGENCY_ROLES)],
)
async def register_agent(unit_id: UUID, body: RegisterAgent, cmd: CommandDep) -> JSONResponse:
    """Register a trained Agen Pemulihan in a unit (facilitator, admin)."""
    today = cmd.runtime.clock.today()
    async with cmd.transaction() as tx:
        agent = await handlers.register_agent(tx, cmd.principal, unit_id, today, body)
        return tx.reply(AgentView.model_validate(agent, from_attributes=True), status_code=201)


@router.get(
    "/units/{unit_id}/agents",
    response_model=AgentPage,
    responses=PAGED,
    dependencies=[allow(Role.AGENT, *REGENCY_ROLES)],
)
async def list_agents(
    unit_id: UUID, runtime: RuntimeDep, principal: CurrentUser, pages: Annotated[Pages, paged(AGENTS)]
) -> Page[AgentView]:
    """A unit's agents, active and former, by training date."""
    async with runtime.database.sessions() as session:
        await unit_for(session, unit_id, principal)
        agents = await pages.scalars(session, select(Agent).where(Agent.unit_id == unit_id))
    return pages.page([AgentView.model_validate(a, from_attributes=True) for a in agents])


@router.post("/agents/{agent_id}/deactivate", response_model=AgentView, dependencies=[allow(*REGENCY_ROLES)])
async def deactivate_agent(agent_id: UUID, body: DeactivateAgent, cmd: CommandDep) -> JSONResponse:
    """An agent leaves the unit (facilitator, admin)."""
    today = cmd.runtime.clock.today()
    async with cmd.transaction() as tx:
        agent = await handlers.deactivate_agent(tx, agent_id, today, body)
        return tx.reply(AgentView.model_validate(agent, from_attributes=True))


@router.post(
    "/units/{unit_id}/activities",
    status_code=201,
    response_model=OutreachView,
    dependencies=[allow(*FIELD_ROLES)],
)
async def record_outreach(unit_id: UUID, body: RecordOutreach, cmd: CommandDep) -> JSONResponse:
    """Record sosialisasi, pemetaan or penjangkauan as a count of people reached."""
    today = cmd.runtime.clock.today()
    async with cmd.transaction() as tx:
        activity = await handlers.record_outreach(tx, cmd.principal, unit_id, today, body)
        return tx.reply(OutreachView.model_validate(activity, from_attributes=True), status_code=201)
