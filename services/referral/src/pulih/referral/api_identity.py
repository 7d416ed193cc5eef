"""The identity hand-over: a referred client's identity for the clinic the referral is addressed
to, only while the client's ``identity_to_clinic`` consent holds.

Referral holds no identity: it asks outreach over its API with the service's own credentials,
naming the clinic it acts for. Both services audit the read; referral audits every attempt,
refused ones included.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, ClassVar
from uuid import UUID

import httpx
from fastapi import APIRouter, Query
from sqlalchemy import select

from pulih.contracts.codes import ConsentScope
from pulih.kit.auth import CurrentUser, Principal, Role, issue_token, require
from pulih.kit.deps import RuntimeDep
from pulih.kit.errors import Forbidden, Gone, PulihError
from pulih.kit.runtime import ServiceRuntime
from pulih.referral.domain import OPEN
from pulih.referral.store import IdentityHandOver, KnownClient, KnownConsent, Referral
from pulih.referral.views import ClientIdentityView, HandOverEntry

router = APIRouter(prefix="/v1", tags=["identity"])

SERVICE_SUBJECT = "referral-service"


class Unavailable(PulihError):
    """A service this request depends on did not answer (503)."""

    status: ClassVar[int] = 503


def outreach_http(runtime: ServiceRuntime) -> httpx.AsyncClient:
    """The HTTP client to outreach: injected as ``runtime.extras["outreach_http"]`` (tests),
    or one made for ``PULIH_OUTREACH_URL``."""
    client = runtime.extras.get("outreach_http")
    if not isinstance(client, httpx.AsyncClient):
        client = httpx.AsyncClient(base_url=runtime.settings.outreach_url, timeout=5.0)
        runtime.extras["outreach_http"] = client
    return client


async def _audit(
    runtime: ServiceRuntime,
    referral_id: UUID,
    client_id: UUID | None,
    principal: Principal,
    purpose: str,
    outcome: str,
    reason: str | None = None,
) -> None:
    async with runtime.database.transaction() as session:
        session.add(
            IdentityHandOver(
                referral_id=referral_id,
                client_id=client_id,
                actor=principal.sub,
                actor_role=principal.role.value,
                clinic_id=principal.clinic_id,
                purpose=purpose,
                outcome=outcome,
                reason=reason,
                read_at=datetime.now(UTC),
            )
        )


@router.get("/referrals/{referral_id}/identity", response_model=ClientIdentityView)
async def identity_for_clinic(
    referral_id: UUID,
    runtime: RuntimeDep,
    principal: CurrentUser,
    purpose: Annotated[str, Query(min_length=3, max_length=150, description="why the clinic needs it")] = (
        "admission"
    ),
) -> ClientIdentityView:
    """The referred client's identity, for the addressed clinic only, with valid consent."""
    today = runtime.clock.today()
    async with runtime.database.sessions() as session:
        referral = await session.get(Referral, referral_id)
        client = consents = None
        if referral is not None:
            client = await session.get(KnownClient, referral.client_id)
            consents = (
                await session.scalars(
                    select(KnownConsent).where(KnownConsent.client_id == referral.client_id)
                )
            ).all()
    client_id = referral.client_id if referral is not None else None

    async def refuse(reason: str) -> None:
        await _audit(runtime, referral_id, client_id, principal, purpose, "denied", reason)

    if principal.role is not Role.CLINIC or referral is None or referral.clinic_id != principal.clinic_id:
        await refuse("not_addressed_clinic")
        raise Forbidden(
            "not_addressed_clinic", "only the clinic a referral is addressed to gets the identity"
        )
    if referral.state not in OPEN:
        await refuse("referral_closed")
        raise Forbidden("referral_closed", f"the referral is {referral.status}")
    if not any(c.terms().allows(ConsentScope.IDENTITY_TO_CLINIC, today) for c in consents or ()):
        await refuse("consent_required")
        raise Forbidden("consent_required", "the client has not consented to give the clinic their identity")
    if client is not None and client.erased_on is not None:
        await _audit(runtime, referral_id, client_id, principal, purpose, "erased")
        raise Gone("client_erased", "this client's identity was erased")

    token = issue_token(
        runtime.settings.jwt_secret.get_secret_value(),
        sub=SERVICE_SUBJECT,
        role=Role.SERVICE,
        regency=runtime.settings.regency,
    )
    try:
        answer = await outreach_http(runtime).get(
            f"/v1/clients/{referral.client_id}",
            params={"purpose": f"referral:{referral_id}", "on_behalf_of": referral.clinic_id},
            headers={"Authorization": f"Bearer {token}"},
        )
    except httpx.HTTPError as exc:
        await _audit(runtime, referral_id, client_id, principal, purpose, "unavailable", type(exc).__name__)
        raise Unavailable(
            "outreach_unavailable", "outreach, which keeps identities, did not answer"
        ) from None
    if answer.status_code == 410:
        await _audit(runtime, referral_id, client_id, principal, purpose, "erased")
        raise Gone("client_erased", "this client's identity was erased")
    if answer.status_code != 200:
        await _audit(
            runtime, referral_id, client_id, principal, purpose, "unavailable", f"http_{answer.status_code}"
        )
        raise Unavailable("outreach_unavailable", f"outreach answered {answer.status_code}")
    who = answer.json()
    view = ClientIdentityView.model_validate(
        {"referral_id": referral_id, **{k: who.get(k) for k in ClientIdentityView.model_fields if k in who}}
    )
    await _audit(runtime, referral_id, client_id, principal, purpose, "granted")
    return view


@router.get("/referrals/{referral_id}/identity/audit", response_model=list[HandOverEntry])
async def identity_audit(
    referral_id: UUID, runtime: RuntimeDep, principal: CurrentUser
) -> list[HandOverEntry]:
    """Every attempt to get this referral's client identity (facilitator, admin)."""
    require(principal, Role.FACILITATOR, Role.ADMIN)
    async with runtime.database.sessions() as session:
        rows = (
            await session.scalars(
                select(IdentityHandOver)
                .where(IdentityHandOver.referral_id == referral_id)
                .order_by(IdentityHandOver.id)
            )
        ).all()
    return [
        HandOverEntry(
            actor=r.actor,
            actor_role=r.actor_role,
            clinic_id=r.clinic_id,
            purpose=r.purpose,
            outcome=r.outcome,
            reason=r.reason,
            read_at=r.read_at.isoformat(),
        )
        for r in rows
    ]
