"""The national view's consumer of ``NATIONAL`` against a real nats-server, fed what a careless or
hostile regency could put on its aggregate subject: malformed JSON, a negative count, an identity
key, another regency's figures, an event that is not an aggregate at all. Each is dead-lettered
on ``national.dlq.reporting`` with its reason and counts nowhere; the aggregates around them are
counted; a replay of the whole stream (the durable deleted) changes no figure and adds no letter.

One plain server stands in for the hub: ``NATIONAL`` takes the aggregate subjects directly here
(at the hub it sources them from the regencies; the consumer cannot tell)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import nats
import pytest
from national_seed import aggregate
from nats.js.api import StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from pulih.contracts import new_event
from pulih.contracts.events.outreach import ClientScreened
from pulih.kit.auth import NATIONAL_SCOPE, issue_token
from pulih.kit.federation import names
from pulih.kit.nats_server import NatsServer
from pulih.kit.testing import JWT_SECRET, eventually, make_settings, serve
from pulih.reporting.app import build

pytestmark = [pytest.mark.system, pytest.mark.slow]

HEADERS = {
    "Authorization": f"Bearer {issue_token(JWT_SECRET, sub='bnn', role='national', regency=NATIONAL_SCOPE)}"
}


def _sample_screening() -> ClientScreened:
    """A real ``ClientScreened`` (contracts' samples), as a regency's outreach would publish it."""
    path = Path(__file__).resolve().parents[3] / "contracts" / "tests" / "event_samples.py"
    spec = importlib.util.spec_from_file_location("event_samples", path)
    assert spec is not None and spec.loader is not None
    module = sys.modules.setdefault("event_samples", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    screening = module.sample(ClientScreened)
    assert isinstance(screening, ClientScreened)
    return screening


def envelope(code: str, **data: Any) -> dict[str, Any]:
    """An aggregate of ``code`` for 2026-10 as JSON, to be spoiled by the test."""
    body: dict[str, Any] = json.loads(new_event(aggregate(code, "2026-10", **data), regency=code).to_json())
    return body


async def drained(js: JetStreamContext, published: int) -> bool:
    """Whether the national durable has been delivered and has settled every message."""
    try:
        info = await js.consumer_info(names.NATIONAL_STREAM, names.NATIONAL_DURABLE)
    except NotFoundError:
        return False
    return info.delivered.stream_seq >= published and info.num_ack_pending == 0


async def letters(js: JetStreamContext) -> list[tuple[str, str, str]]:
    """(subject, envelope regency, error) of every dead letter in ``NATIONAL_DLQ``."""
    count = (await js.stream_info(names.NATIONAL_DLQ_STREAM)).state.messages
    found = []
    for seq in range(1, count + 1):
        message = await js.get_msg(names.NATIONAL_DLQ_STREAM, seq)
        body = json.loads(message.data or b"{}")
        found.append((message.subject, body["regency"], body["data"]["error"]))
    return found


async def test_what_is_not_a_regencys_own_aggregate_is_dead_lettered_and_the_rest_counted(
    tmp_path: Path, database_url: str, nats_server: NatsServer
) -> None:
    negative = envelope("3301", revision=3)
    negative["data"]["indicators"]["dropouts"] = -5
    identity = envelope("3303")
    identity["data"]["nik"] = "3301010101010001"
    forged = new_event(aggregate("3302", "2026-10", revision=9, base=1000), regency="3302")
    screening = new_event(_sample_screening(), regency="3301")
    extra = envelope("7471", base=30)
    extra["data"]["comment"] = "a field of a later version"
    extra["dataschema"] = "https://example.org/later"
    messages: list[tuple[str, bytes]] = [
        ("3301", b"{not json"),
        ("3301", json.dumps(negative).encode()),
        ("3303", json.dumps(identity).encode()),
        ("3301", forged.to_json()),
        ("3301", screening.to_json()),
        ("7471", json.dumps(extra).encode()),
        ("3301", new_event(aggregate("3301", "2026-10", base=10), regency="3301").to_json()),
    ]
    connection = await nats.connect(nats_server.url)
    try:
        js = connection.jetstream()
        await js.add_stream(StreamConfig(name=names.NATIONAL_STREAM, subjects=[names.NATIONAL_FILTER]))
        await js.add_stream(
            StreamConfig(name=names.NATIONAL_DLQ_STREAM, subjects=[names.NATIONAL_DLQ_SUBJECTS])
        )
        for code, body in messages:
            await js.publish(names.aggregate_subject(code), body)
        settings = make_settings(
            tmp_path,
            nats_url=nats_server.url,
            database_url=database_url,
            PULIH_REPORTING_MODE="national",
            PULIH_CLOCK="manual",
            PULIH_CLOCK_START="2026-11-05",
        )
        expected_letters = [
            (names.NATIONAL_DLQ_REPORTING, "3301", "invalid_event"),  # not JSON
            (names.NATIONAL_DLQ_REPORTING, "3301", "invalid_event"),  # a negative count
            (names.NATIONAL_DLQ_REPORTING, "3303", "invalid_event"),  # an identity key
            (names.NATIONAL_DLQ_REPORTING, "3301", "forged_regency"),
            (names.NATIONAL_DLQ_REPORTING, "3301", "not_an_aggregate"),
        ]
        for run in ("first", "replay"):
            async with serve(build(settings)) as http:
                await eventually(lambda: drained(js, len(messages)), timeout=30)
                answer = await http.get(
                    "/v1/national/indicators",
                    params={"level": "regency", "from": "2026-10", "to": "2026-10", "indicator": "dropouts"},
                    headers=HEADERS,
                )
                assert answer.status_code == 200, answer.text
                assert [(r["org_unit"], r["value"], r["exact"]) for r in answer.json()["rows"]] == [
                    ("3301", 10, True),
                    ("7471", 30, True),  # fields it does not know are ignored (tolerant reader)
                ], run
                assert await letters(js) == expected_letters, run
            # the service stopped; its durable deleted: the next start reads NATIONAL from the start
            await js.delete_consumer(names.NATIONAL_STREAM, names.NATIONAL_DURABLE)
    finally:
        await connection.close()
