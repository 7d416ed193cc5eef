"""Routes for a client's consents: record, list, withdraw."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import select

from pulih.kit.auth import CurrentUser, allow
from pulih.kit.commands import CommandDep
from pulih.kit.deps import RuntimeDep
from pulih.kit.pagination import PAGED, Order, Page, Pages, paged
from pulih.outreach import handlers
from pulih.outreach.access import FIELD_ROLES, client_for
from pulih.outreach.bodies import ConsentPage, ConsentView, RecordConsent, WithdrawConsent
from pulih.outreach.store import Consent

router = APIRouter(prefix="/v1", tags=["consents"])

CONSENTS = Order.by(Consent.given_on, Consent.consent_id)


@router.post(
    "/clients/{client_id}/consents",
    status_code=201,
    response_model=ConsentView,
    dependencies=[allow(*FIELD_ROLES)],
)
async def record_consent(client_id: UUID, body: RecordConsent, cmd: CommandDep) -> JSONResponse:
    """Record what the client agreed to: programme, referral, identity_to_clinic."""
    today = cmd.runtime.clock.today()
    async with cmd.transaction() as tx:
        consent = await handlers.record_consent(tx, cmd.principal, client_id, today, body)
        return tx.reply(ConsentView.model_validate(consent, from_attributes=True), status_code=201)


@router.get(
    "/clients/{client_id}/consents",
    response_model=ConsentPage,
    responses=PAGED,
    dependencies=[allow(*FIELD_ROLES)],
)
async def list_consents(
    client_id: UUID, runtime: RuntimeDep, principal: CurrentUser, pages: Annotated[Pages, paged(CONSENTS)]
) -> Page[ConsentView]:
    """Every consent the client gave, current and withdrawn, by the day it was given."""
    async with runtime.database.sessions() as session:
        await client_for(session, client_id, principal)
        consents = await pages.scalars(session, select(Consent).where(Consent.client_id == client_id))
    return pages.page([ConsentView.model_validate(c, from_attributes=True) for c in consents])


@router.post(
    "/clients/{client_id}/consents/{consent_id}/withdraw",
    response_model=ConsentView,
    dependencies=[allow(*FIELD_ROLES)],
)
async def withdraw_consent(
    client_id: UUID, consent_id: UUID, body: WithdrawConsent, cmd: CommandDep
) -> JSONResponse:
    """The client withdraws a consent from a date on."""
    today = cmd.runtime.clock.today()
    async with cmd.transaction() as tx:
        consent = await handlers.withdraw_consent(tx, cmd.principal, client_id, consent_id, today, body)
        return tx.reply(ConsentView.model_validate(consent, from_attributes=True))
