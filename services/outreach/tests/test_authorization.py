"""Authorization before validation: a caller whose role may not use a route gets 403 whatever it
sends, so it learns nothing about the request's shape (a malformed body or query used to answer
422 first, naming the fields). A refused identity read is still audited, with the client id and
the purpose as sent."""

from __future__ import annotations

import uuid

import pytest
from outreach_factories import Outreach, refused
from sqlalchemy import select

from pulih.kit.auth import Role
from pulih.kit.testing import auth
from pulih.outreach.store import IdentityRead

ID = "3c60b6bd-f463-4a6f-a537-98aef2ad0d1d"  # fixed: test ids must be the same in every xdist worker
NOT_AN_ID = "not-an-id"

ROUTES = [
    # (method, path, a role the route refuses, a body or query that is malformed)
    ("POST", "/v1/units", Role.NATIONAL, {"name": 7}),
    ("POST", "/v1/units", Role.AGENT, {}),
    ("GET", "/v1/units", Role.CLINIC, None),
    ("POST", f"/v1/units/{NOT_AN_ID}/agents", Role.AGENT, {"trained_on": "soon"}),
    ("GET", f"/v1/units/{NOT_AN_ID}/agents", Role.NATIONAL, None),
    ("POST", f"/v1/agents/{NOT_AN_ID}/deactivate", Role.AGENT, {"on": "x"}),
    ("POST", f"/v1/units/{NOT_AN_ID}/activities", Role.NATIONAL, {"people_reached": -1}),
    ("POST", "/v1/clients", Role.NATIONAL, {"identity": {}}),
    ("POST", "/v1/clients", Role.ADMIN, {}),
    ("GET", "/v1/clients?unit_id=x", Role.NATIONAL, None),
    ("POST", f"/v1/clients/{NOT_AN_ID}/erase", Role.AGENT, {"on": 1}),
    ("POST", f"/v1/clients/{NOT_AN_ID}/consents", Role.NATIONAL, {"scopes": ["everything"]}),
    ("GET", f"/v1/clients/{NOT_AN_ID}/consents", Role.ADMIN, None),
    ("POST", f"/v1/clients/{ID}/consents/{NOT_AN_ID}/withdraw", Role.CLINIC, {}),
    ("POST", f"/v1/clients/{NOT_AN_ID}/screenings", Role.NATIONAL, {"substances": "all"}),
    ("GET", f"/v1/clients/{NOT_AN_ID}/audit", Role.AGENT, None),
    ("GET", "/v1/duplicates?status=everything", Role.AGENT, None),
    ("POST", f"/v1/duplicates/{NOT_AN_ID}/resolve", Role.ADMIN, {"resolution": "merge"}),
]


def headers_for(role: Role) -> dict[str, str]:
    if role is Role.AGENT:
        return auth(role, unit_id=uuid.uuid4())
    if role is Role.CLINIC:
        return auth(role, clinic_id="klinik-pratama-sehat")
    return auth(role)


@pytest.mark.parametrize(("method", "path", "role", "body"), ROUTES)
async def test_a_role_without_the_right_gets_403_before_its_request_is_validated(
    outreach: Outreach, method: str, path: str, role: Role, body: dict[str, object] | None
) -> None:
    request = outreach.http.request(method, path, headers=headers_for(role), json=body)
    error = await refused(outreach, request, 403, "forbidden_role", None)
    assert "errors" not in error


async def audit_rows(o: Outreach) -> list[tuple[uuid.UUID | None, str, str, str, str | None]]:
    async with o.app.state.runtime.database.sessions() as s:
        rows = (await s.scalars(select(IdentityRead).order_by(IdentityRead.id))).all()
    return [(r.client_id, r.actor_role, r.purpose, r.outcome, r.reason) for r in rows]


async def test_a_refused_identity_read_with_a_bad_query_is_403_and_audited(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    client_id = (await outreach.client(unit_id, outreach.facilitator)).json()["client_id"]
    too_short = outreach.http.get(
        f"/v1/clients/{client_id}", params={"purpose": "x"}, headers=auth(Role.NATIONAL)
    )
    await refused(outreach, too_short, 403, "forbidden_role", None)
    missing = outreach.http.get(f"/v1/clients/{client_id}", headers=auth(Role.ADMIN))
    await refused(outreach, missing, 403, "forbidden_role", None)
    too_long = outreach.http.get(
        f"/v1/clients/{client_id}",
        params={"purpose": "p" * 500, "on_behalf_of": "c" * 500},
        headers=auth(Role.CLINIC, clinic_id="klinik-pratama-sehat"),
    )
    await refused(outreach, too_long, 403, "forbidden_role", None)
    no_id = outreach.http.get(
        f"/v1/clients/{NOT_AN_ID}", params={"purpose": "curious"}, headers=auth(Role.NATIONAL)
    )
    await refused(outreach, no_id, 403, "forbidden_role", None)
    client = uuid.UUID(client_id)
    assert await audit_rows(outreach) == [
        (client, "national", "x", "denied", "forbidden_role"),
        (client, "admin", "", "denied", "forbidden_role"),
        (client, "clinic", "p" * 200, "denied", "forbidden_role"),
        (None, "national", "curious", "denied", "forbidden_role"),
    ]
    # a role that may read identities still has its query validated
    bad = outreach.http.get(f"/v1/clients/{client_id}", params={"purpose": "x"}, headers=outreach.facilitator)
    await refused(outreach, bad, 422, "invalid", "purpose")
