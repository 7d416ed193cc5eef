"""Who may touch which unit and client: the lookups every use case starts with."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from pulih.kit.auth import Principal, Role, require
from pulih.kit.errors import Forbidden, NotFound
from pulih.outreach.store import Client, Unit

FIELD_ROLES = (Role.AGENT, Role.FACILITATOR)
"""Who records field work: agents in their own unit, facilitators anywhere in the regency."""

REGENCY_ROLES = (Role.FACILITATOR, Role.ADMIN)
"""Who sets up units and agents."""


async def unit_for(session: AsyncSession, unit_id: UUID, principal: Principal) -> Unit:
    """The unit, if it exists and the caller may see it (404, 403)."""
    unit = await session.get(Unit, unit_id)
    if unit is None:
        raise NotFound("unit_not_found", f"no unit {unit_id}", "unit_id")
    if not principal.may_see_unit(unit_id):
        raise Forbidden("other_unit", "agents see their own unit only", "unit_id")
    return unit


async def client_for(session: AsyncSession, client_id: UUID, principal: Principal) -> Client:
    """The client, if it exists and the caller may see its unit (404, 403)."""
    require(principal, *FIELD_ROLES)
    client = await session.get(Client, client_id)
    if client is None:
        raise NotFound("client_not_found", f"no client {client_id}", "client_id")
    if not principal.may_see_unit(client.unit_id):
        raise Forbidden("other_unit", "agents see their own unit's clients only", "client_id")
    return client
