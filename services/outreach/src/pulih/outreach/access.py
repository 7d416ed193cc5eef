"""Who may touch which unit and client: the lookups every use case starts with.

They read the few columns the rules need with statements built once, not ORM objects: a command
only checks the unit or client it names (nothing here is changed through them), and an ORM load
by key costs twice the SELECT.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from uuid import UUID

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.kit.auth import Principal, Role, require
from pulih.kit.errors import Forbidden, Invalid, NotFound
from pulih.outreach.store import Agent, Client, Unit

FIELD_ROLES = (Role.AGENT, Role.FACILITATOR)
"""Who records field work: agents in their own unit, facilitators anywhere in the regency."""

REGENCY_ROLES = (Role.FACILITATOR, Role.ADMIN)
"""Who sets up units and agents."""


@dataclass(frozen=True)
class KnownUnit:
    """What the rules read of a unit."""

    unit_id: UUID
    established_on: date


@dataclass(frozen=True)
class KnownClient:
    """What the rules read of a client (never the identity)."""

    client_id: UUID
    unit_id: UUID
    registered_on: date
    erased_on: date | None


@dataclass(frozen=True)
class ActiveAgent:
    """What the rules read of an agent who records work."""

    agent_id: UUID
    unit_id: UUID
    trained_on: date


_AGENT = select(Agent.unit_id, Agent.trained_on, Agent.active).where(Agent.agent_id == bindparam("agent_id"))
_UNIT = select(Unit.unit_id, Unit.established_on).where(Unit.unit_id == bindparam("unit_id"))
_CLIENT = select(Client.client_id, Client.unit_id, Client.registered_on, Client.erased_on).where(
    Client.client_id == bindparam("client_id")
)


async def unit_for(session: AsyncSession, unit_id: UUID, principal: Principal) -> KnownUnit:
    """The unit, if it exists and the caller may see it (404, 403)."""
    row = (await session.execute(_UNIT, {"unit_id": unit_id})).first()
    if row is None:
        raise NotFound("unit_not_found", f"no unit {unit_id}", "unit_id")
    if not principal.may_see_unit(unit_id):
        raise Forbidden("other_unit", "agents see their own unit only", "unit_id")
    return KnownUnit(*row)


async def client_for(session: AsyncSession, client_id: UUID, principal: Principal) -> KnownClient:
    """The client, if it exists and the caller may see its unit (404, 403)."""
    require(principal, *FIELD_ROLES)
    row = (await session.execute(_CLIENT, {"client_id": client_id})).first()
    if row is None:
        raise NotFound("client_not_found", f"no client {client_id}", "client_id")
    client = KnownClient(*row)
    if not principal.may_see_unit(client.unit_id):
        raise Forbidden("other_unit", "agents see their own unit's clients only", "client_id")
    return client


async def active_agent(session: AsyncSession, agent_id: UUID, unit_id: UUID) -> ActiveAgent:
    """An active agent of ``unit_id`` (422 otherwise: the request names the wrong agent), with
    the answers of :func:`pulih.kit.read_model.active_agent_of`, read with one Core SELECT."""
    row = (await session.execute(_AGENT, {"agent_id": agent_id})).first()
    if row is None or row.unit_id != unit_id:
        raise Invalid("unknown_agent", f"no agent {agent_id} in this unit", "agent_id")
    if not row.active:
        raise Invalid("agent_inactive", f"agent {agent_id} was deactivated", "agent_id")
    return ActiveAgent(agent_id, row.unit_id, row.trained_on)
