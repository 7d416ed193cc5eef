"""Who may touch which client and enrolment: the lookups every route starts with."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from pulih.kit.auth import Principal, Role, require
from pulih.kit.errors import Forbidden, NotFound
from pulih.rehab.store import Enrolment, KnownClient

FIELD_ROLES = (Role.AGENT, Role.FACILITATOR)
"""Who runs the programme: agents in their own unit, facilitators anywhere in the regency."""


def may_see(principal: Principal, unit_id: UUID) -> None:
    """403 unless the caller works in ``unit_id`` (agents) or the whole regency."""
    require(principal, *FIELD_ROLES)
    if not principal.may_see_unit(unit_id):
        raise Forbidden("other_unit", "agents see their own unit's clients only", "unit_id")


async def client_for(session: AsyncSession, client_id: UUID, principal: Principal) -> KnownClient:
    """The client as rehab knows it (404 until its registration event has arrived; 403)."""
    require(principal, *FIELD_ROLES)
    client = await session.get(KnownClient, client_id)
    if client is None:
        raise NotFound(
            "client_not_found",
            f"rehab has not heard of client {client_id} (yet): if outreach registered them just "
            "now, send the request again in a moment, or send Pulih-After with the event ids "
            "outreach answered in Pulih-Events",
            "client_id",
        )
    may_see(principal, client.unit_id)
    return client


async def enrolment_for(session: AsyncSession, enrollment_id: UUID, principal: Principal) -> Enrolment:
    """The enrolment, if it exists and the caller may see its unit (404, 403)."""
    require(principal, *FIELD_ROLES)
    enrolment = await session.get(Enrolment, enrollment_id)
    if enrolment is None:
        raise NotFound("enrolment_not_found", f"no enrolment {enrollment_id}", "enrollment_id")
    may_see(principal, enrolment.unit_id)
    return enrolment
