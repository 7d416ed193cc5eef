"""A batch consumer whose store fails in the middle of a batch: it pauses, spends no attempt,
dead-letters nothing, keeps its batch (in-progress acks) and catches up once the store answers.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import nats
import pytest
from batch_support import (
    DLQ,
    DURABLE,
    SERVICE,
    Consumer,
    Recorder,
    create_stream,
    mixed_events,
    open_store,
    publish,
    start_consumer,
)
from system_support import stream_messages
from test_consumer_store_faults import StoreFault

from pulih.contracts import CloudEvent, stream_name
from pulih.kit.batch_consumer import Received
from pulih.kit.nats_server import NatsServer
from pulih.kit.testing import REGENCY, eventually

pytestmark = pytest.mark.system


@pytest.mark.parametrize("tracks_itself", [False, True], ids=["kit-inbox", "tracks-itself"])
async def test_a_store_that_fails_mid_batch_pauses_the_consumer_and_loses_nothing(
    tmp_path: Path, nats_server: NatsServer, database_url: str, tracks_itself: bool
) -> None:
    await create_stream(nats_server.url)
    events = mixed_events(300)
    seqs = await publish(nats_server.url, events[:200])
    store = await open_store(database_url)
    fault = StoreFault(store)

    def break_the_store(received: Received) -> None:
        # the disk fails while the second batch is being written: every later write is refused
        if received.stream_seq == seqs[130] and not fault.refused:
            fault.active = True

    # ack_wait 1 s and an outage of several: only in-progress acks keep the batch from coming back
    consumer = await start_consumer(
        tmp_path,
        nats_server.url,
        store,
        Recorder(tracks_itself, on_event=break_the_store),
        batch_size=100,
        PULIH_ACK_WAIT_SECONDS=1,
        PULIH_STORE_RETRY_MAX_SECONDS=0.3,
    )
    try:
        await _outage_then_catch_up(consumer, fault, seqs, events)
    finally:
        await consumer.stop()


async def _outage_then_catch_up(
    consumer: Consumer, fault: StoreFault, seqs: list[int], events: list[CloudEvent[Any]]
) -> None:
    nats_url = consumer.nats_url
    runtime = consumer.runtime

    async def paused() -> set[str]:
        return set(runtime.paused_consumers)

    assert await eventually(paused, until=bool) == {"reporting.projection"}
    assert [seq for seq, _, _ in await consumer.log()] == seqs[:100], (
        "the first batch, not a part of the second"
    )
    seqs += await publish(nats_url, events[200:])  # arriving during the outage
    outage_started = time.monotonic()
    # a second instance of the durable, idle: a batch given back (ack_wait passed with no
    # in-progress ack) would reach it
    idle = await nats.connect(nats_url)
    try:
        other = await idle.jetstream().pull_subscribe_bind(
            durable=f"{SERVICE}-{DURABLE}", stream=stream_name(REGENCY)
        )
        redelivered = []
        while time.monotonic() - outage_started < 3.5:
            with contextlib.suppress(TimeoutError):
                redelivered += await other.fetch(10, timeout=0.5)
    finally:
        await idle.close()
    assert redelivered == [], "the paused consumer kept its batch"
    refused = fault.refused
    assert refused >= 5, "the paused consumer keeps probing the store"
    assert await paused() == {"reporting.projection"}
    assert await stream_messages(nats_url, DLQ) == [], "nothing dead-lettered"
    fault.active = False

    await eventually(lambda: consumer.settled(seqs[-1]), timeout=30)
    log = await consumer.log()
    assert [seq for seq, _, _ in log] == seqs, "caught up: every event once, in stream order"
    assert {attempt for _, _, attempt in log} == {1}, "the outage spent no delivery attempt"
    assert await consumer.count() == len(seqs)
    assert await paused() == set()
    assert await stream_messages(nats_url, DLQ) == [], "nothing dead-lettered"
