"""Promises of the kit's batch consumer that the other batch tests did not hold it to (the
mutation analysis of its ``consumers`` scope, tests/MUTATION.md).

- **Savepoints**: an event whose handler fails after writing, found while the batch is applied
  with a savepoint around each event, leaves none of its writes; and a batch whose transaction
  fails after some savepoints were released (a store fault) commits none of their events (on
  SQLite a savepoint outside a transaction opens one of its own, and releasing it commits), and
  applies them again in stream order.
- **Not ready**: an event that is not applicable yet is tried again no sooner than ``ack_wait``
  (kept in hand in an ``apply`` batch, given back with that delay by handlers): what it builds
  on may be held by a consumer that died with it unacked. While the store cannot commit, it
  spends no attempt: the consumer pauses; nor while another consumer of the service is paused
  (what it builds on may wait there).
- **A store fault** raised by a handler (a write refused once: a lock, a broken connection) is
  not its event's: the batch is applied again in stream order, not with that event set aside;
  nor is an error of unknown kind raised while the store cannot commit, even when the store
  fails only after the rest of the batch committed.
- **Order**: the durable holds at most one batch (``max_ack_pending`` = the batch size), a new
  one and one that ran before with another batch size alike.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import nats
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session
from system_support import stream_messages
from test_batch_consumption import (
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
from test_consumer_store_faults import StoreFault

from pulih.contracts import CloudEvent, stream_name
from pulih.kit.batch_consumer import Received
from pulih.kit.consumers import Delivery, NotReadyYet, Rejected
from pulih.kit.nats_server import NatsServer
from pulih.kit.testing import REGENCY, eventually
from pulih.kit.unit_of_work import UnitOfWork

pytestmark = pytest.mark.system


async def max_ack_pending(nats_url: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().consumer_info(stream_name(REGENCY), f"{SERVICE}-{DURABLE}")
        return int(info.config.max_ack_pending or 0)
    finally:
        await nc.close()


async def test_the_durable_holds_one_batch_at_most_new_or_declared_again(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    await create_stream(nats_server.url)
    consumers: list[Consumer] = []
    try:
        consumers.append(
            await start_consumer(tmp_path, nats_server.url, database_url, Recorder(), batch_size=7)
        )
        assert await max_ack_pending(nats_server.url) == 7
        await consumers.pop().stop()
        # the same durable, started again with another batch size (as after a change of
        # PULIH_CONSUMER_BATCH_SIZE), ack_wait and max_deliver unchanged
        consumers.append(
            await start_consumer(tmp_path, nats_server.url, database_url, Recorder(), batch_size=5)
        )
        assert await max_ack_pending(nats_server.url) == 5
    finally:
        for consumer in consumers:
            await consumer.stop()


async def test_a_handler_that_fails_after_writing_leaves_nothing_and_a_failed_batch_commits_nothing(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    await create_stream(nats_server.url)
    events = mixed_events(5)
    seqs = await publish(nats_server.url, events)
    poisons = {events[0].id, events[2].id}  # the first found without savepoints, the second with
    store_failed: list[int] = []

    async def after_its_effect(_: UnitOfWork, event: CloudEvent[Any], delivery: Delivery) -> None:
        if event.id in poisons:
            raise Rejected("illegal_transition", "refused after writing")
        if event.id == events[3].id and not store_failed:  # once, after events[1] was released
            store_failed.append(delivery.stream_seq)
            raise sa_exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

    consumer = await start_consumer(
        tmp_path, nats_server.url, database_url, Recorder(then=after_its_effect), handlers=True
    )
    try:
        await consumer.dead_letters(2)
        await eventually(lambda: consumer.settled(seqs[-1]))
        assert store_failed, "the store fault was met"
        assert [seq for seq, _, _ in await consumer.log()] == [seqs[1], seqs[3], seqs[4]]
        assert await consumer.count() == 3
    finally:
        await consumer.stop()


@pytest.mark.parametrize("handlers", [False, True], ids=["apply", "handlers"])
async def test_an_event_not_ready_is_tried_again_no_sooner_than_ack_wait(
    tmp_path: Path, nats_server: NatsServer, database_url: str, handlers: bool
) -> None:
    await create_stream(nats_server.url)
    events = mixed_events(4)
    seqs = await publish(nats_server.url, events)
    tries: list[tuple[int, float]] = []

    def not_ready_at_first(received: Received) -> None:
        if received.event.id == events[1].id:
            tries.append((received.attempt, time.monotonic()))
            if received.attempt == 1:
                raise NotReadyYet("what it builds on has not arrived")

    consumer = await start_consumer(
        tmp_path,
        nats_server.url,
        database_url,
        Recorder(on_event=not_ready_at_first),
        handlers=handlers,
        PULIH_ACK_WAIT_SECONDS=1,
    )
    try:
        await eventually(lambda: consumer.settled(seqs[-1]), timeout=15)
        in_order = [seqs[0], *seqs[2:], seqs[1]] if handlers else seqs  # handlers: the rest go on
        assert [seq for seq, _, _ in await consumer.log()] == in_order
        last_first = max(at for attempt, at in tries if attempt == 1)
        [(_, second)] = [(attempt, at) for attempt, at in tries if attempt == 2]
        assert second - last_first >= 0.9, "ack_wait (1 s) between two tries of an event not ready"
    finally:
        await consumer.stop()


async def test_an_event_not_ready_while_the_store_fails_spends_no_attempt(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    await create_stream(nats_server.url)
    [only] = mixed_events(1)
    seqs = await publish(nats_server.url, [only])
    store = await open_store(database_url)
    fault = StoreFault(store)

    def not_ready_while_the_store_fails(received: Received) -> None:
        if received.attempt == 1 and not fault.refused:
            fault.active = True  # the disk fails as the event turns out not ready
        if fault.active:
            raise NotReadyYet("what it builds on is in a store that cannot commit")

    consumer = await start_consumer(
        tmp_path,
        nats_server.url,
        store,
        Recorder(on_event=not_ready_while_the_store_fails),
        PULIH_ACK_WAIT_SECONDS=1,
        PULIH_STORE_RETRY_MAX_SECONDS=0.2,
    )
    try:
        runtime = consumer.runtime
        assert await eventually(lambda: _now(set(runtime.paused_consumers)), until=bool)
        # longer than max_deliver (3) tries ack_wait (1 s) apart would take
        await eventually(lambda: _now(fault.refused), until=lambda n: n >= 12, timeout=15)
        assert await stream_messages(nats_server.url, DLQ) == [], "nothing dead-lettered"
        fault.active = False
        await eventually(lambda: consumer.settled(seqs[-1]), timeout=15)
        assert [(seq, attempt) for seq, _, attempt in await consumer.log()] == [(seqs[0], 1)]
        assert await stream_messages(nats_server.url, DLQ) == []
    finally:
        await consumer.stop()


async def _now(value: Any) -> Any:
    return value


async def test_an_event_not_ready_while_a_sibling_consumer_is_paused_is_kept_in_hand(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    await create_stream(nats_server.url)
    sibling = f"{SERVICE}.sibling"
    tries: list[int] = []
    consumer: Consumer | None = None

    def not_ready_while_the_sibling_is_paused(received: Received) -> None:
        assert consumer is not None
        if sibling in consumer.runtime.paused_consumers:
            tries.append(received.attempt)
            raise NotReadyYet("what it builds on waits in the paused sibling")

    consumer = await start_consumer(
        tmp_path,
        nats_server.url,
        database_url,
        Recorder(on_event=not_ready_while_the_sibling_is_paused),
        handlers=True,
        PULIH_ACK_WAIT_SECONDS=1,
        PULIH_STORE_RETRY_MAX_SECONDS=0.2,
    )
    try:
        consumer.runtime.paused_consumers.add(sibling)  # its store fails, say
        seqs = await publish(nats_server.url, mixed_events(1))
        # more tries than max_deliver (3) deliveries ack_wait (1 s) apart would give
        await eventually(lambda: _now(len(tries)), until=lambda n: n >= 6)
        assert set(tries) == {1}, "kept in hand: no delivery attempt spent"
        consumer.runtime.paused_consumers.discard(sibling)
        await eventually(lambda: consumer.settled(seqs[-1]), timeout=15)
        assert [(seq, attempt) for seq, _, attempt in await consumer.log()] == [(seqs[0], 1)]
        assert await stream_messages(nats_server.url, DLQ) == []
    finally:
        await consumer.stop()


async def test_a_store_fault_raised_in_a_handler_applies_the_batch_again_in_order(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    await create_stream(nats_server.url)
    events = mixed_events(4)
    seqs = await publish(nats_server.url, events)
    refused: list[int] = []

    async def locked_once(_: UnitOfWork, event: CloudEvent[Any], delivery: Delivery) -> None:
        if event.id == events[1].id and not refused:
            refused.append(delivery.stream_seq)
            raise sa_exc.OperationalError("INSERT", {}, Exception("database is locked"))

    consumer = await start_consumer(
        tmp_path, nats_server.url, database_url, Recorder(then=locked_once), handlers=True
    )
    try:
        await eventually(lambda: consumer.settled(seqs[-1]))
        assert refused == [seqs[1]]
        assert [(seq, attempt) for seq, _, attempt in await consumer.log()] == [(s, 1) for s in seqs]
    finally:
        await consumer.stop()


async def test_an_unknown_error_while_the_store_fails_is_the_store_s_and_spends_no_attempt(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    await create_stream(nats_server.url)
    events = mixed_events(3)
    seqs = await publish(nats_server.url, events)
    store = await open_store(database_url)
    fault = StoreFault(store)

    def unknown_error_as_the_store_fails(received: Received) -> None:
        if received.event.id == events[1].id and (fault.active or not fault.refused):
            fault.active = True
            raise RuntimeError("the driver's own error, of no kind the kit knows")

    consumer = await start_consumer(
        tmp_path,
        nats_server.url,
        store,
        Recorder(on_event=unknown_error_as_the_store_fails),
        handlers=True,
        PULIH_ACK_WAIT_SECONDS=1,
        PULIH_STORE_RETRY_MAX_SECONDS=0.2,
    )
    try:
        await eventually(lambda: _now(fault.refused), until=lambda n: n >= 3)
        fault.active = False
        await eventually(lambda: consumer.settled(seqs[-1]), timeout=15)
        assert [(seq, attempt) for seq, _, attempt in await consumer.log()] == [(s, 1) for s in seqs]
        assert await stream_messages(nats_server.url, DLQ) == []
    finally:
        await consumer.stop()


async def test_an_event_set_aside_as_the_store_fails_after_the_commit_spends_no_attempt(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    await create_stream(nats_server.url)
    events = mixed_events(2)
    seqs = await publish(nats_server.url, events)
    store = await open_store(database_url)
    fault = StoreFault(store)
    handled: list[int] = []
    healed: list[bool] = []

    def judge(received: Received) -> None:
        handled.append(received.stream_seq)
        if received.event.id == events[1].id and not healed:
            raise RuntimeError("of no kind the kit knows")

    def fail_after_the_batch_commits(session: Session) -> None:
        # the second pass (savepoints, the event at fault set aside) commits the first event;
        # then the disk fails, before the event set aside is settled
        nested = session.in_nested_transaction()  # a savepoint released is no commit
        if handled.count(seqs[0]) == 2 and not nested and not fault.refused:
            fault.active = True

    sa_event.listen(Session, "after_commit", fail_after_the_batch_commits)
    consumer = await start_consumer(
        tmp_path,
        nats_server.url,
        store,
        Recorder(on_event=judge),
        handlers=True,
        PULIH_ACK_WAIT_SECONDS=1,
        PULIH_STORE_RETRY_MAX_SECONDS=0.2,
    )
    try:
        await eventually(lambda: _now(fault.refused), until=lambda n: n >= 4)
        healed.append(True)
        fault.active = False
        await eventually(lambda: consumer.settled(seqs[-1]), timeout=15)
        assert [(seq, attempt) for seq, _, attempt in await consumer.log()] == [(s, 1) for s in seqs]
        assert await stream_messages(nats_server.url, DLQ) == []
    finally:
        sa_event.remove(Session, "after_commit", fail_after_the_batch_commits)
        await consumer.stop()
