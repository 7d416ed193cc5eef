"""The kit's ordered batch consumer against a real nats-server, on SQLite and PostgreSQL.

A test service ("reporting", whose dead letters go to ``ibm.3301.dlq.reporting``) applies
batches with a :class:`Recorder`: it writes one row per event to ``applied_log`` (stream order is
the order of its ids) and adds one to a counter, an effect with no key to refuse a second
application. With ``tracks_itself=True`` the recorder keeps its own tracking table, as reporting
does; otherwise the kit's inbox does. The same recorder serves as event handlers
(:meth:`Recorder.handlers`, ``start_consumer(..., handlers=True)``), as rehab's, referral's and
outreach's consumers are.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, cast

import nats
import pytest
from faststream.nats import NatsBroker
from nats.js.errors import NotFoundError
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Uuid, func, select
from sqlalchemy.orm import Session
from system_support import stream_messages
from test_consumer_delivery import consent, registration

from pulih.contracts import CloudEvent, Event, new_event, parse_event, stream_name, subject_for
from pulih.contracts.events.dead_letters import EventDeadLettered
from pulih.contracts.events.outreach import ClientErased, ClientRegistered, ConsentRecorded
from pulih.kit.batch_consumer import Received, subscribe_batches
from pulih.kit.consumers import Delivery, EventHandler, NotReadyYet, Rejected
from pulih.kit.database import Database, kit_metadata
from pulih.kit.emitter import Emitter
from pulih.kit.errors import Invalid
from pulih.kit.messaging import ensure_regency_stream, make_broker
from pulih.kit.nats_server import NatsServer
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.testing import REGENCY, eventually, make_settings
from pulih.kit.unit_of_work import UnitOfWork

pytestmark = pytest.mark.system

SERVICE = "reporting"
DLQ = f"ibm.{REGENCY}.dlq.{SERVICE}"
DURABLE = "projection"

effects = MetaData()
applied_log = Table(
    "applied_log",
    effects,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("stream_seq", BigInteger, nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("attempt", Integer, nullable=False),
)
tracked = Table("tracked", effects, Column("event_id", Uuid, primary_key=True))
tally = Table("tally", effects, Column("name", String(20), primary_key=True), Column("n", Integer))

EventHook = Callable[[Received], None]


@dataclass
class Recorder:
    """A batch apply function that logs and counts every event it applies."""

    tracks_itself: bool = False
    on_event: EventHook | None = None
    """Runs for each event before its effect: raise to refuse it, or act (kill, break the store)."""
    batches: list[list[int]] = field(default_factory=list)
    """The stream sequences of each call, committed or not."""
    sessions: list[tuple[int, Session]] = field(default_factory=list)
    """As event handlers: (stream sequence, session) of each call, committed or not."""
    then: EventHandler | None = None
    """As event handlers: runs after each event's effect, in its unit of work."""

    async def __call__(self, uow: UnitOfWork, batch: Sequence[Received]) -> None:
        self.batches.append([r.stream_seq for r in batch])
        todo = list(batch)
        if self.tracks_itself:
            ids = [r.event.id for r in batch]
            done = set(
                await uow.session.scalars(select(tracked.c.event_id).where(tracked.c.event_id.in_(ids)))
            )
            todo = []
            for received in batch:
                if received.event.id not in done:
                    done.add(received.event.id)
                    todo.append(received)
        for received in todo:
            if self.on_event is not None:
                self.on_event(received)
            await uow.session.execute(
                applied_log.insert().values(
                    stream_seq=received.stream_seq, event_id=received.event.id, attempt=received.attempt
                )
            )
            await uow.session.execute(tally.update().values(n=tally.c.n + 1))
        if self.tracks_itself and todo:
            await uow.session.execute(tracked.insert(), [{"event_id": r.event.id} for r in todo])

    def handlers(self) -> dict[type[Event], EventHandler]:
        """The recorder as event handlers, one event a call (the kit's inbox skips a repeat)."""

        async def record(uow: UnitOfWork, event: CloudEvent[Any], delivery: Delivery) -> None:
            received = Received(event, delivery.stream_seq, delivery.subject, delivery.attempt)
            self.sessions.append((delivery.stream_seq, uow.session.sync_session))
            if self.on_event is not None:
                self.on_event(received)
            await uow.session.execute(
                applied_log.insert().values(
                    stream_seq=delivery.stream_seq, event_id=event.id, attempt=delivery.attempt
                )
            )
            await uow.session.execute(tally.update().values(n=tally.c.n + 1))
            if self.then is not None:
                await self.then(uow, event, delivery)

        return {ClientRegistered: record, ConsentRecorded: record, ClientErased: record}


async def open_store(database_url: str) -> Database:
    """A store with the kit's tables, the recorder's, and the counter at 0."""
    database = Database(database_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(kit_metadata.create_all)
        await conn.run_sync(effects.create_all)
        if not await conn.scalar(select(func.count()).select_from(tally)):
            await conn.execute(tally.insert().values(name="events", n=0))
    return database


async def publish(
    nats_url: str, items: Sequence[CloudEvent[Any] | bytes], *, msg_id: str | None = None
) -> list[int]:
    """Publish events (or raw bodies, on the registration subject) in order; their stream sequences."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        seqs = []
        for item in items:
            if isinstance(item, bytes):
                ack = await js.publish(
                    f"ibm.{REGENCY}.outreach.client_registered", item, stream=stream_name(REGENCY)
                )
            else:
                headers = {"Nats-Msg-Id": msg_id or str(item.id)}
                ack = await js.publish(
                    subject_for(item, REGENCY), item.to_json(), headers=headers, stream=stream_name(REGENCY)
                )
            seqs.append(ack.seq)
        return seqs
    finally:
        await nc.close()


async def create_stream(nats_url: str) -> None:
    broker = make_broker(nats_url, name="stream-setup")
    await broker.connect()
    try:
        await ensure_regency_stream(broker, REGENCY)
    finally:
        await broker.stop()


@dataclass
class Consumer:
    """A running batch consumer of the whole regency stream and its store."""

    runtime: ServiceRuntime
    broker: NatsBroker
    recorder: Recorder
    nats_url: str

    @property
    def database(self) -> Database:
        return self.runtime.database

    async def stop(self) -> None:
        for batch_consumer in self.runtime.batch_consumers:
            await batch_consumer.stop()
        await self.broker.stop()
        await self.database.dispose()

    async def log(self) -> list[tuple[int, uuid.UUID, int]]:
        return await applications(self.database)

    async def count(self) -> int:
        return await counted(self.database)

    async def settled(self, last_seq: int) -> bool:
        """Whether every message up to ``last_seq`` is acknowledged (or terminated)."""
        return await acked_up_to(self.nats_url) >= last_seq

    async def dead_letters(self, count: int, timeout: float = 15) -> list[CloudEvent[EventDeadLettered]]:
        messages = await eventually(
            lambda: stream_messages(self.nats_url, DLQ), until=lambda m: len(m) >= count, timeout=timeout
        )
        return [cast("CloudEvent[EventDeadLettered]", parse_event(m.data)) for m in messages]


async def applications(database: Database) -> list[tuple[int, uuid.UUID, int]]:
    """(stream_seq, event_id, attempt) of every application, in the order applied."""
    query = select(applied_log.c.stream_seq, applied_log.c.event_id, applied_log.c.attempt)
    async with database.sessions() as s:
        rows = await s.execute(query.order_by(applied_log.c.n))
        return [(int(seq), event_id, int(attempt)) for seq, event_id, attempt in rows]


async def counted(database: Database) -> int:
    """The counter: one more for every application."""
    async with database.sessions() as s:
        return int(await s.scalar(select(tally.c.n)) or 0)


async def acked_up_to(nats_url: str) -> int:
    """The durable's ack floor once nothing is pending (0 while something is)."""
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().consumer_info(stream_name(REGENCY), f"{SERVICE}-{DURABLE}")
        return int(info.ack_floor.stream_seq) if info.num_ack_pending == 0 and not info.num_pending else 0
    except NotFoundError:  # not declared (again) yet
        return 0
    finally:
        await nc.close()


async def start_consumer(
    tmp_path: Path,
    nats_url: str,
    store: str | Database,
    recorder: Recorder,
    *,
    batch_size: int = 200,
    types: set[type[Event]] | None = None,
    handlers: bool = False,
    **settings: Any,
) -> Consumer:
    """A consumer of the regency's outreach events that applies batches with ``recorder``, or
    with its event handlers if ``handlers``."""
    values: dict[str, Any] = {"PULIH_MAX_DELIVER": 3, **settings}
    runtime = ServiceRuntime(
        SERVICE,
        make_settings(tmp_path, nats_url=nats_url, **values),
        await open_store(store) if isinstance(store, str) else store,
        Emitter(REGENCY),
    )
    broker = make_broker(nats_url, name="batch-test")
    how: dict[str, Any] = (
        {"handlers": recorder.handlers()}
        if handlers
        else {"apply": recorder, "tracks_itself": recorder.tracks_itself, "types": types}
    )
    subscribe_batches(
        runtime,
        broker,
        durable=DURABLE,
        subject=f"ibm.{REGENCY}.outreach.>",
        batch_size=batch_size,
        retry_base_seconds=0.05,
        **how,
    )
    await broker.connect()
    await ensure_regency_stream(broker, REGENCY)
    await broker.start()
    for batch_consumer in runtime.batch_consumers:  # as the service's lifespan does
        await batch_consumer.start()
    return Consumer(runtime, broker, recorder, nats_url)


@pytest.fixture
async def stopped() -> AsyncIterator[list[Consumer]]:
    """Consumers a test started, stopped and closed at its end."""
    consumers: list[Consumer] = []
    yield consumers
    for consumer in consumers:
        await consumer.stop()


def mixed_events(count: int) -> list[CloudEvent[Any]]:
    """Registrations, consents and erasures of many clients: three subjects, one stream order."""
    events: list[CloudEvent[Any]] = []
    while len(events) < count:
        client_id = uuid.uuid4()
        events += [registration(client_id), consent(client_id)]
        if len(events) % 7 == 0:
            events.append(new_event(ClientErased(client_id=client_id, on=date(2026, 3, 1)), regency=REGENCY))
    return events[:count]


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
    rejected, refused = events[5].id, events[20].id
    nik = json.loads(registration().to_json())
    nik["data"]["nik"] = "3301010101010001"
    items: list[CloudEvent[Any] | bytes] = [*events]
    items[10] = b'{"not": "an event"'
    items[15] = json.dumps(nik).encode()
    seqs = await publish(nats_server.url, items)

    def refuse(received: Received) -> None:
        if received.event.id == rejected:
            raise Rejected("illegal_transition", f"{received.subject}: not in this state")
        if received.event.id == refused:
            raise Invalid("out_of_range", "a domain rule refuses it")

    consumer = await start_consumer(
        tmp_path, nats_server.url, database_url, Recorder(tracks_itself, on_event=refuse), batch_size=100
    )
    stopped.append(consumer)
    letters = await consumer.dead_letters(4)
    await eventually(lambda: consumer.settled(seqs[-1]))

    by_seq = {letter.data.stream_seq: letter.data for letter in letters}
    assert sorted(by_seq) == [seqs[5], seqs[10], seqs[15], seqs[20]]
    assert by_seq[seqs[5]].error == "illegal_transition" and by_seq[seqs[5]].attempts == 1
    assert by_seq[seqs[10]].error == "invalid_event" and "JSON" in by_seq[seqs[10]].reason
    assert by_seq[seqs[15]].error == "invalid_event"
    assert by_seq[seqs[15]].reason.startswith("data.nik: identity keys are refused")
    assert "3301010101010001" not in by_seq[seqs[15]].payload
    assert by_seq[seqs[20]].error == "out_of_range" and "a domain rule refuses it" in by_seq[seqs[20]].reason
    assert {letter.data.consumer for letter in letters} == {f"{SERVICE}.{DURABLE}"}
    assert consumer.recorder.batches[0] == [s for i, s in enumerate(seqs) if i not in (10, 15)], (
        "the poison came inside one batch with the others"
    )
    kept = [i for i in range(30) if i not in (5, 10, 15, 20)]
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
