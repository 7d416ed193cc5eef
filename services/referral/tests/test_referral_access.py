"""Who may call what, decided before anything else: a caller without the role learns nothing about
a request's shape (403 before any 422), and referral asks outreach for an identity with a
one-minute token that names it, and only on behalf of the addressed clinic."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest
from referral_factories import CLINIC, Referrals
from sqlalchemy import select

from pulih.kit.auth import Role, dev_verifier
from pulih.kit.testing import auth
from pulih.referral.deps import Outreach, ReferralDeps
from pulih.referral.store import IdentityHandOver

NOT_A_UUID = "not-a-uuid"

# (method, path, role without the right, what a caller with it would get 422 for)
REFUSED_BEFORE_VALIDATION = [
    ("POST", "/v1/clinics", Role.AGENT, {"json": {"clinic_id": "Not A Slug", "kind": "spa"}}),
    ("POST", "/v1/clinics", Role.NATIONAL, {"json": {}}),
    ("POST", "/v1/referrals", Role.CLINIC, {"json": {"client_id": NOT_A_UUID, "referred_on": "2999-99-99"}}),
    ("POST", "/v1/referrals", Role.NATIONAL, {"json": {}}),
    ("GET", "/v1/referrals", Role.NATIONAL, {"params": {"status": "bogus", "client_id": NOT_A_UUID}}),
    ("GET", "/v1/referrals", Role.SERVICE, {"params": {"escalated": "maybe"}}),
    ("GET", "/v1/referrals/suggestions", Role.CLINIC, {}),
    ("GET", f"/v1/referrals/{NOT_A_UUID}", Role.NATIONAL, {}),
    ("POST", f"/v1/referrals/{NOT_A_UUID}/cancel", Role.CLINIC, {"json": {"reason": "bogus"}}),
    ("POST", f"/v1/referrals/{NOT_A_UUID}/answers", Role.FACILITATOR, {"json": {"answer": "maybe"}}),
    ("POST", f"/v1/referrals/{NOT_A_UUID}/answers", Role.ADMIN, {"json": {}}),
    ("GET", f"/v1/referrals/{NOT_A_UUID}/identity/audit", Role.CLINIC, {}),
    ("GET", f"/v1/referrals/{NOT_A_UUID}/identity/audit", Role.NATIONAL, {}),
]


def headers_for(role: Role) -> dict[str, str]:
    claims: dict[str, Any] = {"sub": f"someone-{role.value}"}
    if role is Role.AGENT:
        claims["unit_id"] = uuid.uuid4()
    if role is Role.CLINIC:
        claims["clinic_id"] = CLINIC
    return auth(role, **claims)


@pytest.mark.parametrize(("method", "path", "role", "request_"), REFUSED_BEFORE_VALIDATION)
async def test_a_caller_without_the_role_gets_403_before_the_request_is_validated(
    referrals: Referrals, method: str, path: str, role: Role, request_: dict[str, Any]
) -> None:
    r = await referrals.http.request(method, path, headers=headers_for(role), **request_)
    assert (r.status_code, r.json()["code"]) == (403, "forbidden_role"), r.text
    assert await referrals.outbox() == []


async def test_a_caller_with_the_role_still_gets_422_for_a_bad_request(referrals: Referrals) -> None:
    """The other half: once the role is right, the request's shape is checked as before."""
    r = await referrals.http.get("/v1/referrals", headers=referrals.facilitator, params={"status": "bogus"})
    assert (r.status_code, r.json()["code"]) == (422, "invalid")
    r = await referrals.http.post(f"/v1/referrals/{NOT_A_UUID}/answers", headers=referrals.clinic(), json={})
    assert (r.status_code, r.json()["code"]) == (422, "invalid")


class FakeOutreach:
    """Outreach's identity API as referral meets it: records each request, answers a fixed identity."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        client_id = request.url.path.rsplit("/", 1)[-1]
        return httpx.Response(
            200,
            json={
                "client_id": client_id,
                "full_name": "Budi Santoso",
                "nik": "3301010101900001",
                "birth_date": "1990-01-01",
                "sex": "m",
                "phone": None,
                "address": None,
            },
        )


@pytest.fixture
def outreach(referrals: Referrals) -> FakeOutreach:
    fake = FakeOutreach()
    runtime = referrals.runtime
    deps = runtime.deps_as(ReferralDeps)
    runtime.deps = replace(
        deps,
        outreach=Outreach(
            "http://outreach",
            httpx.AsyncClient(transport=httpx.MockTransport(fake), base_url="http://outreach"),
        ),
    )
    return fake


async def referred(referrals: Referrals) -> tuple[Any, str]:
    await referrals.add_clinic()
    client = await referrals.client()
    return client, await referrals.referral(client)


async def audit(referrals: Referrals, referral_id: str) -> list[tuple[str, str | None, str]]:
    async with referrals.runtime.database.sessions() as s:
        rows = (
            await s.scalars(
                select(IdentityHandOver)
                .where(IdentityHandOver.referral_id == uuid.UUID(referral_id))
                .order_by(IdentityHandOver.id)
            )
        ).all()
    return [(row.outcome, row.reason, row.purpose) for row in rows]


async def test_referral_asks_outreach_with_a_one_minute_token_of_its_own(
    referrals: Referrals, outreach: FakeOutreach
) -> None:
    client, referral_id = await referred(referrals)
    r = await referrals.http.get(
        f"/v1/referrals/{referral_id}/identity", headers=referrals.clinic(), params={"purpose": "admission"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["full_name"] == "Budi Santoso"
    [request] = outreach.requests
    assert request.url.path == f"/v1/clients/{client.client_id}"
    assert dict(request.url.params) == {"purpose": f"referral:{referral_id}", "on_behalf_of": CLINIC}
    scheme, token = request.headers["Authorization"].split(" ", 1)
    secret = referrals.runtime.settings.jwt_secret.get_secret_value()
    claims = dev_verifier(secret, "pulih").claims(token)
    assert scheme == "Bearer"
    assert (claims["sub"], claims["role"], claims["regency"]) == ("referral", "service", "3301")
    assert claims["exp"] - claims["iat"] == 60
    assert "clinic_id" not in claims and "unit_id" not in claims
    assert await audit(referrals, referral_id) == [("granted", None, "admission")]


BAD_PURPOSES: list[Callable[[], str]] = [lambda: "x", lambda: "y" * 151, lambda: "admission\x00"]


async def test_the_purpose_is_checked_only_once_the_caller_is_the_addressed_clinic(
    referrals: Referrals, outreach: FakeOutreach
) -> None:
    """A national or facilitator token learns nothing of what a valid purpose is (403, audited);
    the addressed clinic gets 422 ``invalid_purpose`` (audited too); outreach is never asked."""
    _, referral_id = await referred(referrals)
    url = f"/v1/referrals/{referral_id}/identity"
    for headers, purpose in ((auth(Role.NATIONAL), "x"), (referrals.facilitator, "\x00" * 300)):
        r = await referrals.http.get(url, headers=headers, params={"purpose": purpose})
        assert (r.status_code, r.json()["code"]) == (403, "not_addressed_clinic"), r.text
    for purpose in BAD_PURPOSES:
        r = await referrals.http.get(url, headers=referrals.clinic(), params={"purpose": purpose()})
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "invalid_purpose", "purpose")
    assert outreach.requests == []
    entries = await audit(referrals, referral_id)
    assert [(outcome, reason) for outcome, reason, _ in entries] == [
        ("denied", "not_addressed_clinic"),
        ("denied", "not_addressed_clinic"),
        ("denied", "invalid_purpose"),
        ("denied", "invalid_purpose"),
        ("denied", "invalid_purpose"),
    ]
    assert entries[1][2] == "\ufffd" * 200, "the audit keeps what it can of any purpose"
    assert entries[3][2] == "y" * 151
