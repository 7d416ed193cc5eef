"""The harness of the kit's batch consumer's system tests (tests/test_batch_consumption*.py).

A test service ("reporting", whose dead letters go to ``ibm.3301.dlq.reporting``) applies
batches with a :class:`Recorder`: it writes one row per event to ``applied_log`` (stream order is
the order of its ids) and adds one to a counter, an effect with no key to refuse a second
application. With ``tracks_itself=True`` the recorder keeps its own tracking table, as reporting
does; otherwise the kit's inbox does. The same recorder serves as event handlers
(:meth:`Recorder.handlers`, ``start_consumer(..., handlers=True)``), as rehab's, referral's and
outreach's consumers are.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, cast

import nats
from faststream.nats import NatsBroker
from nats.js.errors import NotFoundError
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Uuid, func, select
from sqlalchemy.orm import Session
from system_support import stream_messages
from test_consumer_delivery import consent, registration
from test_consumer_store_faults import StoreFault

from pulih.contracts import CloudEvent, Event, new_event, parse_event, stream_name, subject_for
from pulih.contracts.events.dead_letters import EventDeadLettered
from pulih.contracts.events.outreach import ClientErased, ClientRegistered, ConsentRecorded
from pulih.kit.batch_consumer import Received, subscribe_batches
from pulih.kit.consumers import Delivery, EventHandler, Rejected
from pulih.kit.database import Database, kit_metadata
from pulih.kit.emitter import Emitter
from pulih.kit.errors import Invalid
from pulih.kit.messaging import ensure_regency_stream, make_broker
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.testing import REGENCY, eventually, make_settings
from pulih.kit.unit_of_work import UnitOfWork

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

    async def __aenter__(self) -> Consumer:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

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

    async def assert_applied_once_each(self, seqs: Sequence[int]) -> None:
        """Asserts that the messages ``seqs`` were applied, in that order, each once and at its
        first attempt, and that nothing was dead-lettered."""
        assert [(seq, attempt) for seq, _, attempt in await self.log()] == [(s, 1) for s in seqs]
        assert await stream_messages(self.nats_url, DLQ) == []


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
    linger: float = 0.0,
    **settings: Any,
) -> Consumer:
    """A consumer of the regency's outreach events that applies batches with ``recorder``, or
    with its event handlers if ``handlers``; a batch waits up to ``linger`` seconds to fill."""
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
        linger=linger,
        **how,
    )
    await broker.connect()
    await ensure_regency_stream(broker, REGENCY)
    await broker.start()
    for batch_consumer in runtime.batch_consumers:  # as the service's lifespan does
        await batch_consumer.start()
    return Consumer(runtime, broker, recorder, nats_url)


async def published(nats_url: str, count: int) -> tuple[list[CloudEvent[Any]], list[int]]:
    """The regency's stream declared and ``count`` :func:`mixed_events` published on it: the
    events and their stream sequences."""
    await create_stream(nats_url)
    events = mixed_events(count)
    return events, await publish(nats_url, events)


async def failing_store(database_url: str) -> tuple[Database, StoreFault]:
    """:func:`open_store`'s store, and the :class:`StoreFault` that makes it refuse writes."""
    store = await open_store(database_url)
    return store, StoreFault(store)


@asynccontextmanager
async def stopping() -> AsyncIterator[list[Consumer]]:
    """A list for the consumers a test starts, each stopped and closed on exit (the body of
    the tests' ``stopped`` fixture)."""
    consumers: list[Consumer] = []
    try:
        yield consumers
    finally:
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


NIK = "3301010101010001"
"""The NIK a poisoned registration carries (:func:`poisoned`)."""
POISONED = (5, 10, 15, 20)
"""The places of :func:`poisoned`'s four messages that are dead-lettered: 5 and 20 refused by
:func:`refusing`, 10 no JSON, 15 an identity key."""


def poisoned(events: Sequence[CloudEvent[Any]]) -> list[CloudEvent[Any] | bytes]:
    """``events`` (at least 16) with two messages no consumer may apply in place of theirs: at 10
    a body that is not JSON, at 15 a registration that carries a NIK (an identity key)."""
    nik = json.loads(registration().to_json())
    nik["data"]["nik"] = NIK
    items: list[CloudEvent[Any] | bytes] = [*events]
    items[10] = b'{"not": "an event"'
    items[15] = json.dumps(nik).encode()
    return items


def refusing(rejected: uuid.UUID, refused: uuid.UUID) -> EventHook:
    """A hook that rejects the event ``rejected`` (an illegal transition) and refuses the event
    ``refused`` (a domain rule), on every delivery."""

    def refuse(received: Received) -> None:
        if received.event.id == rejected:
            raise Rejected("illegal_transition", f"{received.subject}: not in this state")
        if received.event.id == refused:
            raise Invalid("out_of_range", "a domain rule refuses it")

    return refuse
