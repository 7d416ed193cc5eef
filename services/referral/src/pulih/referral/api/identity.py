"""Routes for the identity hand-over: a referred client's identity for the clinic the referral is
addressed to, only while the client's ``identity_to_clinic`` consent holds, and its audit.

Referral holds no identity: it asks outreach (see :func:`pulih.referral.handlers.hand_over_identity`).
Both services audit the read; referral audits every attempt, refused ones included.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from pulih.kit.auth import CurrentCaller, Role, allow
from pulih.kit.deps import RuntimeDep
from pulih.kit.errors import NotFound
from pulih.kit.pagination import PAGED, Page, Pages, paged
from pulih.referral import handlers, queries
from pulih.referral.bodies import ClientIdentityView, HandOverEntry, HandOverPage
from pulih.referral.deps import Deps
from pulih.referral.store import Referral

router = APIRouter(prefix="/v1", tags=["identity"])


@router.get("/referrals/{referral_id}/identity", response_model=ClientIdentityView)
async def identity_for_clinic(
    referral_id: UUID,
    runtime: RuntimeDep,
    deps: Deps,
    principal: CurrentCaller,  # a service too: refused by the handler, and audited
    # checked by the handler once the caller is known to be the addressed clinic (3 to 150
    # characters): anyone else learns nothing about it, and every attempt is audited
    purpose: Annotated[str, Query(description="why the clinic needs it")] = "admission",
) -> ClientIdentityView:
    """The referred client's identity, for the addressed clinic only, with valid consent. Any
    role may ask (a refusal is audited like a grant); only that clinic gets an answer."""
    who = await handlers.hand_over_identity(runtime, deps.outreach, principal, referral_id, purpose)
    return ClientIdentityView.model_validate({**who, "referral_id": referral_id})


@router.get(
    "/referrals/{referral_id}/identity/audit",
    response_model=HandOverPage,
    responses=PAGED,
    dependencies=[allow(Role.FACILITATOR, Role.ADMIN)],
)
async def identity_audit(
    referral_id: UUID, runtime: RuntimeDep, pages: Annotated[Pages, paged(queries.HAND_OVERS)]
) -> Page[HandOverEntry]:
    """Every attempt to get this referral's client identity, oldest first (facilitator, admin).
    404 for a referral never made."""
    async with runtime.database.sessions() as session:
        if await session.get(Referral, referral_id) is None:
            raise NotFound("referral_not_found", f"no referral {referral_id}", "referral_id")
        entries = await pages.scalars(session, queries.hand_overs(referral_id))
    return pages.page([HandOverEntry.model_validate(e) for e in entries])
