"""Routes for referrals: making one, suggestions, lists, one referral, cancelling."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from pulih.kit.auth import CurrentUser, Role, allow
from pulih.kit.commands import CommandDep
from pulih.kit.deps import RuntimeDep
from pulih.kit.pagination import PAGED, Page, Pages, paged
from pulih.kit.strict import Flag
from pulih.referral import handlers, queries, store
from pulih.referral.bodies import (
    CancelReferral,
    ReferClient,
    ReferralPage,
    ReferralView,
    SuggestedReferral,
    SuggestedReferralPage,
)
from pulih.referral.deps import Deps
from pulih.referral.domain import referring
from pulih.referral.domain.lifecycle import ReferralStatus
from pulih.referral.store import Referral

router = APIRouter(prefix="/v1", tags=["referrals"])

REFERRERS = (Role.AGENT, Role.FACILITATOR)
"""Who refers and cancels: agents for their own unit's clients, facilitators anywhere."""

READERS = (Role.AGENT, Role.FACILITATOR, Role.ADMIN, Role.CLINIC)
"""Who reads referrals: agents their unit's, clinics those addressed to them, staff all."""


@router.post("/referrals", status_code=201, response_model=ReferralView, dependencies=[allow(*REFERRERS)])
async def refer_client(body: ReferClient, cmd: CommandDep, deps: Deps) -> JSONResponse:
    """Refer a screened, consenting client to a clinic that offers the service."""
    async with cmd.transaction() as tx:
        referral = await handlers.refer_client(
            tx,
            body,
            by=cmd.principal,
            today=cmd.runtime.clock.today(),
            regency=cmd.runtime.settings.regency,
            response_times=deps.response_times,
        )
        return tx.reply(ReferralView.model_validate(referral), status_code=201)


@router.get(
    "/referrals/suggestions",
    response_model=SuggestedReferralPage,
    responses=PAGED,
    dependencies=[allow(*REFERRERS)],
)
async def suggested_referrals(
    runtime: RuntimeDep, principal: CurrentUser, pages: Annotated[Pages, paged(queries.SUGGESTIONS)]
) -> Page[SuggestedReferral]:
    """Screenings that recommend referral with no referral made since, oldest first; sending one
    stays a human decision (agents: their own unit)."""
    unit_id = principal.unit_id if principal.role is Role.AGENT else None
    async with runtime.database.sessions() as session:
        screenings = await store.screenings_recommending_referral(session, unit_id)
        referred = await store.referral_days(session)
    suggested = pages.window(
        referring.suggestions(screenings, referred), lambda s: (s.screened_on, s.screening_id)
    )
    return pages.page([SuggestedReferral.model_validate(s) for s in suggested])


@router.get("/referrals", response_model=ReferralPage, responses=PAGED, dependencies=[allow(*READERS)])
async def list_referrals(
    runtime: RuntimeDep,
    principal: CurrentUser,
    pages: Annotated[Pages, paged(queries.REFERRALS)],
    status: Annotated[ReferralStatus | None, Query()] = None,
    escalated: Annotated[
        Flag | None, Query(description="`true`: escalated ones only; `false`: the others")
    ] = None,
    clinic_id: Annotated[str | None, Query()] = None,
    client_id: Annotated[UUID | None, Query()] = None,
) -> Page[ReferralView]:
    """Referrals the caller may see, oldest first: a facilitator's list of escalated ones is
    ``?escalated=true``; agents see their unit's, clinics those addressed to them."""
    query = queries.referrals(
        unit_id=principal.unit_id if principal.role is Role.AGENT else None,
        addressed_to=principal.clinic_id if principal.role is Role.CLINIC else None,
        clinic_id=clinic_id,
        client_id=client_id,
        status=status,
        escalated=escalated,
    )
    async with runtime.database.sessions() as session:
        referrals = await pages.scalars(session, query)
    return pages.page([ReferralView.model_validate(r) for r in referrals])


@router.get("/referrals/{referral_id}", response_model=ReferralView, dependencies=[allow(*READERS)])
async def get_referral(referral_id: UUID, runtime: RuntimeDep, principal: CurrentUser) -> ReferralView:
    """One referral, for its unit, staff, or the clinic it is addressed to."""
    async with runtime.database.sessions() as session:
        referral = await session.get(Referral, referral_id)
    return ReferralView.model_validate(handlers.visible_referral(referral, referral_id, principal))


@router.post("/referrals/{referral_id}/cancel", response_model=ReferralView, dependencies=[allow(*REFERRERS)])
async def cancel_referral(referral_id: UUID, body: CancelReferral, cmd: CommandDep) -> JSONResponse:
    """Cancel a referral the clinic has not finished with; it closes as ``cancelled``."""
    async with cmd.transaction() as tx:
        referral = await handlers.cancel_referral(
            tx, referral_id, body.reason, body.on, by=cmd.principal, today=cmd.runtime.clock.today()
        )
        return tx.reply(ReferralView.model_validate(referral))
