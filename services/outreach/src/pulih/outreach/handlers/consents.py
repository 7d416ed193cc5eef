"""A client's consents: recorded, withdrawn."""

from __future__ import annotations

import uuid
from datetime import date
from uuid import UUID

from pulih.contracts.events.outreach import ConsentRecorded, ConsentWithdrawn
from pulih.kit.auth import Principal
from pulih.kit.database import insert_new
from pulih.kit.errors import NotFound
from pulih.kit.unit_of_work import UnitOfWork
from pulih.outreach.access import client_for
from pulih.outreach.bodies import RecordConsent, WithdrawConsent
from pulih.outreach.domain import consent as consent_rules
from pulih.outreach.store import Consent


async def record_consent(
    uow: UnitOfWork, principal: Principal, client_id: UUID, today: date, body: RecordConsent
) -> Consent:
    """Record what the client agreed to: programme, referral, identity_to_clinic."""
    client = await client_for(uow.session, client_id, principal)
    consent_rules.not_erased(client.erased_on)
    consent_rules.check_terms(body.given_on, body.expires_on, client.registered_on, today)
    consent = Consent(
        consent_id=uuid.uuid4(),
        client_id=client_id,
        scopes=sorted({s.value for s in body.scopes}),
        given_on=body.given_on,
        expires_on=body.expires_on,
    )
    await insert_new(uow.session, consent)
    await uow.emit(ConsentRecorded.model_validate(consent, from_attributes=True))
    return consent


async def withdraw_consent(
    uow: UnitOfWork,
    principal: Principal,
    client_id: UUID,
    consent_id: UUID,
    today: date,
    body: WithdrawConsent,
) -> Consent:
    """The client withdraws a consent from a date on."""
    await client_for(uow.session, client_id, principal)
    consent = await uow.session.get(Consent, consent_id)
    if consent is None or consent.client_id != client_id:
        raise NotFound("consent_not_found", f"no consent {consent_id} for this client", "consent_id")
    consent_rules.check_withdrawal(consent.terms(), body.on, today)
    consent.withdrawn_on = body.on
    await uow.emit(ConsentWithdrawn(consent_id=consent_id, client_id=client_id, on=body.on))
    return consent
