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
from batch_support import (
    DLQ,
    DURABLE,
    SERVICE,
    Consumer,
    EventHook,
    Recorder,
    create_stream,
    failing_store,
    mixed_events,
    publish,
    published,
    start_consumer,
    stopping,
)
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session
from system_support import stream_messages
from test_consumer_store_faults import StoreFault

from pulih.contracts import CloudEvent, stream_name
from pulih.kit.batch_consumer import Received
from pulih.kit.consumers import Delivery, NotReadyYet, Rejected
from pulih.kit.database import Database
from pulih.kit.nats_server import NatsServer
from pulih.kit.testing import REGENCY, eventually
from pulih.kit.unit_of_work import UnitOfWork

pytestmark = pytest.mark.system


async def start_pausing(
    tmp_path: Path, nats_url: str, store: str | Database, on_event: EventHook, *, handlers: bool = True
) -> Consumer:
    """A consumer (its event handlers, unless ``handlers`` is False) that runs ``on_event`` for
    each event, with an ``ack_wait`` of 1 s and store retries at most 0.2 s apart."""
    return await start_consumer(
        tmp_path,
        nats_url,
        store,
        Recorder(on_event=on_event),
        handlers=handlers,
        PULIH_ACK_WAIT_SECONDS=1,
        PULIH_STORE_RETRY_MAX_SECONDS=0.2,
    )


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
    async with stopping() as consumers:
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


async def test_a_handler_that_fails_after_writing_leaves_nothing_and_a_failed_batch_commits_nothing(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    events, seqs = await published(nats_server.url, 5)
    poisons = {events[0].id, events[2].id}  # the first found without savepoints, the second with
    store_failed: list[int] = []

    async def after_its_effect(_: UnitOfWork, event: CloudEvent[Any], delivery: Delivery) -> None:
        if event.id in poisons:
            raise Rejected("illegal_transition", "refused after writing")
        if event.id == events[3].id and not store_failed:  # once, after events[1] was released
            store_failed.append(delivery.stream_seq)
            raise sa_exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

    async with await start_consumer(
        tmp_path, nats_server.url, database_url, Recorder(then=after_its_effect), handlers=True
    ) as consumer:
        await consumer.dead_letters(2)
        await eventually(lambda: consumer.settled(seqs[-1]))
        assert store_failed, "the store fault was met"
        assert [seq for seq, _, _ in await consumer.log()] == [seqs[1], seqs[3], seqs[4]]
        assert await consumer.count() == 3


@pytest.mark.parametrize("handlers", [False, True], ids=["apply", "handlers"])
async def test_an_event_not_ready_is_tried_again_no_sooner_than_ack_wait(
    tmp_path: Path, nats_server: NatsServer, database_url: str, handlers: bool
) -> None:
    events, seqs = await published(nats_server.url, 4)
    tries: list[tuple[int, float]] = []

    def not_ready_at_first(received: Received) -> None:
        if received.event.id == events[1].id:
            tries.append((received.attempt, time.monotonic()))
            if received.attempt == 1:
                raise NotReadyYet("what it builds on has not arrived")

    async with await start_consumer(
        tmp_path,
        nats_server.url,
        database_url,
        Recorder(on_event=not_ready_at_first),
        handlers=handlers,
        PULIH_ACK_WAIT_SECONDS=1,
    ) as consumer:
        await eventually(lambda: consumer.settled(seqs[-1]), timeout=15)
        in_order = [seqs[0], *seqs[2:], seqs[1]] if handlers else seqs  # handlers: the rest go on
        assert [seq for seq, _, _ in await consumer.log()] == in_order
        last_first = max(at for attempt, at in tries if attempt == 1)
        [(_, second)] = [(attempt, at) for attempt, at in tries if attempt == 2]
        assert second - last_first >= 0.9, "ack_wait (1 s) between two tries of an event not ready"


async def test_an_event_not_ready_while_the_store_fails_spends_no_attempt(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    _, seqs = await published(nats_server.url, 1)
    store, fault = await failing_store(database_url)

    def not_ready_while_the_store_fails(received: Received) -> None:
        if received.attempt == 1 and not fault.refused:
            fault.active = True  # the disk fails as the event turns out not ready
        if fault.active:
            raise NotReadyYet("what it builds on is in a store that cannot commit")

    async with await start_pausing(
        tmp_path, nats_server.url, store, not_ready_while_the_store_fails, handlers=False
    ) as consumer:
        runtime = consumer.runtime
        assert await eventually(lambda: _now(set(runtime.paused_consumers)), until=bool)
        # longer than max_deliver (3) tries ack_wait (1 s) apart would take
        await eventually(lambda: _now(fault.refused), until=lambda n: n >= 12, timeout=15)
        assert await stream_messages(nats_server.url, DLQ) == [], "nothing dead-lettered"
        await heal_and_settle(consumer, fault, seqs)


async def heal_and_settle(consumer: Consumer, fault: StoreFault, seqs: list[int]) -> None:
    """Heals the store; asserts that then every message is settled and applied once, at its
    first attempt, and nothing dead-lettered."""
    fault.active = False
    await eventually(lambda: consumer.settled(seqs[-1]), timeout=15)
    await consumer.assert_applied_once_each(seqs)


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

    consumer = await start_pausing(
        tmp_path, nats_server.url, database_url, not_ready_while_the_sibling_is_paused
    )
    async with consumer:
        consumer.runtime.paused_consumers.add(sibling)  # its store fails, say
        seqs = await publish(nats_server.url, mixed_events(1))
        # more tries than max_deliver (3) deliveries ack_wait (1 s) apart would give
        await eventually(lambda: _now(len(tries)), until=lambda n: n >= 6)
        assert set(tries) == {1}, "kept in hand: no delivery attempt spent"
        consumer.runtime.paused_consumers.discard(sibling)
        await eventually(lambda: consumer.settled(seqs[-1]), timeout=15)
        await consumer.assert_applied_once_each(seqs)


async def test_a_store_fault_raised_in_a_handler_applies_the_batch_again_in_order(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    events, seqs = await published(nats_server.url, 4)
    refused: list[int] = []

    async def locked_once(_: UnitOfWork, event: CloudEvent[Any], delivery: Delivery) -> None:
        if event.id == events[1].id and not refused:
            refused.append(delivery.stream_seq)
            raise sa_exc.OperationalError("INSERT", {}, Exception("database is locked"))

    async with await start_consumer(
        tmp_path, nats_server.url, database_url, Recorder(then=locked_once), handlers=True
    ) as consumer:
        await eventually(lambda: consumer.settled(seqs[-1]))
        assert refused == [seqs[1]]
        await consumer.assert_applied_once_each(seqs)


async def test_an_unknown_error_while_the_store_fails_is_the_store_s_and_spends_no_attempt(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    events, seqs = await published(nats_server.url, 3)
    store, fault = await failing_store(database_url)

    def unknown_error_as_the_store_fails(received: Received) -> None:
        if received.event.id == events[1].id and (fault.active or not fault.refused):
            fault.active = True
            raise RuntimeError("the driver's own error, of no kind the kit knows")

    async with await start_pausing(
        tmp_path, nats_server.url, store, unknown_error_as_the_store_fails
    ) as consumer:
        await eventually(lambda: _now(fault.refused), until=lambda n: n >= 3)
        await heal_and_settle(consumer, fault, seqs)


async def test_an_event_set_aside_as_the_store_fails_after_the_commit_spends_no_attempt(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    events, seqs = await published(nats_server.url, 2)
    store, fault = await failing_store(database_url)
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
    try:
        async with await start_pausing(tmp_path, nats_server.url, store, judge) as consumer:
            await eventually(lambda: _now(fault.refused), until=lambda n: n >= 4)
            healed.append(True)
            await heal_and_settle(consumer, fault, seqs)
    finally:
        sa_event.remove(Session, "after_commit", fail_after_the_batch_commits)
