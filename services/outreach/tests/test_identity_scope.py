"""Outreach's identity route takes a service token only with the scope ``outreach.identity``
(the one the provider grants referral's client alone); without it, 403 ``insufficient_scope``,
audited. A service token opens none of outreach's routes for people, whatever its scope."""

from __future__ import annotations

import uuid

import pytest
from outreach_factories import Outreach
from sqlalchemy import select

from pulih.kit.auth import service_token
from pulih.kit.service_tokens import IDENTITY_SCOPE
from pulih.kit.testing import JWT_SECRET, REGENCY
from pulih.outreach.store import IdentityRead


def service(scope: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {service_token(JWT_SECRET, REGENCY, 'referral', scope)}"}


async def test_referral_without_the_identity_scope_is_refused_and_audited(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    client_id = (await outreach.client(unit_id, outreach.facilitator)).json()["client_id"]
    for scope in (None, "profile email"):
        r = await outreach.http.get(
            f"/v1/clients/{client_id}",
            params={"purpose": f"referral:{uuid.uuid4()}", "on_behalf_of": "klinik-pratama-sehat"},
            headers=service(scope),
        )
        assert (r.status_code, r.json()["code"]) == (403, "insufficient_scope"), r.text
        assert "Budi" not in r.text
    async with outreach.app.state.runtime.database.sessions() as s:
        rows = (await s.scalars(select(IdentityRead).order_by(IdentityRead.id))).all()
    assert [(r.actor, r.outcome, r.reason) for r in rows] == [
        ("referral", "denied", "insufficient_scope")
    ] * 2


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/units"), ("POST", "/v1/units"), ("GET", "/v1/clients"), ("GET", "/v1/admin/clock")],
)
async def test_a_service_token_opens_no_route_for_people(outreach: Outreach, method: str, path: str) -> None:
    r = await outreach.http.request(method, path, headers=service(IDENTITY_SCOPE), json={})
    assert (r.status_code, r.json()["code"]) == (403, "forbidden_role"), r.text
