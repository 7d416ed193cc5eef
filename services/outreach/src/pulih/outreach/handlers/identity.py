"""Reading a client's identity (audited, every attempt). Which clinic a referral is addressed to,
and whether it is still open, outreach reads from its read model of referral's events
(:data:`pulih.outreach.store.REFERRALS`)."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from sqlalchemy import select

from pulih.kit.audit import audit
from pulih.kit.auth import Principal, Role
from pulih.kit.database import Database
from pulih.kit.errors import Forbidden, Gone, NotFound
from pulih.outreach.bodies import IdentityView
from pulih.outreach.deps import OutreachDeps
from pulih.outreach.domain import disclosure
from pulih.outreach.store import Client, ClientIdentity, ClientKey, Consent, IdentityRead, KnownReferral
from pulih.outreach.vault import KeyDestroyed

IDENTITY_READERS = (Role.AGENT, Role.FACILITATOR, Role.SERVICE)
"""Who may ask for an identity at all; a service is then checked by :mod:`domain.disclosure`."""


async def read_identity(
    database: Database,
    deps: OutreachDeps,
    principal: Principal,
    client_id: UUID,
    purpose: str,
    on_behalf_of: str | None,
    today: date,
) -> IdentityView:
    """Open a client's identity for an allowed reader; every attempt is audited, granted or not.

    Agents read their own unit's clients, facilitators any; a service only as
    :func:`domain.disclosure.may_disclose_to_service` allows, checked before outreach says
    whether the client exists.
    """

    async def record(outcome: str, reason: str | None = None) -> None:
        await audit_identity_attempt(database, principal, client_id, purpose, on_behalf_of, outcome, reason)

    if principal.role not in IDENTITY_READERS:
        await record("denied", "forbidden_role")
        raise Forbidden("forbidden_role", "only agents of the unit and facilitators read identities")
    async with database.sessions() as session:
        if principal.role is Role.SERVICE:
            named = disclosure.referral_named(purpose)
            referral = await session.get(KnownReferral, named) if named is not None else None
            consents = (await session.scalars(select(Consent).where(Consent.client_id == client_id))).all()
            try:
                disclosure.may_disclose_to_service(
                    service=principal.sub,
                    on_behalf_of=on_behalf_of,
                    purpose=purpose,
                    client_id=client_id,
                    referral=referral,
                    consents=[c.terms() for c in consents],
                    today=today,
                )
            except Forbidden as exc:
                await record("denied", exc.code)
                raise
        client = await session.get(Client, client_id)
        if client is None:
            await record("denied", "client_not_found")
            raise NotFound("client_not_found", f"no client {client_id}", "client_id")
        if principal.role is not Role.SERVICE and not principal.may_see_unit(client.unit_id):
            await record("denied", "other_unit")
            raise Forbidden("other_unit", "agents read their own unit's clients only", "client_id")
        key = await session.get(ClientKey, client_id)
        identity = await session.get(ClientIdentity, client_id)
    try:
        if key is None or identity is None:
            raise KeyDestroyed(str(client_id))
        data_key = deps.vault.unwrap(client_id, key.wrapped_key)

        def open_(field: str, sealed: bytes | None) -> str | None:
            return None if sealed is None else deps.vault.open(data_key, client_id, field, sealed)

        view = IdentityView(
            client_id=client_id,
            unit_id=client.unit_id,
            full_name=open_("full_name", identity.full_name),
            nik=open_("nik", identity.nik),
            birth_date=open_("birth_date", identity.birth_date),
            sex=client.sex,
            phone=open_("phone", identity.phone),
            address=open_("address", identity.address),
        )
    except KeyDestroyed:
        await record("erased")
        raise Gone("client_erased", "this client's identity was erased") from None
    await record("granted")
    return view


async def audit_identity_attempt(
    database: Database,
    principal: Principal,
    client_id: UUID | None,
    purpose: str | None,
    on_behalf_of: str | None,
    outcome: str,
    reason: str | None = None,
) -> None:
    """Write one attempt to read an identity to the audit, in a transaction of its own. The
    purpose and clinic are recorded as sent (cut to the column's length), even when invalid."""
    await audit(
        database,
        IdentityRead,
        principal,
        purpose=(purpose or "")[:200],
        outcome=outcome,
        client_id=client_id,
        on_behalf_of=on_behalf_of[:120] if on_behalf_of is not None else None,
        reason=reason,
    )
