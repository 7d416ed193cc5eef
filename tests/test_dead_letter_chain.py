"""ARCHITECTURE.md invariant 4, poison: a refused message always leaves a dead letter, whatever
it holds, and the dead letter names the refused event's id and chain only where the message
gives trustworthy ones (EVENTS.md, "Dead letters"); retries back off, doubling to a bound."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest
from faststream.nats import NatsBroker
from system_support import stream_messages

from pulih.contracts import parse_event
from pulih.contracts.events.dead_letters import EventDeadLettered
from pulih.kit.consumers import dead_letter, retry_delay
from pulih.kit.messaging import ensure_regency_stream, make_broker
from pulih.kit.nats_server import NatsServer
from pulih.kit.testing import REGENCY

pytestmark = pytest.mark.system

KNOWN = str(uuid.uuid4())


@pytest.fixture
async def broker(nats_server: NatsServer) -> AsyncIterator[NatsBroker]:
    broker = make_broker(nats_server.url, name="pulih-test-dlq")
    await broker.connect()
    await ensure_regency_stream(broker, REGENCY)
    try:
        yield broker
    finally:
        await broker.stop()


@pytest.mark.parametrize(
    ("payload", "cause", "chain"),
    [
        (b"not json", None, None),
        (b"[1, 2]", None, None),
        (json.dumps({"id": 5}).encode(), None, None),
        (json.dumps({"id": "not-a-uuid", "correlationid": "c-1"}).encode(), None, "c-1"),
        (json.dumps({"id": "z" * 36}).encode(), None, None),
        (json.dumps({"id": KNOWN}).encode(), KNOWN, KNOWN),
        (json.dumps({"id": KNOWN, "correlationid": ""}).encode(), KNOWN, KNOWN),
        (json.dumps({"id": KNOWN, "correlationid": "x" * 201}).encode(), KNOWN, KNOWN),
        (json.dumps({"id": KNOWN, "correlationid": "a\nb"}).encode(), KNOWN, KNOWN),
        (json.dumps({"id": KNOWN, "correlationid": "a"}).encode(), KNOWN, "a"),
        (json.dumps({"id": KNOWN, "correlationid": "x" * 200}).encode(), KNOWN, "x" * 200),
    ],
    ids=[
        "not-json",
        "not-an-object",
        "id-not-text",
        "id-not-uuid",
        "id-36-chars-not-uuid",
        "no-chain",
        "empty-chain",
        "chain-too-long",
        "chain-unprintable",
        "chain-one-char",
        "chain-200",
    ],
)
async def test_every_refused_message_leaves_one_dead_letter_naming_only_trustworthy_ids(
    nats_server: NatsServer, broker: NatsBroker, payload: bytes, cause: str | None, chain: str | None
) -> None:
    letter = await dead_letter(
        broker,
        REGENCY,
        "rehab",
        consumer="rehab.outreach-events",
        subject="ibm.3301.outreach.client_registered",
        payload=payload,
        stream_seq=41,
        attempts=1,
        error="invalid_event",
        reason="test",
    )
    [stored] = await stream_messages(nats_server.url, "ibm.3301.dlq.rehab")
    published = parse_event(stored.data)
    assert letter is not None and published.id == letter.id
    assert published.causationid == cause
    assert published.correlationid == (chain if chain is not None else str(published.id))
    assert isinstance(published.data, EventDeadLettered)
    assert published.data.stream_seq == 41 and published.data.error == "invalid_event"


def test_retries_wait_doubling_from_the_base_up_to_a_minute() -> None:
    assert [retry_delay(a, 1.0) for a in range(1, 9)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert [retry_delay(a, 0.5) for a in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert retry_delay(0, 1.0) == 1.0
    assert retry_delay(100, 1.0) == 60.0
