"""A caller is known before its body is read: a malformed body from an anonymous caller is 401,
and a caller without the role learns nothing about the shape of a request (403, not 422)."""

from __future__ import annotations

from outreach_factories import Outreach

from pulih.kit.auth import Role
from pulih.kit.testing import auth

MALFORMED = b'{"x": [1,'


async def test_a_malformed_body_without_valid_credentials_is_401(outreach: Outreach) -> None:
    for headers, code in (({}, "missing_token"), ({"Authorization": "Bearer not.a.token"}, "invalid_token")):
        r = await outreach.http.post(
            "/v1/clients", content=MALFORMED, headers={**headers, "Content-Type": "application/json"}
        )
        assert (r.status_code, r.json()["code"]) == (401, code)


async def test_a_malformed_body_from_a_known_caller_is_422_on_the_body(outreach: Outreach) -> None:
    r = await outreach.http.post(
        "/v1/units", content=MALFORMED, headers={**outreach.facilitator, "Content-Type": "application/json"}
    )
    assert r.status_code == 422
    body = r.json()
    assert (body["code"], body["field"]) == ("invalid_json", "body")
    assert "character 9" in body["message"]


async def test_moving_the_clock_is_refused_to_other_roles_before_the_body_is_read(outreach: Outreach) -> None:
    for role in (Role.NATIONAL, Role.CLINIC, Role.SERVICE, Role.FACILITATOR):
        claims = {"clinic_id": "klinik-a"} if role is Role.CLINIC else {}
        r = await outreach.http.put("/v1/admin/clock", json={}, headers=auth(role, **claims))
        assert (r.status_code, r.json()["code"]) == (403, "forbidden_role"), role
