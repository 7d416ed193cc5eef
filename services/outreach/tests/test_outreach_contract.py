"""Outreach's API as its OpenAPI document promises it (issue 14): lists a page at a time, strict
request types, the schema's rules (a village of the regency, consent dates in order), errors
naming the field as sent, and 404 under a parent that does not exist."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from outreach_factories import Outreach, refused

from pulih.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from pulih.kit.testing import REGENCY

UNKNOWN = str(uuid.uuid4())


async def document(o: Outreach) -> dict[str, Any]:
    answer = await o.http.get("/openapi.json")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def example(doc: dict[str, Any], schema: str) -> dict[str, Any]:
    examples: list[dict[str, Any]] = doc["components"]["schemas"][schema]["examples"]
    return examples[0]


async def test_every_request_body_has_an_example(outreach: Outreach) -> None:
    doc = await document(outreach)
    bodies = {
        operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        for path in doc["paths"].values()
        for operation in path.values()
        if "requestBody" in operation
    }
    assert bodies and all(doc["components"]["schemas"][b].get("examples") for b in bodies), bodies


async def test_a_units_village_is_in_the_regency_as_the_schema_says(outreach: Outreach) -> None:
    establish = (await document(outreach))["components"]["schemas"]["EstablishUnit"]
    assert establish["properties"]["village_code"]["pattern"] == f"^{REGENCY}[0-9]{{6}}$"
    assert establish["examples"][0]["village_code"].startswith(REGENCY)
    outside = {**establish["examples"][0], "village_code": "3302012001"}
    request = outreach.http.post("/v1/units", headers=outreach.facilitator, json=outside)
    await refused(outreach, request, 422, "village_outside_regency", "village_code")


async def test_units_come_a_page_at_a_time_by_name(outreach: Outreach) -> None:
    names = [f"Unit IBM {letter}" for letter in "GFEDCBA"]
    for name in names:
        body = {"name": name, "village_code": "3301012001", "established_on": "2026-01-10"}
        assert (
            await outreach.http.post("/v1/units", headers=outreach.facilitator, json=body)
        ).status_code == 201
    first = await outreach.http.get("/v1/units", headers=outreach.facilitator, params={"limit": 3})
    pages = [first.json()]
    assert first.headers["Link"] == f'<{pages[0]["next"]}>; rel="next"'
    while pages[-1]["next"]:
        pages.append((await outreach.http.get(pages[-1]["next"], headers=outreach.facilitator)).json())
    assert [[u["name"] for u in page["items"]] for page in pages] == [
        sorted(names)[0:3],
        sorted(names)[3:6],
        sorted(names)[6:],
    ]
    for limit in (0, MAX_LIMIT + 1):
        request = outreach.http.get("/v1/units", headers=outreach.facilitator, params={"limit": limit})
        await refused(outreach, request, 422, "invalid", "limit")
    whole = await outreach.http.get("/v1/units", headers=outreach.facilitator)
    assert len(whole.json()["items"]) == 7 <= DEFAULT_LIMIT and whole.json()["next"] is None


async def test_a_value_of_another_json_type_is_refused_naming_its_field(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    agent_id = await outreach.agent(unit_id)
    client_id = (await outreach.client(unit_id, outreach.facilitator)).json()["client_id"]
    activity = {"agent_id": agent_id, "kind": "sosialisasi", "held_on": "2026-02-01", "people_reached": 12}
    url = f"/v1/units/{unit_id}/activities"
    for field, value in [("people_reached", False), ("people_reached", "12"), ("held_on", 0), ("kind", 1)]:
        request = outreach.http.post(url, headers=outreach.facilitator, json={**activity, field: value})
        await refused(outreach, request, 422, "invalid", field)
    consent = f"/v1/clients/{client_id}/consents"
    for body, field in [
        ({"scopes": ["programme"], "given_on": 0}, "given_on"),
        ({"scopes": ["programme"], "given_on": "20260201"}, "given_on"),
        ({"scopes": [True], "given_on": "2026-02-01"}, "scopes[0]"),
    ]:
        await refused(
            outreach,
            outreach.http.post(consent, headers=outreach.facilitator, json=body),
            422,
            "invalid",
            field,
        )
    identity = {"full_name": "Budi Santoso", "nik": 3301011505900001}
    request = outreach.client(unit_id, outreach.facilitator, **identity)
    await refused(outreach, request, 422, "invalid", "identity.nik")
    assert (await outreach.http.post(url, headers=outreach.facilitator, json=activity)).status_code == 201


async def test_a_consent_expiring_before_it_is_given_is_refused_as_the_schema_says(
    outreach: Outreach,
) -> None:
    doc = await document(outreach)
    assert (
        "not before `given_on`"
        in doc["components"]["schemas"]["RecordConsent"]["properties"]["expires_on"]["description"]
    )
    unit_id = await outreach.unit()
    client_id = (await outreach.client(unit_id, outreach.facilitator)).json()["client_id"]
    body = {"scopes": ["programme"], "given_on": "2026-02-02", "expires_on": "2026-02-01"}
    request = outreach.http.post(f"/v1/clients/{client_id}/consents", headers=outreach.facilitator, json=body)
    await refused(outreach, request, 422, "expires_before_given", "expires_on")
    same_day = {**body, "expires_on": "2026-02-02"}
    answer = await outreach.http.post(
        f"/v1/clients/{client_id}/consents", headers=outreach.facilitator, json=same_day
    )
    assert answer.status_code == 201, answer.text


NESTED = [
    ("POST", "/v1/units/{unknown}/agents", "RegisterAgent", "unit_not_found"),
    ("GET", "/v1/units/{unknown}/agents", None, "unit_not_found"),
    ("POST", "/v1/units/{unknown}/activities", "RecordOutreach", "unit_not_found"),
    ("POST", "/v1/agents/{unknown}/deactivate", "DeactivateAgent", "agent_not_found"),
    ("POST", "/v1/clients/{unknown}/erase", "EraseClient", "client_not_found"),
    ("POST", "/v1/clients/{unknown}/consents", "RecordConsent", "client_not_found"),
    ("GET", "/v1/clients/{unknown}/consents", None, "client_not_found"),
    ("POST", "/v1/clients/{unknown}/consents/{unknown}/withdraw", "WithdrawConsent", "client_not_found"),
    ("POST", "/v1/clients/{unknown}/consents/{unknown}/withdraw", "WithdrawConsent", "consent_not_found"),
    ("POST", "/v1/clients/{unknown}/screenings", "ScreenClient", "client_not_found"),
    ("GET", "/v1/clients/{unknown}/audit", None, "client_not_found"),
    ("GET", "/v1/clients/{unknown}?purpose=home+visit", None, "client_not_found"),
    ("POST", "/v1/duplicates/{unknown}/resolve", "ResolveDuplicate", "duplicate_not_found"),
]


@pytest.mark.parametrize(("method", "path", "body", "code"), NESTED)
async def test_a_route_under_a_parent_that_does_not_exist_is_404(
    outreach: Outreach, method: str, path: str, body: str | None, code: str
) -> None:
    doc = await document(outreach)
    if code == "consent_not_found":  # the client exists, its consent does not
        client_id = (await outreach.client(await outreach.unit(), outreach.facilitator)).json()["client_id"]
        path = path.replace("{unknown}", client_id, 1)
    json = example(doc, body) if body else None
    if body == "RecordOutreach":
        json = {**json, "held_on": "2026-02-01"} if json else None
    request = outreach.http.request(
        method, path.replace("{unknown}", UNKNOWN), headers=outreach.facilitator, json=json
    )
    await refused(outreach, request, 404, code)
