"""The kit's batch consumer with event handlers (rehab's, referral's and outreach's kind) against
a real nats-server, on SQLite and PostgreSQL: one batch, one transaction; an event that fails is
rolled back to its own savepoint and dealt with on its own while the rest commit; what a handler
emits names its event as the cause and continues its trace.

The recorder of tests/batch_support.py serves as the handlers (``handlers=True``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from batch_support import (
    DLQ,
    POISONED,
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
from sqlalchemy import event, select
from sqlalchemy.orm import Session
from system_support import stream_messages
from test_consumer_delivery import registration

from pulih.contracts import CloudEvent, new_event, parse_event
from pulih.contracts.events.outreach import ClientErased
from pulih.kit.batch_consumer import Received
from pulih.kit.consumers import Delivery, NotReadyYet
from pulih.kit.nats_server import NatsServer
from pulih.kit.outbox import outbox_table
from pulih.kit.testing import REGENCY, eventually
from pulih.kit.unit_of_work import UnitOfWork

pytestmark = pytest.mark.system


@pytest.fixture
async def stopped() -> AsyncIterator[list[Consumer]]:
    """Consumers a test started, stopped and closed at its end."""
    async with stopping() as consumers:
        yield consumers


async def test_a_poison_inside_a_batch_is_rolled_back_alone_and_the_rest_commit_in_one_transaction(
    tmp_path: Path, nats_server: NatsServer, database_url: str, stopped: list[Consumer]
) -> None:
    await create_stream(nats_server.url)
    events = mixed_events(30)
    early, buggy = events[12].id, events[25].id
    seqs = await publish(nats_server.url, poisoned(events))
    refuse = refusing(events[5].id, events[20].id)

    def judge(received: Received) -> None:
        refuse(received)
        if received.event.id == early and received.attempt == 1:
            raise NotReadyYet("what it builds on has not arrived")
        if received.event.id == buggy and received.attempt == 1:
            raise RuntimeError("a bug, on the first delivery only")

    commits: list[Session] = []

    def committed(session: Session) -> None:
        if not session.in_nested_transaction():  # a savepoint released is no commit
            commits.append(session)  # held: no later session takes its id

    event.listen(Session, "after_commit", committed)
    try:
        recorder = Recorder(on_event=judge)
        consumer = await start_consumer(
            tmp_path,
            nats_server.url,
            database_url,
            recorder,
            batch_size=100,
            handlers=True,
            PULIH_ACK_WAIT_SECONDS=1,
        )
        stopped.append(consumer)
        letters = await consumer.dead_letters(4)
        await eventually(lambda: consumer.settled(seqs[-1]), timeout=30)
    finally:
        event.remove(Session, "after_commit", committed)

    by_seq = {letter.data.stream_seq: letter.data for letter in letters}
    assert sorted(by_seq) == [seqs[i] for i in POISONED]
    assert (by_seq[seqs[5]].error, by_seq[seqs[5]].attempts) == ("illegal_transition", 1)
    assert by_seq[seqs[10]].error == by_seq[seqs[15]].error == "invalid_event"
    assert by_seq[seqs[20]].error == "out_of_range"

    log = await consumer.log()
    first = [seqs[i] for i in range(30) if i not in (5, 10, 12, 15, 20, 25)]
    assert [seq for seq, _, _ in log[:24]] == first, "the rest at once, in stream order"
    assert sorted(seq for seq, _, _ in log[24:]) == [seqs[12], seqs[25]], (
        "the early and the buggy one after them, on their next delivery"
    )
    assert {seq: attempt for seq, _, attempt in log if seq in (seqs[12], seqs[25])} == {
        seqs[12]: 2,
        seqs[25]: 2,
    }
    assert {attempt for seq, _, attempt in log if seq in first} == {1}
    assert await consumer.count() == len(log) == 26

    # the batch's events went to their handlers on one session, which committed once
    first_batch = {id(session) for seq, session in recorder.sessions if seq in first}
    assert len(first_batch) == 2, "the fast pass (rolled back), then the pass with savepoints"
    assert sum(id(session) in first_batch for session in commits) == 1


async def test_what_a_handler_emits_names_its_event_as_cause_and_continues_its_trace(
    tmp_path: Path, nats_server: NatsServer, database_url: str, stopped: list[Consumer]
) -> None:
    await create_stream(nats_server.url)
    traces = [f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01" for _ in range(5)]
    consumed = [
        new_event(registration().data, regency=REGENCY, correlationid=f"chain-{i}", traceparent=traces[i])
        for i in range(5)
    ]
    await publish(nats_server.url, consumed)

    async def emit(uow: UnitOfWork, event_: CloudEvent[Any], _: Delivery) -> None:
        await uow.emit(ClientErased(client_id=event_.data.client_id, on=event_.data.registered_on))

    consumer = await start_consumer(
        tmp_path, nats_server.url, database_url, Recorder(then=emit), batch_size=10, handlers=True
    )
    stopped.append(consumer)
    await eventually(consumer.count, until=lambda n: n == 5)

    emitted = await outbox(consumer)
    assert [(e.causationid, e.correlationid) for e in emitted] == [
        (str(c.id), c.correlationid) for c in consumed
    ]
    assert [e.traceparent.split("-")[1] for e in emitted if e.traceparent] == [
        t.split("-")[1] for t in traces
    ], "each continues the trace of the event it came of"


async def outbox(consumer: Consumer) -> Sequence[CloudEvent[Any]]:
    async with consumer.database.sessions() as s:
        rows = await s.scalars(select(outbox_table.c.payload).order_by(outbox_table.c.seq))
        return [parse_event(row) for row in rows]


async def test_an_event_that_keeps_failing_is_dead_lettered_and_never_holds_up_the_others(
    tmp_path: Path, nats_server: NatsServer, database_url: str, stopped: list[Consumer]
) -> None:
    await create_stream(nats_server.url)
    events = mixed_events(20)
    seqs = await publish(nats_server.url, events)
    never = events[3].id

    def fail(received: Received) -> None:
        if received.event.id == never:
            raise NotReadyYet("what it builds on never arrives")

    consumer = await start_consumer(
        tmp_path,
        nats_server.url,
        database_url,
        Recorder(on_event=fail),
        batch_size=5,
        handlers=True,
        PULIH_ACK_WAIT_SECONDS=1,
    )
    stopped.append(consumer)
    await eventually(consumer.count, until=lambda n: n == 19)
    log = await consumer.log()
    assert [seq for seq, _, _ in log] == seqs[:3] + seqs[4:], "the others went on, in order"
    [letter] = await consumer.dead_letters(1, timeout=20)
    assert (letter.data.stream_seq, letter.data.error, letter.data.attempts) == (seqs[3], "not_ready", 3)
    await eventually(lambda: consumer.settled(seqs[-1]))
    assert len(await stream_messages(nats_server.url, DLQ)) == 1
