"""A ``service`` token is not a master key: outreach hands an identity to another service only as
its own records allow (referral's events, applied here as outreach's consumer applies them, and
its own consents). Every attempt is audited with the reason of a refusal."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
from outreach_factories import Outreach, outbox_types, refused
from sqlalchemy import select

from pulih.contracts.events.referral import ReferralClosed, ReferredToClinic
from pulih.kit.auth import service_token
from pulih.kit.consumers import NotReadyYet
from pulih.kit.service_tokens import IDENTITY_SCOPE
from pulih.kit.testing import JWT_SECRET, REGENCY, apply_events
from pulih.outreach.consumers import FROM_REFERRAL
from pulih.outreach.store import IdentityRead, KnownReferral

CLINIC = "klinik-pratama-sehat"
OTHER_CLINIC = "rsud-cilacap"


def service(name: str = "referral") -> dict[str, str]:
    """A service token granted the identity scope: what outreach's own rules then allow."""
    return {"Authorization": f"Bearer {service_token(JWT_SECRET, REGENCY, name, IDENTITY_SCOPE)}"}


def referred(client_id: str, referral_id: uuid.UUID, clinic_id: str = CLINIC) -> ReferredToClinic:
    return ReferredToClinic.model_validate(
        {
            "referral_id": referral_id,
            "client_id": client_id,
            "unit_id": uuid.uuid4(),
            "clinic_id": clinic_id,
            "service": "rawat_jalan",
            "reason": "client_request",
            "urgency": "routine",
            "referred_on": "2026-03-01",
            "respond_by": "2026-03-04",
            "consent_id": uuid.uuid4(),
        }
    )


def closed(referral_id: uuid.UUID) -> ReferralClosed:
    return ReferralClosed(
        referral_id=referral_id,
        clinic_id=CLINIC,
        on=date(2026, 3, 5),
        outcome="declined",
        back_referral=False,
    )


@dataclass
class Referred:
    o: Outreach
    client_id: str
    referral_id: uuid.UUID

    async def ask(
        self,
        headers: dict[str, str] | None = None,
        *,
        purpose: str | None = None,
        on_behalf_of: str | None = CLINIC,
        client_id: str | None = None,
    ) -> httpx.Response:
        params = {"purpose": purpose or f"referral:{self.referral_id}"}
        if on_behalf_of is not None:
            params["on_behalf_of"] = on_behalf_of
        return await self.o.http.get(
            f"/v1/clients/{client_id or self.client_id}", params=params, headers=headers or service()
        )

    async def feed(self, *events: Any) -> None:
        await apply_events(self.o.app.state.runtime, FROM_REFERRAL, *events)

    async def audit(self) -> list[tuple[str, str, str | None, str | None]]:
        async with self.o.app.state.runtime.database.sessions() as s:
            rows = (await s.scalars(select(IdentityRead).order_by(IdentityRead.id))).all()
        return [(r.actor, r.outcome, r.on_behalf_of, r.reason) for r in rows]


async def a_referred_client(o: Outreach, scopes: list[str]) -> Referred:
    unit_id = await o.unit()
    client_id = (await o.client(unit_id, o.facilitator)).json()["client_id"]
    await o.consent(client_id, o.facilitator, scopes)
    case = Referred(o, client_id, uuid.uuid4())
    await case.feed(referred(client_id, case.referral_id))
    return case


@pytest.fixture
async def case(outreach: Outreach) -> Referred:
    return await a_referred_client(outreach, ["programme", "referral", "identity_to_clinic"])


async def test_referral_reads_the_identity_for_an_open_referral_to_the_clinic_with_consent(
    case: Referred,
) -> None:
    r = await case.ask()
    assert r.status_code == 200, r.text
    assert r.json()["full_name"] == "Budi Santoso"
    assert await case.audit() == [("referral", "granted", CLINIC, None)]


async def test_another_service_never_reads_an_identity(case: Referred) -> None:
    for name in ("rehab", "reporting", "referral-service"):
        r = await case.ask(service(name))
        assert r.status_code == 403 and r.json()["code"] == "service_not_allowed", r.text
        assert "Budi" not in r.text
    assert [(who, outcome, why) for who, outcome, _, why in await case.audit()] == [
        ("rehab", "denied", "service_not_allowed"),
        ("reporting", "denied", "service_not_allowed"),
        ("referral-service", "denied", "service_not_allowed"),
    ]


@pytest.mark.parametrize(
    ("ask", "code"),
    [
        ({"on_behalf_of": None}, "clinic_required"),
        ({"on_behalf_of": OTHER_CLINIC}, "not_addressed_clinic"),
        ({"purpose": "home visit"}, "purpose_not_referral"),
        ({"purpose": "referral:not-an-id"}, "purpose_not_referral"),
        ({"purpose": f"referral:{uuid.uuid4()}"}, "unknown_referral"),
    ],
)
async def test_a_referral_token_is_refused_without_the_referral_it_names(
    case: Referred, ask: dict[str, Any], code: str
) -> None:
    before = await outbox_types(case.o)
    r = await case.ask(**ask)
    assert r.status_code == 403 and r.json()["code"] == code, r.text
    assert "Budi" not in r.text
    assert await case.audit() == [("referral", "denied", ask.get("on_behalf_of", CLINIC), code)]
    assert await outbox_types(case.o) == before


async def test_a_referral_of_another_client_opens_no_identity(case: Referred) -> None:
    other = await a_referred_client(case.o, ["programme", "referral", "identity_to_clinic"])
    r = await case.ask(client_id=other.client_id)  # names the first client's referral
    assert r.status_code == 403 and r.json()["code"] == "unknown_referral"


async def test_an_unknown_client_is_403_to_a_service_not_404(case: Referred) -> None:
    r = await case.ask(client_id=str(uuid.uuid4()))
    assert r.status_code == 403 and r.json()["code"] == "unknown_referral"


async def test_no_identity_without_the_identity_to_clinic_consent(outreach: Outreach) -> None:
    case = await a_referred_client(outreach, ["programme", "referral"])
    request = case.o.http.get(
        f"/v1/clients/{case.client_id}",
        params={"purpose": f"referral:{case.referral_id}", "on_behalf_of": CLINIC},
        headers=service(),
    )
    await refused(outreach, request, 403, "consent_required", None)
    consent_id = await outreach.consent(case.client_id, outreach.facilitator, ["identity_to_clinic"])
    assert (await case.ask()).status_code == 200
    withdrawn = await outreach.http.post(
        f"/v1/clients/{case.client_id}/consents/{consent_id}/withdraw",
        headers=outreach.facilitator,
        json={"on": "2026-03-01"},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    again = await case.ask()
    assert again.status_code == 403 and again.json()["code"] == "consent_required"
    assert [(o, why) for _, o, _, why in await case.audit()] == [
        ("denied", "consent_required"),
        ("granted", None),
        ("denied", "consent_required"),
    ]


async def test_a_closed_referral_opens_no_identity(case: Referred) -> None:
    assert (await case.ask()).status_code == 200
    await case.feed(closed(case.referral_id))
    r = await case.ask()
    assert r.status_code == 403 and r.json()["code"] == "referral_closed"
    assert [o for _, o, _, _ in await case.audit()] == ["granted", "denied"]


async def test_a_close_before_its_referral_is_retried_and_replays_change_nothing(outreach: Outreach) -> None:
    runtime = outreach.app.state.runtime
    referral_id = uuid.uuid4()
    with pytest.raises(NotReadyYet):
        await apply_events(runtime, FROM_REFERRAL, closed(referral_id))
    client_id = str(uuid.uuid4())
    await apply_events(
        runtime, FROM_REFERRAL, referred(client_id, referral_id), referred(client_id, referral_id)
    )
    await apply_events(runtime, FROM_REFERRAL, closed(referral_id), closed(referral_id))
    async with runtime.database.sessions() as s:
        row = await s.get(KnownReferral, referral_id)
    assert row is not None and (str(row.client_id), row.clinic_id, row.closed_on) == (
        client_id,
        CLINIC,
        date(2026, 3, 5),
    )
