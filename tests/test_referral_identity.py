"""The identity hand-over: outreach and referral in one process, referral calling outreach's
API with its service credentials (its deps' client, pointed at the outreach app), each service's
events applied with the other's own handler table (outreach's to referral, referral's to
outreach), as their consumers would over NATS.

Only the clinic a referral is addressed to gets the identity, only while the client's
``identity_to_clinic`` consent holds; every attempt is audited by referral, every read by
outreach too. Outreach checks it again for itself, from its own records: a ``service`` token is
not a master key (only referral's reads identities, only for an open referral of that client
addressed to the clinic it names, with the consent), and it audits every attempt.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from outreach_factories import Outreach, screening_body
from referral_factories import CLINIC, OTHER_CLINIC, Client, Referrals
from sqlalchemy import select

from pulih.contracts import CloudEvent, parse_event
from pulih.kit.auth import Role, service_token
from pulih.kit.nats_server import free_port
from pulih.kit.outbox import outbox_table
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.service_tokens import IDENTITY_SCOPE
from pulih.kit.testing import JWT_SECRET, REGENCY, apply_events, auth, eventually, make_settings, serve
from pulih.outreach.app import build as build_outreach
from pulih.outreach.consumers import FROM_REFERRAL
from pulih.outreach.store import IdentityRead
from pulih.referral.app import build as build_referral
from pulih.referral.consumers import FROM_OUTREACH
from pulih.referral.deps import Outreach as OutreachClient
from pulih.referral.deps import ReferralDeps


async def new_events(runtime: ServiceRuntime, after: int) -> tuple[list[CloudEvent[Any]], int]:
    """The events a service put in its outbox after row ``after``, and the last row's number."""
    async with runtime.database.sessions() as s:
        rows = (
            await s.execute(
                select(outbox_table.c.seq, outbox_table.c.payload)
                .where(outbox_table.c.seq > after)
                .order_by(outbox_table.c.seq)
            )
        ).all()
    return [parse_event(row.payload) for row in rows], (rows[-1].seq if rows else after)


@dataclass
class TwoServices:
    outreach: Outreach
    referrals: Referrals
    fed: int = 0
    fed_back: int = 0

    async def bridge(self) -> None:
        """Deliver outreach's new events to referral, then referral's new events (those included)
        to outreach, as their consumers would over NATS."""
        events, self.fed = await new_events(self.outreach.app.state.runtime, self.fed)
        await apply_events(self.referrals.runtime, FROM_OUTREACH, *events)
        events, self.fed_back = await new_events(self.referrals.runtime, self.fed_back)
        await apply_events(self.outreach.app.state.runtime, FROM_REFERRAL, *events)

    async def referred_client(self, scopes: list[str], expires_on: str | None = None) -> tuple[Client, str]:
        """The test's client (Budi), registered, consenting and screened in outreach, then referred."""
        o = self.outreach
        unit_id = await o.unit()
        agent_id = await o.agent(unit_id)
        agent = o.agent_auth(unit_id, agent_id)
        registered = await o.client(unit_id, agent)
        assert registered.status_code == 201, registered.text
        client_id = registered.json()["client_id"]
        consent = await o.http.post(
            f"/v1/clients/{client_id}/consents",
            headers=agent,
            json={"scopes": scopes, "given_on": "2026-02-01", "expires_on": expires_on},
        )
        assert consent.status_code == 201, consent.text
        screened = await o.http.post(
            f"/v1/clients/{client_id}/screenings", headers=agent, json=screening_body(agent_id)
        )
        assert screened.status_code == 201, screened.text
        await self.bridge()
        client = Client(uuid.UUID(client_id), uuid.UUID(unit_id), uuid.UUID(consent.json()["consent_id"]))
        referral_id = await self.referrals.referral(client, reason="client_request")
        await self.bridge()
        return client, referral_id

    async def identity(self, referral_id: str, headers: dict[str, str]) -> httpx.Response:
        return await self.referrals.http.get(f"/v1/referrals/{referral_id}/identity", headers=headers)

    async def referral_audit(self, referral_id: str) -> list[tuple[str, str | None, str | None]]:
        r = await self.referrals.http.get(
            f"/v1/referrals/{referral_id}/identity/audit", headers=self.referrals.facilitator
        )
        return [(e["outcome"], e["reason"], e["clinic_id"]) for e in r.json()["items"]]

    async def outreach_audit(self, client_id: uuid.UUID) -> list[tuple[str, str, str | None, str]]:
        return [
            (actor, outcome, clinic, purpose)
            for actor, outcome, clinic, purpose, _ in await self.audit(client_id)
        ]

    async def audit(self, client_id: uuid.UUID) -> list[tuple[str, str, str | None, str, str | None]]:
        """Outreach's audit of ``client_id``: actor, outcome, on behalf of, purpose, reason."""
        async with self.outreach.app.state.runtime.database.sessions() as s:
            rows = (
                await s.scalars(
                    select(IdentityRead).where(IdentityRead.client_id == client_id).order_by(IdentityRead.id)
                )
            ).all()
        return [(r.actor, r.outcome, r.on_behalf_of, r.purpose, r.reason) for r in rows]

    async def ask_outreach(
        self, client_id: uuid.UUID, purpose: str, on_behalf_of: str | None = CLINIC, service: str = "referral"
    ) -> httpx.Response:
        """Ask outreach directly with a ``service`` token of ``service``, as a leaked one would."""
        params = {"purpose": purpose} | ({"on_behalf_of": on_behalf_of} if on_behalf_of is not None else {})
        token = service_token(JWT_SECRET, REGENCY, service, IDENTITY_SCOPE)
        return await self.outreach.http.get(
            f"/v1/clients/{client_id}", params=params, headers={"Authorization": f"Bearer {token}"}
        )


def ask_outreach_through(runtime: ServiceRuntime, client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Point referral's client to outreach at ``client``; returns the one it replaces (the
    lifespan closes the client it built, the test closes those it made)."""
    deps = runtime.deps_as(ReferralDeps)
    runtime.deps = replace(deps, outreach=OutreachClient(str(client.base_url), client))
    return deps.outreach.client()


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[TwoServices]:
    down = f"nats://127.0.0.1:{free_port()}"  # events are bridged by hand; NATS stays down
    outreach_app = build_outreach(
        make_settings(
            tmp_path / "o",
            nats_url=down,
            database_url=f"sqlite+aiosqlite:///{tmp_path}/o.db",
            PULIH_CLOCK="manual",
            PULIH_CLOCK_START="2026-03-01",
        )
    )
    referral_app = build_referral(
        make_settings(
            tmp_path / "r",
            nats_url=down,
            database_url=f"sqlite+aiosqlite:///{tmp_path}/r.db",
            PULIH_CLOCK="manual",
            PULIH_CLOCK_START="2026-03-01",
        )
    )
    async with (
        serve(outreach_app) as o_http,
        serve(referral_app) as r_http,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=outreach_app), base_url="http://outreach"
        ) as to_outreach,
    ):
        built = ask_outreach_through(referral_app.state.runtime, to_outreach)
        two = TwoServices(Outreach(o_http, outreach_app), Referrals(r_http, referral_app))
        await two.referrals.add_clinic()
        await two.referrals.add_clinic(OTHER_CLINIC)
        yield two
        ask_outreach_through(referral_app.state.runtime, built)


async def test_the_addressed_clinic_gets_the_identity_and_both_services_audit_it(
    services: TwoServices,
) -> None:
    client, referral_id = await services.referred_client(["programme", "referral", "identity_to_clinic"])
    r = await services.identity(referral_id, services.referrals.clinic(CLINIC))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert (body["full_name"], body["client_id"], body["referral_id"]) == (
        "Budi Santoso",
        str(client.client_id),
        referral_id,
    )
    assert await services.referral_audit(referral_id) == [("granted", None, CLINIC)]
    assert await services.outreach_audit(client.client_id) == [
        ("referral", "granted", CLINIC, f"referral:{referral_id}")
    ]


async def test_every_other_caller_gets_403_and_each_attempt_is_audited(services: TwoServices) -> None:
    client, referral_id = await services.referred_client(["programme", "referral", "identity_to_clinic"])
    for headers in (
        services.referrals.clinic(OTHER_CLINIC),
        services.referrals.facilitator,
        services.referrals.agent(client.unit_id),
        auth(Role.SERVICE),
        auth(Role.ADMIN),
    ):
        r = await services.identity(referral_id, headers)
        assert r.status_code == 403 and r.json()["code"] == "not_addressed_clinic", r.text
        assert "full_name" not in r.text
    unknown = await services.identity(str(uuid.uuid4()), services.referrals.clinic(CLINIC))
    assert unknown.status_code == 403 and unknown.json()["code"] == "not_addressed_clinic"
    assert await services.referrals.outbox_names() == ["ReferredToClinic"]
    audit = await services.referral_audit(referral_id)
    assert len(audit) == 5 and {(o, why) for o, why, _ in audit} == {("denied", "not_addressed_clinic")}
    assert await services.outreach_audit(client.client_id) == [], "outreach was never asked"


async def test_no_identity_without_identity_to_clinic_consent(services: TwoServices) -> None:
    _, referral_id = await services.referred_client(["programme", "referral"])
    r = await services.identity(referral_id, services.referrals.clinic(CLINIC))
    assert r.status_code == 403 and r.json()["code"] == "consent_required"
    assert await services.referral_audit(referral_id) == [("denied", "consent_required", CLINIC)]
    assert await services.referrals.outbox_names() == ["ReferredToClinic"]


async def test_identity_refused_after_the_identity_consent_is_withdrawn(services: TwoServices) -> None:
    # referral and identity consented separately: withdrawing the identity one keeps the referral
    client, referral_id = await services.referred_client(["programme", "referral"])
    o = services.outreach
    agent = auth(Role.FACILITATOR)
    identity_consent = await o.http.post(
        f"/v1/clients/{client.client_id}/consents",
        headers=agent,
        json={"scopes": ["identity_to_clinic"], "given_on": "2026-02-01"},
    )
    assert identity_consent.status_code == 201, identity_consent.text
    await services.bridge()
    clinic = services.referrals.clinic(CLINIC)
    assert (await services.identity(referral_id, clinic)).status_code == 200
    withdrawn = await o.http.post(
        f"/v1/clients/{client.client_id}/consents/{identity_consent.json()['consent_id']}/withdraw",
        headers=agent,
        json={"on": "2026-03-01"},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    await services.bridge()
    r = await services.identity(referral_id, clinic)
    assert r.status_code == 403 and r.json()["code"] == "consent_required"
    assert [o for o, _, _ in await services.referral_audit(referral_id)] == ["granted", "denied"]
    assert await services.referrals.outbox_names() == ["ReferredToClinic"], "the referral consent holds"


async def test_withdrawing_the_only_consent_cancels_the_referral_and_refuses_identity(
    services: TwoServices,
) -> None:
    client, referral_id = await services.referred_client(["programme", "referral", "identity_to_clinic"])
    clinic = services.referrals.clinic(CLINIC)
    assert (await services.identity(referral_id, clinic)).status_code == 200
    withdrawn = await services.outreach.http.post(
        f"/v1/clients/{client.client_id}/consents/{client.consent_id}/withdraw",
        headers=auth(Role.FACILITATOR),
        json={"on": "2026-03-01"},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    await services.bridge()
    r = await services.identity(referral_id, clinic)
    assert r.status_code == 403 and r.json()["code"] == "referral_closed"
    assert await services.referrals.outbox_names() == [
        "ReferredToClinic",
        "ReferralCancelled",
        "ReferralClosed",
    ]
    assert [o for o, _, _ in await services.referral_audit(referral_id)] == ["granted", "denied"]


async def test_identity_refused_once_the_consent_has_expired(services: TwoServices) -> None:
    _, referral_id = await services.referred_client(
        ["programme", "referral", "identity_to_clinic"], expires_on="2026-03-10"
    )
    clinic = services.referrals.clinic(CLINIC)
    for runtime in (services.referrals.runtime, services.outreach.app.state.runtime):
        runtime.clock.set(date(2026, 3, 10))
    assert (await services.identity(referral_id, clinic)).status_code == 200
    for runtime in (services.referrals.runtime, services.outreach.app.state.runtime):
        runtime.clock.set(date(2026, 3, 11))
    before = await eventually(  # moving the clock escalated the unanswered referral
        services.referrals.outbox_names, until=lambda names: "ReferralEscalated" in names
    )
    r = await services.identity(referral_id, clinic)
    assert r.status_code == 403 and r.json()["code"] == "consent_required"
    assert await services.referrals.outbox_names() == before


async def test_an_erased_client_is_gone_and_an_unreachable_outreach_is_503(services: TwoServices) -> None:
    client, referral_id = await services.referred_client(["programme", "referral", "identity_to_clinic"])
    clinic = services.referrals.clinic(CLINIC)
    runtime = services.referrals.runtime
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{free_port()}", timeout=1) as nobody:
        injected = ask_outreach_through(runtime, nobody)
        try:
            down = await services.identity(referral_id, clinic)
        finally:
            ask_outreach_through(runtime, injected)
    assert down.status_code == 503 and down.json()["code"] == "outreach_unavailable"

    erased = await services.outreach.http.post(
        f"/v1/clients/{client.client_id}/erase", headers=auth(Role.FACILITATOR), json={"on": "2026-03-01"}
    )
    assert erased.status_code == 200, erased.text
    gone = await services.identity(referral_id, clinic)  # outreach answers 410 before the event arrives
    assert gone.status_code == 410 and gone.json()["code"] == "client_erased"
    assert [o for o, _, _ in await services.referral_audit(referral_id)] == ["unavailable", "erased"]
    await services.bridge()  # now referral knows too, and does not even ask
    again = await services.identity(referral_id, clinic)
    assert again.status_code == 410 and again.json()["code"] == "client_erased"
    assert [o for o, _, _ in await services.referral_audit(referral_id)] == [
        "unavailable",
        "erased",
        "erased",
    ]
    assert await services.referrals.outbox_names() == ["ReferredToClinic"]


# --- outreach checks for itself: a service token is not a master key ----------------------------


async def test_a_service_token_without_referral_or_consent_reads_nothing_and_each_try_is_audited(
    services: TwoServices,
) -> None:
    client, referral_id = await services.referred_client(["programme", "referral"])
    made_up = f"referral:{uuid.uuid4()}"
    tries = [
        (f"referral:{referral_id}", CLINIC, "consent_required"),
        (made_up, CLINIC, "unknown_referral"),
        ("home visit", CLINIC, "purpose_not_referral"),
        (f"referral:{referral_id}", None, "clinic_required"),
    ]
    for purpose, clinic, code in tries:
        r = await services.ask_outreach(client.client_id, purpose, clinic)
        assert r.status_code == 403 and r.json()["code"] == code, r.text
        assert "Budi" not in r.text
    assert await services.audit(client.client_id) == [
        ("referral", "denied", clinic, purpose, code) for purpose, clinic, code in tries
    ]
    other = await services.outreach.client(
        await services.outreach.unit(), services.outreach.facilitator, nik="3301011505900003"
    )
    unreferred = uuid.UUID(other.json()["client_id"])  # consents to nothing, referred nowhere
    r = await services.ask_outreach(unreferred, f"referral:{referral_id}")
    assert r.status_code == 403 and r.json()["code"] == "unknown_referral"
    assert await services.audit(unreferred) == [
        ("referral", "denied", CLINIC, f"referral:{referral_id}", "unknown_referral")
    ]


async def test_a_rehab_service_token_reads_no_identity(services: TwoServices) -> None:
    client, referral_id = await services.referred_client(["programme", "referral", "identity_to_clinic"])
    r = await services.ask_outreach(client.client_id, f"referral:{referral_id}", service="rehab")
    assert r.status_code == 403 and r.json()["code"] == "service_not_allowed"
    assert "Budi" not in r.text
    assert await services.audit(client.client_id) == [
        ("rehab", "denied", CLINIC, f"referral:{referral_id}", "service_not_allowed")
    ]
    # the very same request with referral's token is the hand-over
    assert (await services.ask_outreach(client.client_id, f"referral:{referral_id}")).status_code == 200


async def test_on_behalf_of_another_clinic_reads_nothing(services: TwoServices) -> None:
    client, referral_id = await services.referred_client(["programme", "referral", "identity_to_clinic"])
    r = await services.ask_outreach(client.client_id, f"referral:{referral_id}", OTHER_CLINIC)
    assert r.status_code == 403 and r.json()["code"] == "not_addressed_clinic"
    assert "Budi" not in r.text
    assert await services.audit(client.client_id) == [
        ("referral", "denied", OTHER_CLINIC, f"referral:{referral_id}", "not_addressed_clinic")
    ]


async def test_a_closed_referral_reads_nothing_though_the_identity_consent_holds(
    services: TwoServices,
) -> None:
    # the referral consent and the identity consent are separate: withdrawing the referral one
    # cancels (and closes) the referral, and the identity consent still holds
    client, referral_id = await services.referred_client(["programme", "referral"])
    identity_consent = await services.outreach.http.post(
        f"/v1/clients/{client.client_id}/consents",
        headers=auth(Role.FACILITATOR),
        json={"scopes": ["identity_to_clinic"], "given_on": "2026-02-01"},
    )
    assert identity_consent.status_code == 201, identity_consent.text
    await services.bridge()
    assert (await services.ask_outreach(client.client_id, f"referral:{referral_id}")).status_code == 200
    withdrawn = await services.outreach.http.post(
        f"/v1/clients/{client.client_id}/consents/{client.consent_id}/withdraw",
        headers=auth(Role.FACILITATOR),
        json={"on": "2026-03-01"},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    await services.bridge()  # referral cancels and closes the referral; outreach hears of it
    assert (await services.referrals.outbox_names())[-1] == "ReferralClosed"
    r = await services.ask_outreach(client.client_id, f"referral:{referral_id}")
    assert r.status_code == 403 and r.json()["code"] == "referral_closed"
    assert [(o, why) for _, o, _, _, why in await services.audit(client.client_id)] == [
        ("granted", None),
        ("denied", "referral_closed"),
    ]
