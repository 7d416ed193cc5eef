"""Routes for units, their recovery agents, and outreach counts."""

from __future__ import annotations

import uuid
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from pulih.contracts.events.outreach import (
    AgentDeactivated,
    AgentRegistered,
    OutreachActivityRecorded,
    UnitEstablished,
)
from pulih.kit.auth import CurrentUser, Role, require
from pulih.kit.commands import CommandDep
from pulih.kit.deps import RuntimeDep
from pulih.kit.errors import Conflict, Invalid, NotFound
from pulih.outreach.access import FIELD_ROLES, REGENCY_ROLES, active_agent_of, unit_for
from pulih.outreach.store import Agent, OutreachActivity, Unit
from pulih.outreach.views import (
    AgentView,
    DeactivateAgent,
    EstablishUnit,
    OutreachView,
    RecordOutreach,
    RegisterAgent,
    UnitView,
)

router = APIRouter(prefix="/v1", tags=["units"])


def _agent_view(agent: Agent) -> AgentView:
    return AgentView(
        agent_id=agent.agent_id,
        unit_id=agent.unit_id,
        trained_on=agent.trained_on,
        active=agent.active,
        deactivated_on=agent.deactivated_on,
    )


@router.post("/units", status_code=201, response_model=UnitView)
async def establish_unit(body: EstablishUnit, cmd: CommandDep) -> JSONResponse:
    """Establish a Unit IBM in a village of this regency (facilitator, admin)."""
    require(cmd.principal, *REGENCY_ROLES)
    regency = cmd.runtime.settings.regency
    if not body.village_code.startswith(regency):
        raise Invalid(
            "village_outside_regency",
            f"village {body.village_code} is not in regency {regency}",
            "village_code",
        )
    async with cmd.transaction() as tx:
        unit = Unit(
            unit_id=uuid.uuid4(),
            name=body.name,
            village_code=body.village_code,
            established_on=body.established_on,
        )
        tx.session.add(unit)
        await tx.emit(
            UnitEstablished(
                unit_id=unit.unit_id,
                name=unit.name,
                village_code=unit.village_code,
                established_on=unit.established_on,
            )
        )
        return tx.reply(UnitView(**_unit_fields(unit)), status_code=201)


def _unit_fields(unit: Unit) -> dict[str, object]:
    return {
        "unit_id": unit.unit_id,
        "name": unit.name,
        "village_code": unit.village_code,
        "established_on": unit.established_on,
    }


@router.get("/units", response_model=list[UnitView])
async def list_units(runtime: RuntimeDep, principal: CurrentUser) -> list[UnitView]:
    """Units the caller may see: an agent's own, or the whole regency."""
    require(principal, Role.AGENT, *REGENCY_ROLES)
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
        rows = (await session.execute(query.order_by(Unit.name))).all()
    return [UnitView(**_unit_fields(unit), active_agents=n) for unit, n in rows]


@router.post("/units/{unit_id}/agents", status_code=201, response_model=AgentView)
async def register_agent(unit_id: UUID, body: RegisterAgent, cmd: CommandDep) -> JSONResponse:
    """Register a trained Agen Pemulihan in a unit (facilitator, admin)."""
    require(cmd.principal, *REGENCY_ROLES)
    async with cmd.transaction() as tx:
        await unit_for(tx.session, unit_id, cmd.principal)
        agent_id = body.agent_id or uuid.uuid4()
        if await tx.session.get(Agent, agent_id) is not None:
            raise Conflict("agent_exists", f"agent {agent_id} is already registered", "agent_id")
        agent = Agent(agent_id=agent_id, unit_id=unit_id, trained_on=body.trained_on, active=True)
        tx.session.add(agent)
        await tx.emit(AgentRegistered(agent_id=agent_id, unit_id=unit_id, trained_on=body.trained_on))
        return tx.reply(_agent_view(agent), status_code=201)


@router.get("/units/{unit_id}/agents", response_model=list[AgentView])
async def list_agents(unit_id: UUID, runtime: RuntimeDep, principal: CurrentUser) -> list[AgentView]:
    """A unit's agents, active and former."""
    require(principal, Role.AGENT, *REGENCY_ROLES)
    async with runtime.database.sessions() as session:
        await unit_for(session, unit_id, principal)
        agents = (await session.scalars(select(Agent).where(Agent.unit_id == unit_id))).all()
    return [_agent_view(a) for a in agents]


@router.post("/agents/{agent_id}/deactivate", response_model=AgentView)
async def deactivate_agent(agent_id: UUID, body: DeactivateAgent, cmd: CommandDep) -> JSONResponse:
    """An agent leaves the unit (facilitator, admin)."""
    require(cmd.principal, *REGENCY_ROLES)
    async with cmd.transaction() as tx:
        agent = await tx.session.get(Agent, agent_id)
        if agent is None:
            raise NotFound("agent_not_found", f"no agent {agent_id}", "agent_id")
        if not agent.active:
            raise Conflict("agent_inactive", f"agent {agent_id} is already deactivated")
        if body.on < agent.trained_on:
            raise Invalid("before_training", "an agent cannot leave before being trained", "on")
        agent.active = False
        agent.deactivated_on = body.on
        agent.deactivation_reason = body.reason_code.value
        await tx.emit(
            AgentDeactivated(
                agent_id=agent_id, unit_id=agent.unit_id, on=body.on, reason_code=body.reason_code
            )
        )
        return tx.reply(_agent_view(agent))


@router.post("/units/{unit_id}/activities", status_code=201, response_model=OutreachView)
async def record_outreach(unit_id: UUID, body: RecordOutreach, cmd: CommandDep) -> JSONResponse:
    """Record sosialisasi, pemetaan or penjangkauan as a count of people reached."""
    require(cmd.principal, *FIELD_ROLES)
    async with cmd.transaction() as tx:
        await unit_for(tx.session, unit_id, cmd.principal)
        await active_agent_of(tx.session, body.agent_id, unit_id)
        activity = OutreachActivity(activity_id=uuid.uuid4(), unit_id=unit_id, **body.model_dump())
        tx.session.add(activity)
        await tx.emit(
            OutreachActivityRecorded(
                activity_id=activity.activity_id,
                unit_id=unit_id,
                agent_id=body.agent_id,
                kind=body.kind,
                held_on=body.held_on,
                people_reached=body.people_reached,
            )
        )
        return tx.reply(
            OutreachView(activity_id=activity.activity_id, unit_id=unit_id, **body.model_dump()),
            201,
        )
