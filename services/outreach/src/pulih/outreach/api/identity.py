"""Routes for reading a client's identity and the audit of who did."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from pulih.kit.auth import CurrentCaller, Principal, allow, require_scope
from pulih.kit.deps import RuntimeDep
from pulih.kit.errors import Forbidden, NotFound
from pulih.kit.pagination import PAGED, Order, Page, Pages, paged
from pulih.kit.service_tokens import IDENTITY_SCOPE
from pulih.outreach import handlers
from pulih.outreach.access import REGENCY_ROLES
from pulih.outreach.bodies import IdentityReadPage, IdentityReadView, IdentityView
from pulih.outreach.deps import Deps
from pulih.outreach.store import Client, IdentityRead

router = APIRouter(prefix="/v1", tags=["identity"])

AUDIT = Order.by(IdentityRead.id)


def _uuid_or_none(text: str | None) -> UUID | None:
    try:
        return UUID(text) if text is not None else None
    except ValueError:
        return None


async def identity_reader(request: Request, principal: CurrentCaller, runtime: RuntimeDep) -> Principal:
    """Refuse a role that reads no identity, or a service token without the scope
    ``outreach.identity``, with 403 before the path and query are validated, and audit the
    attempt with the client id and purpose as sent."""
    try:
        if principal.role not in handlers.IDENTITY_READERS:
            raise Forbidden(
                "forbidden_role", "only agents of the unit, facilitators and referral read identities"
            )
        require_scope(principal, IDENTITY_SCOPE)
    except Forbidden as refusal:
        await handlers.audit_identity_attempt(
            runtime.database,
            principal,
            _uuid_or_none(request.path_params.get("client_id")),
            request.query_params.get("purpose"),
            request.query_params.get("on_behalf_of"),
            "denied",
            refusal.code,
        )
        raise
    return principal


@router.get("/clients/{client_id}", response_model=IdentityView)
async def read_identity(
    client_id: UUID,
    runtime: RuntimeDep,
    deps: Deps,
    principal: Annotated[Principal, Depends(identity_reader)],
    purpose: Annotated[str, Query(min_length=3, max_length=200, description="why the identity is needed")],
    on_behalf_of: Annotated[
        str | None,
        Query(max_length=120, description="service calls: the clinic the referral is addressed to"),
    ] = None,
) -> IdentityView:
    """Read a client's identity. Every attempt, granted or not, is written to the audit table.

    Agents read their own unit's clients and facilitators any, for a stated purpose. The
    referral service reads one only with ``purpose=referral:<referral_id>`` and
    ``on_behalf_of=<clinic_id>`` for an open referral of this client addressed to that clinic,
    while the client's ``identity_to_clinic`` consent holds; no other service reads identities.
    """
    return await handlers.read_identity(
        runtime.database, deps, principal, client_id, purpose, on_behalf_of, runtime.clock.today()
    )


@router.get(
    "/clients/{client_id}/audit",
    response_model=IdentityReadPage,
    responses=PAGED,
    dependencies=[allow(*REGENCY_ROLES)],
)
async def identity_audit(
    client_id: UUID, runtime: RuntimeDep, pages: Annotated[Pages, paged(AUDIT)]
) -> Page[IdentityReadView]:
    """Who read this client's identity, when and why, or tried to, oldest first (facilitator,
    admin). 404 for a client never registered."""
    async with runtime.database.sessions() as session:
        if await session.get(Client, client_id) is None:
            raise NotFound("client_not_found", f"no client {client_id}", "client_id")
        rows = await pages.scalars(session, select(IdentityRead).where(IdentityRead.client_id == client_id))
    return pages.page([IdentityReadView.model_validate(r, from_attributes=True) for r in rows])
