"""Units IBM, their recovery agents, and outreach counts."""

from __future__ import annotations

import uuid
from datetime import date
from uuid import UUID

from pulih.contracts.events.outreach import (
    AgentDeactivated,
    AgentRegistered,
    OutreachActivityRecorded,
    UnitEstablished,
)
from pulih.kit.auth import Principal
from pulih.kit.errors import Conflict, NotFound
from pulih.kit.unit_of_work import UnitOfWork
from pulih.outreach.access import active_agent, unit_for
from pulih.outreach.bodies import DeactivateAgent, EstablishUnit, RecordOutreach, RegisterAgent
from pulih.outreach.domain import units as unit_rules
from pulih.outreach.domain.text import clean_name
from pulih.outreach.store import Agent, OutreachActivity, Unit


async def establish_unit(uow: UnitOfWork, regency: str, today: date, body: EstablishUnit) -> Unit:
    """Establish a Unit IBM in a village of the regency."""
    name = clean_name(body.name, "name")
    unit_rules.check_village(body.village_code, regency)
    unit_rules.check_established(body.established_on, today)
    unit = Unit(unit_id=uuid.uuid4(), **body.model_dump(exclude={"name"}), name=name)
    uow.session.add(unit)
    await uow.emit(UnitEstablished.model_validate(unit, from_attributes=True))
    return unit


async def register_agent(
    uow: UnitOfWork, principal: Principal, unit_id: UUID, today: date, body: RegisterAgent
) -> Agent:
    """Register a trained Agen Pemulihan in a unit; a device-made id may be given."""
    await unit_for(uow.session, unit_id, principal)
    unit_rules.check_training(body.trained_on, today)
    agent_id = body.agent_id or uuid.uuid4()
    if await uow.session.get(Agent, agent_id) is not None:
        raise Conflict("agent_exists", f"agent {agent_id} is already registered", "agent_id")
    agent = Agent(agent_id=agent_id, unit_id=unit_id, trained_on=body.trained_on, active=True)
    uow.session.add(agent)
    await uow.emit(AgentRegistered.model_validate(agent, from_attributes=True))
    return agent


async def deactivate_agent(uow: UnitOfWork, agent_id: UUID, today: date, body: DeactivateAgent) -> Agent:
    """An agent leaves the unit."""
    agent = await uow.session.get(Agent, agent_id)
    if agent is None:
        raise NotFound("agent_not_found", f"no agent {agent_id}", "agent_id")
    unit = await uow.session.get(Unit, agent.unit_id)
    assert unit is not None  # an agent's unit is a foreign key
    unit_rules.check_deactivation(
        agent_id, agent.active, agent.trained_on, unit.established_on, body.on, today
    )
    agent.active = False
    agent.deactivated_on = body.on
    agent.deactivation_reason = body.reason_code.value
    await uow.emit(AgentDeactivated(agent_id=agent_id, unit_id=agent.unit_id, **body.model_dump()))
    return agent


async def record_outreach(
    uow: UnitOfWork, principal: Principal, unit_id: UUID, today: date, body: RecordOutreach
) -> OutreachActivity:
    """Record sosialisasi, pemetaan or penjangkauan as a count of people reached."""
    unit = await unit_for(uow.session, unit_id, principal)
    agent = await active_agent(uow.session, body.agent_id, unit_id)
    unit_rules.check_work_date(body.held_on, "held_on", unit.established_on, agent.trained_on, today)
    activity = OutreachActivity(activity_id=uuid.uuid4(), unit_id=unit_id, **body.model_dump())
    uow.session.add(activity)
    await uow.emit(OutreachActivityRecorded.model_validate(activity, from_attributes=True))
    return activity
