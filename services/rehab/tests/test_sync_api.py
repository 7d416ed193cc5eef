"""``POST /v1/sync``: a device's offline sessions and follow-ups for a unit, one answer per item.

Every test checks the outbox too: exactly one event per applied item, none for the others, and
nothing new when the same request comes again.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from rehab_factories import MONDAY, Client, Rehab
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from pulih.kit.auth import Role
from pulih.kit.errors import Invalid
from pulih.kit.testing import auth
from pulih.rehab.handlers import sync as sync_handlers
from pulih.rehab.handlers.sync import CHUNK_ITEMS
from pulih.rehab.store import FollowUp, SessionRecord
from pulih.rehab.sync_bodies import MAX_ITEMS


def session_item(
    c: Client, enrollment_id: str, key: str, held_on: date = MONDAY, **changes: Any
) -> dict[str, Any]:
    return {
        "type": "session",
        "key": key,
        "enrollment_id": enrollment_id,
        "session": {
            "agent_id": c.agent_id,
            "held_on": held_on.isoformat(),
            "kind": "konseling",
            "attended": True,
            "minutes": 60,
        }
        | changes,
    }


def follow_up_item(c: Client, key: str, on: str = "2026-03-02") -> dict[str, Any]:
    return {
        "type": "follow_up",
        "key": key,
        "client_id": c.client_id,
        "follow_up": {"on": on, "status": "abstinent"},
    }


async def sync(
    rehab: Rehab, unit_id: str, items: list[dict[str, Any]], headers: dict[str, str]
) -> dict[str, Any]:
    r = await rehab.http.post("/v1/sync", headers=headers, json={"unit_id": unit_id, "items": items})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def count(rehab: Rehab, model: object) -> int:
    async with rehab.runtime.database.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[arg-type]


async def test_mixed_items_are_answered_one_by_one_and_a_replay_changes_nothing(rehab: Rehab) -> None:
    unit = uuid.uuid4()
    c = await rehab.screened_client(unit_id=unit)
    d = await rehab.screened_client(unit_id=unit)
    enrollment_c = await rehab.enrolled(c)
    enrollment_d = await rehab.enrolled(d)
    elsewhere = await rehab.screened_client()  # another unit's client
    enrollment_elsewhere = await rehab.enrolled(elsewhere)
    before = len(await rehab.outbox())
    items = [
        session_item(c, enrollment_c, "k0"),
        session_item(d, enrollment_d, "k1"),
        session_item(c, enrollment_c, "k0"),  # the same key and item again: applied once
        session_item(c, enrollment_c, "k0", minutes=45),  # the same key, another item
        session_item(c, enrollment_c, "k4", minutes=6000),  # no item's shape
        session_item(c, str(uuid.uuid4()), "k5"),  # no such enrolment
        session_item(c, enrollment_c, "k6", held_on=date(2026, 3, 9)),  # in the future
        follow_up_item(d, "k7"),  # d was never discharged
        session_item(elsewhere, enrollment_elsewhere, "k8"),  # another unit's
        {"type": "visit", "key": "k9"},
        session_item(d, enrollment_d, "k10", minutes=30),
    ]
    answer = await sync(rehab, str(unit), items, rehab.facilitator)

    summary = [(a["index"], a["key"], a["outcome"], a["status"]) for a in answer["items"]]
    assert summary == [
        (0, "k0", "applied", 201),
        (1, "k1", "applied", 201),
        (2, "k0", "already_applied", 201),
        (3, "k0", "refused", 409),
        (4, "k4", "refused", 422),
        (5, "k5", "refused", 404),
        (6, "k6", "refused", 422),
        (7, "k7", "refused", 409),
        (8, "k8", "refused", 422),
        (9, "k9", "refused", 422),
        (10, "k10", "applied", 201),
    ]
    errors = {a["index"]: a["error"] for a in answer["items"] if a["error"]}
    assert {i: (e["code"], e["field"]) for i, e in errors.items()} == {
        3: ("idempotency_key_reused", "items[3].key"),
        4: ("invalid", "items[4].session.minutes"),
        5: ("enrolment_not_found", "items[5].enrollment_id"),
        6: ("date_in_future", "items[6].session.held_on"),
        7: ("not_discharged", None),
        8: ("other_unit_item", "items[8].enrollment_id"),
        9: ("invalid", "items[9].type"),
    }
    assert (answer["applied"], answer["already_applied"], answer["refused"]) == (3, 1, 7)
    first = answer["items"][0]
    assert first["answer"]["enrollment_id"] == enrollment_c and first["answer"]["phase"] == "penerimaan_awal"
    assert answer["items"][2]["answer"] == first["answer"] and answer["items"][2]["events"] == []

    # exactly one SessionHeld per applied item, the one each answer names, and nothing else
    envelopes = (await rehab.envelopes())[before:]
    applied = [a for a in answer["items"] if a["outcome"] == "applied"]
    assert [e["type"].split(".")[2] for e in envelopes] == ["SessionHeld"] * 3
    assert [e["id"] for e in envelopes] == [a["events"][0] for a in applied]
    assert [e["data"]["session_id"] for e in envelopes] == [a["answer"]["session_id"] for a in applied]
    assert await count(rehab, SessionRecord) == 3

    again = await sync(rehab, str(unit), items, rehab.facilitator)
    assert [a["outcome"] for a in again["items"]] == [
        "already_applied" if a["outcome"] != "refused" else "refused" for a in answer["items"]
    ]
    assert [a["answer"] for a in again["items"] if a["outcome"] == "already_applied"][:2] == [
        a["answer"] for a in applied[:2]
    ]
    assert len(await rehab.envelopes()) == before + 3 and await count(rehab, SessionRecord) == 3


async def test_an_agent_syncs_their_own_unit_only(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    outsider = auth(Role.AGENT, unit_id=uuid.uuid4(), sub=str(uuid.uuid4()))
    r = await rehab.http.post(
        "/v1/sync",
        headers=outsider,
        json={"unit_id": c.unit_id, "items": [session_item(c, enrollment_id, "a")]},
    )
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (403, "other_unit", "unit_id")
    clinic = auth(Role.CLINIC, clinic_id="klinik-pratama-cilacap")
    r = await rehab.http.post("/v1/sync", headers=clinic, json={"unit_id": c.unit_id, "items": []})
    assert (r.status_code, r.json()["code"]) == (403, "forbidden_role")

    answer = await sync(rehab, c.unit_id, [session_item(c, enrollment_id, "a")], c.agent)
    assert answer["applied"] == 1 and await count(rehab, SessionRecord) == 1


async def test_a_follow_up_is_synced_after_the_discharge(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    r = await rehab.http.post(
        f"/v1/enrolments/{enrollment_id}/discharge",
        headers=c.agent,
        json={"on": "2026-03-02", "reason": "moved"},
    )
    assert r.status_code == 200, r.text
    answer = await sync(
        rehab, c.unit_id, [follow_up_item(c, "f1"), follow_up_item(c, "f2", "2026-03-01")], c.agent
    )
    first, early = answer["items"]
    assert first["outcome"] == "applied" and first["answer"]["status"] == "abstinent"
    assert (early["outcome"], early["error"]["code"], early["error"]["field"]) == (
        "refused",
        "date_before_discharge",
        "items[1].follow_up.on",
    )
    names = await rehab.outbox_names()
    assert names.count("FollowUpRecorded") == 1 and await count(rehab, FollowUp) >= 1


async def test_too_many_items_or_none_are_refused_whole(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    before = await rehab.outbox()
    items = [session_item(c, enrollment_id, f"k{i}") for i in range(MAX_ITEMS + 1)]
    for too_many in (items, []):
        r = await rehab.http.post("/v1/sync", headers=c.agent, json={"unit_id": c.unit_id, "items": too_many})
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "invalid", "items")
    assert await rehab.outbox() == before and await count(rehab, SessionRecord) == 0


async def test_a_whole_request_sent_again_with_its_idempotency_key_gets_the_first_answer(
    rehab: Rehab,
) -> None:
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    request = {"unit_id": c.unit_id, "items": [session_item(c, enrollment_id, "s1")]}
    headers = {**c.agent, "Idempotency-Key": "batch-2026-03-02"}
    first = await rehab.http.post("/v1/sync", headers=headers, json=request)
    assert first.status_code == 200 and first.json()["applied"] == 1
    outbox = await rehab.outbox()
    again = await rehab.http.post("/v1/sync", headers=headers, json=request)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()  # "applied", as it was answered the first time
    assert await rehab.outbox() == outbox and await count(rehab, SessionRecord) == 1


async def test_a_store_fault_midway_keeps_the_chunks_before_and_undoes_the_whole_chunk_it_hit(
    rehab: Rehab, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    before = len(await rehab.outbox())
    items = [session_item(c, enrollment_id, f"k{i}", minutes=10 + i) for i in range(CHUNK_ITEMS * 2 + 10)]
    failing_at = CHUNK_ITEMS + 5  # inside the second chunk, after five of its items were written
    apply = sync_handlers._apply

    async def store_fails(*args: Any) -> None:
        if args[4].key == f"k{failing_at}":  # (tx, programme, principal, request, item, today)
            raise OperationalError("INSERT INTO sessions", {}, Exception("disk I/O error"))
        await apply(*args)

    monkeypatch.setattr(sync_handlers, "_apply", store_fails)
    r = await rehab.http.post("/v1/sync", headers=c.agent, json={"unit_id": c.unit_id, "items": items})
    assert r.status_code == 503, r.text
    # the first chunk is committed, events with it; nothing of the second one is
    assert await count(rehab, SessionRecord) == CHUNK_ITEMS
    assert len(await rehab.outbox()) == before + CHUNK_ITEMS

    monkeypatch.setattr(sync_handlers, "_apply", apply)
    answer = await sync(rehab, c.unit_id, items, c.agent)
    outcomes = [a["outcome"] for a in answer["items"]]
    assert outcomes == ["already_applied"] * CHUNK_ITEMS + ["applied"] * (len(items) - CHUNK_ITEMS)
    assert await count(rehab, SessionRecord) == len(items)
    envelopes = (await rehab.envelopes())[before:]
    assert [e["data"]["minutes"] for e in envelopes] == [10 + i for i in range(len(items))]


async def test_an_item_refused_after_it_wrote_is_undone_to_its_savepoint_and_the_chunk_commits(
    rehab: Rehab, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    before = len(await rehab.outbox())
    items = [session_item(c, enrollment_id, f"k{i}", minutes=10 + i) for i in range(5)]
    apply = sync_handlers._apply

    async def refused_late(*args: Any) -> None:
        await apply(*args)  # the session, its event and the timeline written
        if args[4].key == "k2":
            raise Invalid("late_rule", "a rule that refuses the item once it has written", "minutes")

    monkeypatch.setattr(sync_handlers, "_apply", refused_late)
    answer = await sync(rehab, c.unit_id, items, c.agent)
    assert [a["outcome"] for a in answer["items"]] == ["applied"] * 2 + ["refused"] + ["applied"] * 2
    assert answer["items"][2]["error"]["field"] == "items[2].session.minutes"
    envelopes = (await rehab.envelopes())[before:]
    assert [e["data"]["minutes"] for e in envelopes] == [10, 11, 13, 14]
    async with rehab.runtime.database.sessions() as s:
        minutes = sorted((await s.scalars(select(SessionRecord.minutes))).all())
    assert minutes == [10, 11, 13, 14]
