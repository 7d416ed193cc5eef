"""The batch consumer's inbox in bulk (one query and one statement a batch), its registration
(with one ``apply`` or with event handlers) and how it reads a message's sequence and attempt, on
SQLite and PostgreSQL; the consumer against NATS is tested in ``tests/test_batch_consumption*.py``
and ``tests/test_consumer_*.py``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import date
from pathlib import Path

import pytest
from faststream.nats import NatsBroker
from nats.aio.msg import Msg
from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from pulih.contracts import CloudEvent, new_event
from pulih.contracts.events.outreach import ClientErased
from pulih.kit.batch_apply import delivered, record_batch, unapplied
from pulih.kit.batch_consumer import Received, subscribe_batches
from pulih.kit.consumers import Delivery
from pulih.kit.database import Database, kit_metadata
from pulih.kit.emitter import Emitter
from pulih.kit.inbox import inbox_table, record_applied
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.testing import make_settings
from pulih.kit.unit_of_work import UnitOfWork


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(kit_metadata.create_all)
    try:
        yield database
    finally:
        await database.dispose()


def erasure() -> CloudEvent[ClientErased]:
    return new_event(ClientErased(client_id=uuid.uuid4(), on=date(2026, 3, 1)), regency="3301")


def received(events: Sequence[CloudEvent[ClientErased]], first_seq: int = 1) -> list[Received]:
    subject = "ibm.3301.outreach.client_erased"
    return [Received(event, first_seq + i, subject, 1) for i, event in enumerate(events)]


async def test_unapplied_keeps_stream_order_and_leaves_out_what_this_consumer_applied(
    store: Database,
) -> None:
    events = [erasure() for _ in range(6)]
    async with store.transaction() as session:
        await record_applied(session, "reporting.projection", events[1].id, 2)
        await record_applied(session, "reporting.projection", events[4].id, 5)
        await record_applied(session, "rehab.clients", events[2].id, 3)  # another consumer's inbox
    batch = received(events)
    async with store.transaction() as session:
        fresh = await unapplied(session, "reporting.projection", batch)
    assert [r.stream_seq for r in fresh] == [1, 3, 4, 6]


async def test_a_second_copy_inside_one_batch_counts_once(store: Database) -> None:
    first, other = erasure(), erasure()
    batch = received([first, other, first, first])  # published again past the dedup window
    async with store.transaction() as session:
        fresh = await unapplied(session, "reporting.projection", batch)
    assert [(r.event.id, r.stream_seq) for r in fresh] == [(first.id, 1), (other.id, 2)]


async def test_a_batch_larger_than_one_in_clause_is_checked_whole(store: Database) -> None:
    events = [erasure() for _ in range(1203)]
    batch = received(events)
    async with store.transaction() as session:
        await record_batch(session, "reporting.projection", batch[::2])
    async with store.transaction() as session:
        fresh = await unapplied(session, "reporting.projection", batch)
    assert [r.stream_seq for r in fresh] == [r.stream_seq for r in batch[1::2]]


async def test_record_batch_writes_one_row_per_event_and_refuses_a_second_application(
    store: Database,
) -> None:
    batch = received([erasure() for _ in range(3)], first_seq=40)
    async with store.transaction() as session:
        await record_batch(session, "reporting.projection", batch)
    async with store.sessions() as session:
        rows = (await session.execute(select(inbox_table.c.event_id, inbox_table.c.stream_seq))).all()
    assert sorted(rows, key=lambda row: row[1]) == [(r.event.id, r.stream_seq) for r in batch]
    with pytest.raises(sa_exc.IntegrityError):  # two instances racing: one commit fails, with its effect
        async with store.transaction() as session:
            await record_batch(session, "reporting.projection", batch[1:2])


async def noop(_: UnitOfWork, __: Sequence[Received]) -> None:
    """Applies nothing."""


def runtime_of(service: str, tmp_path: Path, database: Database) -> ServiceRuntime:
    settings = make_settings(tmp_path, nats_url="nats://127.0.0.1:1")
    return ServiceRuntime(service, settings, database, Emitter("3301"))


@pytest.mark.parametrize("database_url", ["sqlite+aiosqlite:///:memory:"])
async def test_subscribing_registers_the_durable_and_the_consumer_started_with_the_broker(
    tmp_path: Path, store: Database
) -> None:
    runtime = runtime_of("reporting", tmp_path, store)
    subscribe_batches(runtime, NatsBroker(), durable="projection", subject="ibm.3301.>", apply=noop)
    assert runtime.durables == ["reporting-projection"]
    [consumer] = runtime.batch_consumers
    assert (consumer.durable, consumer.name, consumer.batch_size) == (
        "reporting-projection",
        "reporting.projection",
        500,
    )


@pytest.mark.parametrize("database_url", ["sqlite+aiosqlite:///:memory:"])
async def test_a_service_without_dead_letters_or_a_batch_of_nothing_cannot_subscribe(
    tmp_path: Path, store: Database
) -> None:
    with pytest.raises(ValueError, match="has no dead-letter event"):
        subscribe_batches(
            runtime_of("clinic", tmp_path, store), NatsBroker(), durable="x", subject="ibm.3301.>", apply=noop
        )
    runtime = runtime_of("reporting", tmp_path, store)
    with pytest.raises(ValueError, match="batch_size"):
        subscribe_batches(runtime, NatsBroker(), durable="x", subject="ibm.3301.>", apply=noop, batch_size=0)
    assert runtime.durables == [] and runtime.batch_consumers == []


async def registered(_: UnitOfWork, __: CloudEvent[ClientErased], ___: Delivery) -> None:
    """Applies nothing."""


@pytest.mark.parametrize("database_url", ["sqlite+aiosqlite:///:memory:"])
async def test_a_consumer_with_handlers_applies_their_event_types_and_takes_no_apply(
    tmp_path: Path, store: Database
) -> None:
    runtime = runtime_of("rehab", tmp_path, store)
    subscribe_batches(
        runtime,
        NatsBroker(),
        durable="clients",
        subject="ibm.3301.outreach.>",
        handlers={ClientErased: registered},
    )
    [consumer] = runtime.batch_consumers
    assert (consumer.durable, consumer.name) == ("rehab-clients", "rehab.clients")
    assert consumer.applier.types == frozenset({"pulih.outreach.ClientErased.v1"})
    for wrong in (
        {},  # neither
        {"apply": noop, "handlers": {ClientErased: registered}},  # both
        {"handlers": {ClientErased: registered}, "tracks_itself": True},  # the handlers use the kit's inbox
    ):
        with pytest.raises(ValueError):
            subscribe_batches(runtime, NatsBroker(), durable="x", subject="ibm.3301.>", **wrong)  # type: ignore[arg-type]
    assert len(runtime.batch_consumers) == 1


@pytest.mark.parametrize(
    "reply",
    [
        "$JS.ACK.IBM_3301.rehab-clients.3.1234.77.1769900000000000000.5",
        "$JS.ACK.r3301.ACCOUNTHASH.IBM_3301.rehab-clients.3.1234.77.1769900000000000000.5.xyz",
    ],
    ids=["short", "with-domain-and-account"],
)
def test_a_message_s_stream_sequence_and_attempt_are_read_from_its_ack_subject(reply: str) -> None:
    message = Msg(None, subject="ibm.3301.outreach.client_erased", reply=reply)  # type: ignore[arg-type]
    assert delivered(message) == (1234, 3)
    assert (message.metadata.sequence.stream, message.metadata.num_delivered) == (1234, 3), (
        "as nats-py reads it"
    )
