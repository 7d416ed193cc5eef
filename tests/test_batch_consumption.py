"""The kit's ordered batch consumer against a real nats-server, on SQLite and PostgreSQL.

The harness (the test service, its :class:`~batch_support.Recorder`, :func:`~batch_support.start_consumer`)
is in tests/batch_support.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from batch_support import (
    DLQ,
    DURABLE,
    NIK,
    POISONED,
    SERVICE,
    Consumer,
    Recorder,
    create_stream,
    mixed_events,
    poisoned,
    publish,
    refusing,
    start_consumer,
    stopping,
)
from batch_support import open_store as open_store  # for the modules that import it from here
from nats.js.errors import NotFoundError
from system_support import stream_messages

from pulih.contracts import stream_name, subject_for
from pulih.contracts.events.outreach import ClientErased, ClientRegistered, ConsentRecorded
from pulih.kit.batch_consumer import Received
from pulih.kit.consumers import NotReadyYet
from pulih.kit.nats_server import NatsServer
from pulih.kit.testing import REGENCY, eventually

pytestmark = pytest.mark.system


@pytest.fixture
async def stopped() -> AsyncIterator[list[Consumer]]:
    """Consumers a test started, stopped and closed at its end."""
    async with stopping() as consumers:
        yield consumers


@pytest.mark.slow
@pytest.mark.parametrize("tracks_itself", [False, True], ids=["kit-inbox", "tracks-itself"])
async def test_two_thousand_events_over_several_subjects_are_applied_in_stream_order_once_each(
    tmp_path: Path, nats_server: NatsServer, database_url: str, stopped: list[Consumer], tracks_itself: bool
) -> None:
    await create_stream(nats_server.url)
    events = mixed_events(2000)
    backlog = await publish(nats_server.url, events[:1500])  # waiting when the consumer starts
    consumer = await start_consumer(tmp_path, nats_server.url, database_url, Recorder(tracks_itself))
    stopped.append(consumer)
    live = await publish(nats_server.url, events[1500:1999])
    again = await publish(nats_server.url, [events[700]], msg_id="second-copy")  # past the dedup window
    live += await publish(nats_server.url, events[1999:])
    seqs = backlog + live

    await eventually(consumer.count, until=lambda n: n >= 2000, timeout=60)
    await eventually(lambda: consumer.settled(max(seqs + again)), timeout=20)
    log = await consumer.log()
    assert [seq for seq, _, _ in log] == seqs, "each event once, in stream order; the second copy skipped"
    assert [event_id for _, event_id, _ in log] == [e.id for e in events]
    assert await consumer.count() == 2000
    assert {subject_for(e, REGENCY) for e in events} >= {
        f"ibm.{REGENCY}.outreach.client_registered",
        f"ibm.{REGENCY}.outreach.consent_recorded",
        f"ibm.{REGENCY}.outreach.client_erased",
    }
    # the backlog in full batches; live events as they come (a consumer that keeps up takes what
    # arrived during its last transaction, and waits for no batch to fill: no latency added)
    sizes = [len(batch) for batch in consumer.recorder.batches]
    assert sizes[:7] == [200] * 7 and max(sizes) == 200, f"the backlog in batches: {sizes}"
    assert await stream_messages(nats_server.url, DLQ) == []


async def test_events_of_other_types_are_acked_and_skipped(
    tmp_path: Path, nats_server: NatsServer, database_url: str, stopped: list[Consumer]
) -> None:
    await create_stream(nats_server.url)
    events = mixed_events(60)
    seqs = await publish(nats_server.url, events)
    consumer = await start_consumer(
        tmp_path, nats_server.url, database_url, Recorder(), types={ClientRegistered, ConsentRecorded}
    )
    stopped.append(consumer)
    await eventually(lambda: consumer.settled(seqs[-1]))
    wanted = [
        (seq, e.id) for seq, e in zip(seqs, events, strict=True) if not isinstance(e.data, ClientErased)
    ]
    assert [(seq, event_id) for seq, event_id, _ in await consumer.log()] == wanted
    assert len(wanted) < len(events)


@pytest.mark.parametrize("tracks_itself", [False, True], ids=["kit-inbox", "tracks-itself"])
async def test_a_poison_and_invalid_messages_inside_one_batch_are_dead_lettered_and_the_rest_applied_in_order(
    tmp_path: Path, nats_server: NatsServer, database_url: str, stopped: list[Consumer], tracks_itself: bool
) -> None:
    await create_stream(nats_server.url)
    events = mixed_events(30)
    seqs = await publish(nats_server.url, poisoned(events))
    refuse = refusing(events[5].id, events[20].id)
    consumer = await start_consumer(
        tmp_path, nats_server.url, database_url, Recorder(tracks_itself, on_event=refuse), batch_size=100
    )
    stopped.append(consumer)
    letters = await consumer.dead_letters(4)
    await eventually(lambda: consumer.settled(seqs[-1]))

    by_seq = {letter.data.stream_seq: letter.data for letter in letters}
    assert sorted(by_seq) == [seqs[i] for i in POISONED]
    assert by_seq[seqs[5]].error == "illegal_transition" and by_seq[seqs[5]].attempts == 1
    assert by_seq[seqs[10]].error == "invalid_event" and "JSON" in by_seq[seqs[10]].reason
    assert by_seq[seqs[15]].error == "invalid_event"
    assert by_seq[seqs[15]].reason.startswith("data.nik: identity keys are refused")
    assert NIK not in by_seq[seqs[15]].payload
    assert by_seq[seqs[20]].error == "out_of_range" and "a domain rule refuses it" in by_seq[seqs[20]].reason
    assert {letter.data.consumer for letter in letters} == {f"{SERVICE}.{DURABLE}"}
    assert consumer.recorder.batches[0] == [s for i, s in enumerate(seqs) if i not in (10, 15)], (
        "the poison came inside one batch with the others"
    )
    kept = [i for i in range(30) if i not in POISONED]
    assert [(seq, event_id) for seq, event_id, _ in await consumer.log()] == [
        (seqs[i], events[i].id) for i in kept
    ]
    assert await consumer.count() == len(kept)
    nc = await nats.connect(nats_server.url)
    try:
        with pytest.raises(NotFoundError):  # the message that held a NIK is gone from the stream
            await nc.jetstream().get_msg(stream_name(REGENCY), seqs[15])
    finally:
        await nc.close()


@pytest.mark.parametrize("failure", ["transient", "persistent", "not-ready"])
async def test_an_event_that_fails_inside_a_batch_is_retried_before_any_later_event(
    tmp_path: Path, nats_server: NatsServer, database_url: str, stopped: list[Consumer], failure: str
) -> None:
    # Twenty events, ten a batch: the fifth fails. Nothing after it is applied before it is
    # settled (applied on a later attempt, or dead-lettered after max_deliver=3), not even the
    # second batch, which a nack with a delay would let overtake it.
    await create_stream(nats_server.url)
    events = mixed_events(20)
    seqs = await publish(nats_server.url, events)
    failing = events[4].id

    def fail(received: Received) -> None:
        if received.event.id != failing:
            return
        if failure == "not-ready":
            raise NotReadyYet("what it builds on has not arrived")
        if failure == "persistent" or received.attempt == 1:
            raise RuntimeError("a bug in the projection")

    consumer = await start_consumer(
        tmp_path,
        nats_server.url,
        database_url,
        Recorder(on_event=fail),
        batch_size=10,
        PULIH_ACK_WAIT_SECONDS=1,
    )
    stopped.append(consumer)
    await eventually(lambda: consumer.settled(seqs[-1]), timeout=30)
    log = await consumer.log()
    if failure == "transient":
        assert [seq for seq, _, _ in log] == seqs
        assert [attempt for seq, _, attempt in log if seq == seqs[4]] == [2]
        assert await stream_messages(nats_server.url, DLQ) == []
    else:
        assert [seq for seq, _, _ in log] == seqs[:4] + seqs[5:]
        [letter] = await consumer.dead_letters(1)
        assert letter.data.stream_seq == seqs[4] and letter.data.attempts == 3
        assert letter.data.error == ("not_ready" if failure == "not-ready" else "handler_failed")
    assert {attempt for seq, _, attempt in log if seq != seqs[4]} == {1}
    assert await consumer.count() == len(log)


async def test_a_deleted_durable_is_declared_again_not_taken_for_a_quiet_stream(
    tmp_path: Path,
    nats_server: NatsServer,
    database_url: str,
    stopped: list[Consumer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await create_stream(nats_server.url)
    consumer = await start_consumer(tmp_path, nats_server.url, database_url, Recorder())
    stopped.append(consumer)
    first = await publish(nats_server.url, mixed_events(3))
    await eventually(lambda: consumer.settled(first[-1]))
    nc = await nats.connect(nats_server.url)
    try:
        await nc.jetstream().delete_consumer(stream_name(REGENCY), f"{SERVICE}-{DURABLE}")
    finally:
        await nc.close()
    await eventually(lambda: asyncio.sleep(0.1, caplog.text), until=lambda text: "fetch failed" in text)
    later = await publish(nats_server.url, mixed_events(2))
    await eventually(lambda: consumer.settled(later[-1]))
    # declared again from the stream's start: the inbox skips the three already applied
    assert [seq for seq, _, _ in await consumer.log()] == first + later
    assert caplog.text.count("fetch failed") <= 3, "refusals are waited on, not retried in a tight loop"
