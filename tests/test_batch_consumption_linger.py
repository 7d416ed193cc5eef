"""The kit's batch consumer with ``linger``: once it holds an event it waits for the batch to fill
(reporting's consumer, whose recount costs much the same for one event as for hundreds), against a
real nats-server. Events that come one by one within the linger are applied as one batch, in
stream order, once each; a consumer stopped while it lingers applies what it holds first; the
linger stays well under ``ack_wait`` (or JetStream would deliver the events in hand again)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from batch_support import Consumer, Recorder, create_stream, mixed_events, publish, start_consumer

from pulih.kit.nats_server import NatsServer
from pulih.kit.testing import eventually

pytestmark = pytest.mark.system


@asynccontextmanager
async def lingering(
    tmp_path: Path, nats_url: str, database_url: str, *, linger: float
) -> AsyncIterator[Consumer]:
    """A consumer whose batches wait up to ``linger`` seconds to fill (a recorder that tracks
    itself, ``ack_wait`` 40 s), of the regency's stream, declared first; stopped on exit."""
    await create_stream(nats_url)
    async with await start_consumer(
        tmp_path, nats_url, database_url, Recorder(True), linger=linger, PULIH_ACK_WAIT_SECONDS=40
    ) as consumer:
        yield consumer


async def test_events_that_come_one_by_one_within_the_linger_are_one_batch(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    async with lingering(tmp_path, nats_server.url, database_url, linger=5.0) as consumer:
        events = mixed_events(12)
        seqs = [seq for event in events for seq in await publish(nats_server.url, [event])]
        await eventually(consumer.count, until=lambda n: n >= len(events), timeout=30)
        await eventually(lambda: consumer.settled(seqs[-1]), timeout=20)
        assert consumer.recorder.batches == [seqs], "one batch, in stream order"
        assert [event_id for _, event_id, _ in await consumer.log()] == [e.id for e in events]
        # a full batch is applied without waiting out the linger
        more = await publish(nats_server.url, mixed_events(200))
        await eventually(consumer.count, until=lambda n: n >= len(events) + 200, timeout=4.0)
        assert consumer.recorder.batches[1] == more


async def test_a_consumer_stopped_while_it_lingers_applies_what_it_holds(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    async with lingering(tmp_path, nats_server.url, database_url, linger=2.0) as consumer:
        seqs = await publish(nats_server.url, mixed_events(3))
        batch_consumer = consumer.runtime.batch_consumers[0]
        pulls = batch_consumer._pulls
        assert pulls is not None
        await eventually(lambda: _true(pulls.lingering), timeout=10)
        await batch_consumer.stop()
        assert consumer.recorder.batches == [seqs]
        assert await consumer.count() == 3
        await eventually(lambda: consumer.settled(seqs[-1]), timeout=10)


async def test_the_linger_stays_well_under_ack_wait(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    async with lingering(tmp_path, nats_server.url, database_url, linger=60.0) as consumer:
        assert consumer.runtime.batch_consumers[0].linger == 10.0


async def _true(value: bool) -> bool:
    return value
