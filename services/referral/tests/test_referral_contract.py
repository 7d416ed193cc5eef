"""Referral's API as its OpenAPI document promises it (issue 14): lists a page at a time, strict
request types, a clinic's answer named by the body's own fields (never the union's member), an
appointment not before its acceptance, and 404 under a referral that does not exist."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from referral_factories import CLINIC, Referrals

UNKNOWN = str(uuid.uuid4())


def error(answer: Any) -> tuple[int, str, str | None]:
    body = answer.json()
    return answer.status_code, body["code"], body["field"]


async def test_clinics_and_referrals_come_a_page_at_a_time(referrals: Referrals) -> None:
    for clinic_id in ("klinik-c", "klinik-a", CLINIC, "klinik-b"):
        await referrals.add_clinic(clinic_id)
    first = await referrals.http.get("/v1/clinics", headers=referrals.facilitator, params={"limit": 3})
    rest = await referrals.http.get(first.json()["next"], headers=referrals.facilitator)
    listed = [c["clinic_id"] for c in first.json()["items"] + rest.json()["items"]]
    assert listed == sorted(["klinik-c", "klinik-a", CLINIC, "klinik-b"]) and rest.json()["next"] is None

    unit = uuid.uuid4()
    made = [await referrals.referral(await referrals.client(unit_id=unit)) for _ in range(3)]
    pages: list[dict[str, Any]] = [
        (await referrals.http.get("/v1/referrals", headers=referrals.agent(unit), params={"limit": 1})).json()
    ]
    while pages[-1]["next"]:
        pages.append((await referrals.http.get(pages[-1]["next"], headers=referrals.agent(unit))).json())
    assert [r["referral_id"] for page in pages for r in page["items"]] == sorted(made)  # one day: by id


async def test_suggestions_come_a_page_at_a_time(referrals: Referrals) -> None:
    clients = [await referrals.client() for _ in range(3)]
    first = await referrals.http.get(
        "/v1/referrals/suggestions", headers=referrals.facilitator, params={"limit": 2}
    )
    rest = await referrals.http.get(first.json()["next"], headers=referrals.facilitator)
    suggested = [s["client_id"] for s in first.json()["items"] + rest.json()["items"]]
    assert sorted(suggested) == sorted(str(c.client_id) for c in clients) and rest.json()["next"] is None


@pytest.mark.parametrize("escalated", ["1", "yes", "True", "on"])
async def test_a_yes_or_no_in_the_query_is_true_or_false(referrals: Referrals, escalated: str) -> None:
    answer = await referrals.http.get(
        "/v1/referrals", headers=referrals.facilitator, params={"escalated": escalated}
    )
    assert error(answer) == (422, "invalid", "escalated")


async def test_a_clinics_answer_is_named_by_the_bodys_own_fields(referrals: Referrals) -> None:
    await referrals.add_clinic()
    referral_id = await referrals.referral(await referrals.client())
    referrals.today_is(date(2026, 3, 4))
    cases = [
        ({"answer": "accepted"}, "on"),
        ({"answer": "accepted", "on": 0}, "on"),
        (
            {"answer": "completed", "on": "2026-03-02", "outcome": "completed", "back_referral": 1},
            "back_referral",
        ),
        ({"answer": "declined", "on": "2026-03-02", "reason": "busy"}, "reason"),
        ({"answer": "maybe", "on": "2026-03-02"}, "answer"),
        ({"on": "2026-03-02"}, "answer"),
    ]
    for body, field in cases:
        answer = await referrals.answer(referral_id, **body)
        assert error(answer) == (422, "invalid", field), (body, answer.text)
    early = await referrals.answer(
        referral_id, answer="accepted", on="2026-03-03", appointment_on="2026-03-02"
    )
    assert error(early) == (422, "date_before_acceptance", "appointment_on")
    assert await referrals.outbox_names() == ["ReferredToClinic"]


async def test_the_answers_schema_says_an_appointment_follows_the_acceptance(referrals: Referrals) -> None:
    doc = (await referrals.http.get("/openapi.json")).json()
    appointment = doc["components"]["schemas"]["Accepted"]["properties"]["appointment_on"]
    assert "not before `on`" in appointment["description"]
    bodies = {
        ref.rsplit("/", 1)[-1]
        for path in doc["paths"].values()
        for operation in path.values()
        if "requestBody" in operation
        for ref in _refs(operation["requestBody"]["content"]["application/json"]["schema"])
    }
    assert {"Accepted", "Declined", "Attended", "Completed", "ReferClient"} <= bodies
    assert all(doc["components"]["schemas"][b].get("examples") for b in bodies), bodies


def _refs(schema: dict[str, Any]) -> list[str]:
    if "$ref" in schema:
        return [schema["$ref"]]
    return [ref for member in schema.get("oneOf", []) for ref in _refs(member)]


NESTED = [
    ("GET", "/v1/referrals/{unknown}", "facilitator", None, "referral_not_found"),
    (
        "POST",
        "/v1/referrals/{unknown}/cancel",
        "facilitator",
        {"reason": "client_request"},
        "referral_not_found",
    ),
    (
        "POST",
        "/v1/referrals/{unknown}/answers",
        "clinic",
        {"answer": "attended", "on": "2026-03-02"},
        "unknown_referral",
    ),
    ("GET", "/v1/referrals/{unknown}/identity/audit", "facilitator", None, "referral_not_found"),
    ("GET", "/v1/clinics/not-a-clinic", "facilitator", None, "clinic_not_found"),
]


@pytest.mark.parametrize(("method", "path", "who", "body", "code"), NESTED)
async def test_a_route_under_a_referral_that_does_not_exist_is_404(
    referrals: Referrals, method: str, path: str, who: str, body: dict[str, Any] | None, code: str
) -> None:
    headers = referrals.clinic() if who == "clinic" else referrals.facilitator
    answer = await referrals.http.request(
        method, path.replace("{unknown}", UNKNOWN), headers=headers, json=body
    )
    assert (answer.status_code, answer.json()["code"]) == (404, code), answer.text
    assert await referrals.outbox_size() == 0
