"""Routes for reading a client's identity and the audit of who did."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from sqlalchemy import select

from pulih.kit.auth import CurrentUser, require
from pulih.kit.deps import RuntimeDep
from pulih.outreach import handlers
from pulih.outreach.access import REGENCY_ROLES
from pulih.outreach.bodies import IdentityReadView, IdentityView
from pulih.outreach.deps import Deps
from pulih.outreach.store import IdentityRead

router = APIRouter(prefix="/v1", tags=["identity"])


@router.get("/clients/{client_id}", response_model=IdentityView)
async def read_identity(
    client_id: UUID,
    runtime: RuntimeDep,
    deps: Deps,
    principal: CurrentUser,
    purpose: Annotated[str, Query(min_length=3, max_length=200, description="why the identity is needed")],
    on_behalf_of: Annotated[
        str | None, Query(max_length=120, description="service calls: the clinic")
    ] = None,
) -> IdentityView:
    """Read a client's identity. Every attempt, granted or not, is written to the audit table."""
    return await handlers.read_identity(runtime.database, deps, principal, client_id, purpose, on_behalf_of)


@router.get("/clients/{client_id}/audit", response_model=list[IdentityReadView])
async def identity_audit(
    client_id: UUID, runtime: RuntimeDep, principal: CurrentUser
) -> list[IdentityReadView]:
    """Who read this client's identity, when and why (facilitator, admin)."""
    require(principal, *REGENCY_ROLES)
    async with runtime.database.sessions() as session:
        rows = (
            await session.scalars(
                select(IdentityRead).where(IdentityRead.client_id == client_id).order_by(IdentityRead.id)
            )
        ).all()
    return [IdentityReadView.model_validate(r, from_attributes=True) for r in rows]
