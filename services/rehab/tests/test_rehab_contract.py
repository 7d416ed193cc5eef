"""Rehab's API as its OpenAPI document promises it (issue 14): enrolments a page at a time, strict
request types (``?date=0`` is no date), a WHOQOL form's errors at the item the client sent, and
404 under a parent that does not exist."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from rehab_factories import MONDAY, Rehab, middling_whoqol

UNKNOWN = str(uuid.uuid4())


def error(answer: Any) -> tuple[int, str, str | None]:
    body = answer.json()
    return answer.status_code, body["code"], body["field"]


async def test_enrolments_come_a_page_at_a_time_newest_first(rehab: Rehab) -> None:
    unit = uuid.uuid4()
    clients = [await rehab.screened_client(unit_id=unit) for _ in range(3)]
    made = [await rehab.enrolled(c) for c in clients]
    first = await rehab.http.get("/v1/enrolments", headers=rehab.facilitator, params={"limit": 2})
    assert first.status_code == 200, first.text
    second = await rehab.http.get(first.json()["next"], headers=rehab.facilitator)
    seen = [e["enrollment_id"] for e in first.json()["items"] + second.json()["items"]]
    assert sorted(seen) == sorted(made) and second.json()["next"] is None
    assert [len(first.json()["items"]), len(second.json()["items"])] == [2, 1]
    # all enrolled the same day: newest first is by id, descending, on that day
    assert seen == sorted(made, reverse=True)


async def test_the_worklist_of_a_unit_rehab_never_heard_of_is_404(rehab: Rehab) -> None:
    answer = await rehab.http.get(f"/v1/units/{UNKNOWN}/worklist", headers=rehab.facilitator)
    assert error(answer) == (404, "unit_not_found", "unit_id")
    c = await rehab.screened_client()
    known = await rehab.http.get(f"/v1/units/{c.unit_id}/worklist", headers=rehab.facilitator)
    assert known.status_code == 200 and known.json()["agents"] == []


@pytest.mark.parametrize("day", ["0", "1", "2026-3-2", "2026-03-02T00:00:00", "1772409600"])
async def test_a_worklist_day_that_is_no_date_is_422(rehab: Rehab, day: str) -> None:
    c = await rehab.screened_client()
    answer = await rehab.http.get(f"/v1/units/{c.unit_id}/worklist", headers=c.agent, params={"date": day})
    assert error(answer) == (422, "invalid", "date")


async def test_a_session_in_another_json_type_is_refused_naming_its_field(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    session = {
        "agent_id": c.agent_id,
        "held_on": MONDAY.isoformat(),
        "kind": "edukasi",
        "attended": True,
        "minutes": 45,
    }
    url = f"/v1/enrolments/{enrollment_id}/sessions"
    for field, value in [("attended", 1), ("minutes", "45"), ("minutes", 45.5), ("held_on", 20260302)]:
        answer = await rehab.http.post(url, headers=c.agent, json={**session, field: value})
        assert error(answer) == (422, "invalid", field), answer.text


async def test_a_whoqol_error_names_the_item_where_the_request_has_it(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    url = f"/v1/enrolments/{enrollment_id}/assessments"
    body = {"timepoint": "follow_up", "assessed_on": MONDAY.isoformat(), "answers": middling_whoqol(q7=6)}
    assert error(await rehab.http.post(url, headers=c.agent, json=body)) == (422, "invalid", "answers.q7")
    body["answers"] = middling_whoqol(q7=True)
    assert error(await rehab.http.post(url, headers=c.agent, json=body)) == (422, "invalid", "answers.q7")


async def test_every_request_body_has_an_example(rehab: Rehab) -> None:
    doc = (await rehab.http.get("/openapi.json")).json()
    bodies = {
        operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        for path in doc["paths"].values()
        for operation in path.values()
        if "requestBody" in operation
    }
    assert bodies and all(doc["components"]["schemas"][b].get("examples") for b in bodies), bodies


NESTED = [
    ("GET", "/v1/enrolments/{unknown}", None, "enrolment_not_found"),
    (
        "POST",
        "/v1/enrolments/{unknown}/discharge",
        {"on": "2026-03-02", "reason": "moved"},
        "enrolment_not_found",
    ),
    (
        "POST",
        "/v1/enrolments/{unknown}/assessments",
        {"timepoint": "follow_up", "assessed_on": "2026-03-02", "answers": middling_whoqol()},
        "enrolment_not_found",
    ),
    (
        "POST",
        "/v1/enrolments/{unknown}/sessions",
        {"agent_id": UNKNOWN, "held_on": "2026-03-02", "kind": "edukasi", "attended": True, "minutes": 30},
        "enrolment_not_found",
    ),
    (
        "POST",
        "/v1/clients/{unknown}/follow-ups",
        {"on": "2026-03-02", "status": "abstinent"},
        "client_not_found",
    ),
    ("GET", "/v1/clients/{unknown}", None, "client_not_found"),
    ("GET", "/v1/units/{unknown}/worklist", None, "unit_not_found"),
]


@pytest.mark.parametrize(("method", "path", "body", "code"), NESTED)
async def test_a_route_under_a_parent_that_does_not_exist_is_404(
    rehab: Rehab, method: str, path: str, body: dict[str, Any] | None, code: str
) -> None:
    answer = await rehab.http.request(
        method, path.replace("{unknown}", UNKNOWN), headers=rehab.facilitator, json=body
    )
    assert (answer.status_code, answer.json()["code"]) == (404, code), answer.text
    assert await rehab.outbox() == []
