"""The kit's batch consumer with ``linger``: once it holds an event it waits for the batch to fill
(reporting's consumer, whose recount costs much the same for one event as for hundreds), against a
real nats-server. Events that come one by one within the linger are applied as one batch, in
stream order, once each; a consumer stopped while it lingers applies what it holds first; the
linger stays well under ``ack_wait`` (or JetStream would deliver the events in hand again)."""

from __future__ import annotations

from pathlib import Path

import pytest
from faststream.nats import NatsBroker
from test_batch_consumption import (
    DURABLE,
    SERVICE,
    Consumer,
    Recorder,
    create_stream,
    mixed_events,
    open_store,
    publish,
)

from pulih.kit.batch_consumer import subscribe_batches
from pulih.kit.emitter import Emitter
from pulih.kit.messaging import ensure_regency_stream, make_broker
from pulih.kit.nats_server import NatsServer
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.testing import REGENCY, eventually, make_settings

pytestmark = pytest.mark.system


async def start_lingering(
    tmp_path: Path, nats_url: str, database_url: str, recorder: Recorder, *, linger: float
) -> Consumer:
    settings = make_settings(tmp_path, nats_url=nats_url, PULIH_ACK_WAIT_SECONDS=40)
    runtime = ServiceRuntime(SERVICE, settings, await open_store(database_url), Emitter(REGENCY))
    broker: NatsBroker = make_broker(nats_url, name="linger-test")
    subscribe_batches(
        runtime,
        broker,
        durable=DURABLE,
        subject=f"ibm.{REGENCY}.outreach.>",
        apply=recorder,
        tracks_itself=True,
        batch_size=200,
        linger=linger,
    )
    await broker.connect()
    await ensure_regency_stream(broker, REGENCY)
    await broker.start()
    for batch_consumer in runtime.batch_consumers:
        await batch_consumer.start()
    return Consumer(runtime, broker, recorder, nats_url)


async def test_events_that_come_one_by_one_within_the_linger_are_one_batch(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    await create_stream(nats_server.url)
    consumer = await start_lingering(tmp_path, nats_server.url, database_url, Recorder(True), linger=5.0)
    try:
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
    finally:
        await consumer.stop()


async def test_a_consumer_stopped_while_it_lingers_applies_what_it_holds(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    await create_stream(nats_server.url)
    consumer = await start_lingering(tmp_path, nats_server.url, database_url, Recorder(True), linger=2.0)
    try:
        seqs = await publish(nats_server.url, mixed_events(3))
        batch_consumer = consumer.runtime.batch_consumers[0]
        pulls = batch_consumer._pulls
        assert pulls is not None
        await eventually(lambda: _true(pulls.lingering), timeout=10)
        await batch_consumer.stop()
        assert consumer.recorder.batches == [seqs]
        assert await consumer.count() == 3
        await eventually(lambda: consumer.settled(seqs[-1]), timeout=10)
    finally:
        await consumer.stop()


async def test_the_linger_stays_well_under_ack_wait(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    await create_stream(nats_server.url)
    consumer = await start_lingering(tmp_path, nats_server.url, database_url, Recorder(True), linger=60.0)
    try:
        assert consumer.runtime.batch_consumers[0].linger == 10.0
    finally:
        await consumer.stop()


async def _true(value: bool) -> bool:
    return value
