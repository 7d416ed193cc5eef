"""``pulih reporting rebuild``: the projection again from the stream alone, swapped in while the
API keeps answering (ARCHITECTURE.md, invariant 5).

1. **Prepare** the ``rebuild_`` tables (:data:`~pulih.reporting.store.REBUILD`). Leftovers of a
   rebuild that died are resumed from their own ``position`` (each batch committed its rows and
   its position together, so nothing is applied twice); ``fresh`` drops them instead.
2. **Replay** the regency's stream through an ephemeral pull consumer (no acks, in memory, gone
   when the rebuild ends: no durable is left behind) in big fetches, one fetch ahead of the
   store, and apply it with :func:`~pulih.reporting.projection.apply_batch_sync`, each batch one
   transaction. Memory stays bounded: a few batches are in hand at any time, never the stream.
3. **Finish**: every indicator cell (:func:`~pulih.reporting.indicators.refresh_all_sync`) and
   every unit's phase from its first month (:func:`~pulih.reporting.phases.reassess_sync`).
4. **Swap** in one transaction, holding the projection's write lock (:mod:`swap`): if the live
   projection got further than the rebuilt one meanwhile, the missing tail is applied first
   (incrementally) and the swap tried again; otherwise the live tables are dropped and the
   ``rebuild_`` ones renamed in their place. DDL is transactional in SQLite and PostgreSQL, so a
   reader sees the old projection or the new one, never a mix. The live consumer then skips
   what the rebuilt ``applied_events`` holds and goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from sqlalchemy import Connection, inspect, select

from pulih.contracts import (
    CloudEvent,
    InvalidEvent,
    parse_event,
    regency_subjects,
    stream_name,
)
from pulih.kit.clock import clock_from
from pulih.kit.database import Database
from pulih.kit.messaging import nats_tls
from pulih.kit.settings import Settings
from pulih.reporting import indicators, phases, swap
from pulih.reporting.cli import DEFAULT_BATCH
from pulih.reporting.deps import ReportingDeps
from pulih.reporting.projection import Touched, apply_batch_sync
from pulih.reporting.store import REBUILD, rebuild_metadata
from pulih.reporting.swap import position_sync

FETCH = 2000
"""Messages per fetch from the stream."""
BATCH = DEFAULT_BATCH
"""Events per transaction of the replay."""
AHEAD = 3
"""Fetches read ahead of the store: what bounds the rebuild's memory."""
PULL_TIMEOUT = 30.0
"""How long one pull request may take before the rebuild gives up (a server gone)."""


@dataclass(frozen=True, slots=True)
class Replayed:
    """One event read back from the stream, as :func:`~pulih.reporting.projection.apply_batch`
    takes it (the shape of the live consumer's ``Replayed``)."""

    event: CloudEvent[Any]
    stream_seq: int


class Progress(Protocol):
    """Where a rebuild says how far it is (:class:`pulih.reporting.cli.EventProgress`)."""

    def set_total(self, total: int) -> None:
        """The replay now has ``total`` events in all."""

    def advance(self, count: int) -> None:
        """``count`` more events were read."""


@dataclass
class RebuildReport:
    """What a rebuild did and how long each step took."""

    resumed_from: int = 0
    """The rebuilt position it started from (0: a fresh rebuild)."""
    read: int = 0
    """Messages read from the stream (the tail included)."""
    invalid: int = 0
    """Messages that are no valid event (the live consumer dead-lettered them): skipped."""
    position: int = 0
    """The stream sequence the swapped-in projection has applied up to."""
    tail_rounds: int = 0
    """How often the live projection was ahead at the swap, and its tail applied first."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Seconds per step: replay, finish, swap."""

    @property
    def events_per_second(self) -> float:
        """Messages read per second of replay."""
        replay = self.seconds.get("replay", 0.0)
        return self.read / replay if replay > 0 else 0.0


@dataclass(frozen=True)
class Rebuild:
    """One rebuild of the projection of ``regency``'s stream into ``database``."""

    database: Database
    nats_url: str
    regency: str
    timezone: str
    criteria: dict[str, Any]
    today: date
    batch_size: int = BATCH
    fetch: int = FETCH
    settings: Settings | None = None

    async def run(
        self, *, fresh: bool = False, progress: Progress | None = None, until: int | None = None
    ) -> RebuildReport:
        """Prepare, replay (up to stream sequence ``until``: the stream's last by default),
        finish and swap; the report of what was done."""
        report = RebuildReport()
        nc = await connect(self.nats_url, self.settings)
        try:
            started = time.perf_counter()
            await swap.migrate(self.database)
            async with self.database.engine.connect() as conn:
                report.resumed_from = await conn.run_sync(prepare_sync, fresh)
            report.position = report.resumed_from
            last = await last_sequence(nc, self.regency)
            last = last if until is None else min(until, last)
            if progress is not None:
                progress.set_total(max(last - report.resumed_from, 0))
            await self._replay(nc, report, last, progress)
            report.seconds["replay"] = time.perf_counter() - started
            started = time.perf_counter()
            async with swap.write(self.database) as conn:
                await conn.run_sync(self._finish_sync)
            report.seconds["finish"] = time.perf_counter() - started
            started = time.perf_counter()
            await self._swap(nc, report)
            report.seconds["swap"] = time.perf_counter() - started
            return report
        finally:
            await nc.close()

    async def _replay(
        self, nc: Client, report: RebuildReport, last: int, progress: Progress | None
    ) -> Touched:
        """Apply the stream after ``report.position`` up to ``last``, a batch per transaction."""
        touched = Touched()
        if last <= report.position:
            return touched
        pending: list[Replayed] = []
        async for messages in read_ahead(
            stream_messages(nc, self.regency, report.position + 1, last, self.fetch)
        ):
            events, invalid = decode(messages)
            pending += events
            report.read += len(messages)
            report.invalid += invalid
            if len(pending) >= self.batch_size:
                touched |= await self._apply(pending)
                pending = []
            if progress is not None:
                progress.advance(len(messages))
        if pending:
            touched |= await self._apply(pending)
        report.position = last
        return touched

    async def _apply(self, events: Sequence[Replayed]) -> Touched:
        async with swap.write(self.database) as conn:
            return await conn.run_sync(apply_batch_sync, REBUILD, events, timezone=self.timezone)

    def _finish_sync(self, conn: Connection) -> None:
        indicators.refresh_all_sync(conn, REBUILD, today=self.today, regency=self.regency)
        first = conn.scalar(select(REBUILD.units.c.established_on).order_by(REBUILD.units.c.established_on))
        if first is not None:
            phases.reassess_sync(conn, REBUILD, first, today=self.today, criteria=self.criteria)

    async def _swap(self, nc: Client, report: RebuildReport) -> None:
        """Swap; while the live projection is ahead, apply the tail to the rebuilt one first."""
        while True:
            live = await swap.try_swap(self.database)
            if live is None:
                return
            report.tail_rounds += 1
            last = max(live, await last_sequence(nc, self.regency))
            touched = await self._replay(nc, report, last, None)
            async with swap.write(self.database) as conn:
                await conn.run_sync(self._refresh_sync, touched)

    def _refresh_sync(self, conn: Connection, touched: Touched) -> None:
        indicators.refresh_sync(conn, REBUILD, touched, today=self.today, regency=self.regency)
        if touched.earliest is not None:
            phases.reassess_sync(conn, REBUILD, touched.earliest, today=self.today, criteria=self.criteria)


def prepare_sync(conn: Connection, fresh: bool) -> int:
    """Make the ``rebuild_`` tables ready; return the position to resume from (0 when fresh).

    A complete set left by a rebuild that died is resumed unless ``fresh``; anything else left
    (some tables of a set, or ``fresh``) is dropped and the set created again.
    """
    present = set(inspect(conn).get_table_names())
    names = {table.name for table in REBUILD.all}
    if not fresh and names <= present:
        seq = position_sync(conn, REBUILD)
        conn.commit()
        return seq
    rebuild_metadata.drop_all(conn, tables=list(REBUILD.all), checkfirst=True)
    rebuild_metadata.create_all(conn, tables=list(REBUILD.all))
    conn.commit()
    return 0


async def connect(nats_url: str, settings: Settings | None = None) -> Client:
    """A connection to the regency's NATS server (with its TLS settings, when given)."""
    tls = nats_tls(settings) if settings is not None else None
    return await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=3, tls=tls)


async def last_sequence(nc: Client, regency: str) -> int:
    """The sequence of the last message in the regency's stream (0 when it has none)."""
    try:
        return int((await nc.jetstream().stream_info(stream_name(regency))).state.last_seq)
    except NotFoundError:
        return 0


async def stream_messages(
    nc: Client, regency: str, first: int, last: int, fetch: int = FETCH
) -> AsyncIterator[list[Msg]]:
    """The regency's messages from sequence ``first`` to ``last``, in order, up to ``fetch`` at
    a time, through an ephemeral pull consumer (no acks, in memory, deleted at the end, and by
    the server after a minute of silence if this process dies).

    Pull requests are answered on an inbox of our own, collected by its callback: nats-py's
    ``fetch`` waits for each message with a timer of its own, which costs more than reading it.
    """
    if last < first:
        return
    js = nc.jetstream()
    stream = stream_name(regency)
    consumer = nc.new_inbox().rsplit(".", 1)[-1]
    await js.add_consumer(
        stream,
        ConsumerConfig(
            name=consumer,
            filter_subject=regency_subjects(regency),
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=first,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=60.0,
            mem_storage=True,
            num_replicas=1,
        ),
    )
    pulls = _Pulls(nc, f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}")
    await pulls.open()
    try:
        seq = first - 1
        while seq < last:
            messages = await pulls.fetch(min(fetch, last - seq))
            if not messages:
                return  # the stream holds no more (messages erased from the range)
            in_range = [m for m in messages if stream_seq(m) <= last]
            if in_range:
                seq = stream_seq(in_range[-1])
                yield in_range
            if len(in_range) < len(messages):
                return
    finally:
        await pulls.close()
        with contextlib.suppress(NotFoundError, nats.errors.Error):
            await js.delete_consumer(stream, consumer)


class _Pulls:
    """Pull requests of one consumer, answered on an inbox of its own."""

    def __init__(self, nc: Client, subject: str) -> None:
        self.nc = nc
        self.subject = subject
        self._inbox = nc.new_inbox()
        self._subscription: Subscription | None = None
        self._received: list[Msg] = []
        self._wanted = 0
        self._answered = asyncio.Event()

    async def open(self) -> None:
        """Listen on the inbox."""
        self._subscription = await self.nc.subscribe(self._inbox, cb=self._deliver)

    async def close(self) -> None:
        """Stop listening."""
        if self._subscription is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._subscription.unsubscribe()
            self._subscription = None

    async def fetch(self, count: int) -> list[Msg]:
        """Up to ``count`` messages that are in the stream now (none when it holds no more)."""
        self._answered.clear()
        self._wanted = count
        request = json.dumps({"batch": count, "no_wait": True}).encode()
        await self.nc.publish(self.subject, request, reply=self._inbox)
        await asyncio.wait_for(self._answered.wait(), PULL_TIMEOUT)
        batch, self._received = self._received, []
        return batch

    async def _deliver(self, message: Msg) -> None:
        status = message.headers.get("Status") if message.headers else None
        if status is None:
            self._received.append(message)
            if len(self._received) >= self._wanted:
                self._answered.set()
        elif status != "100":  # no more messages now (404), or the request ended (408, 409)
            self._answered.set()


def stream_seq(msg: Msg) -> int:
    """The stream sequence of a JetStream message, from its reply subject
    (``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.…``, or with a domain and an
    account hash after ``$JS.ACK``, as nats-py reads it): ``msg.metadata`` parses the whole
    subject into objects, which costs as much as applying the event."""
    tokens = msg.reply.split(".")
    return int(tokens[5] if len(tokens) == 9 else tokens[7])


async def read_ahead(batches: AsyncIterator[list[Msg]], depth: int = AHEAD) -> AsyncIterator[list[Msg]]:
    """``batches``, read up to ``depth`` ahead by a task of their own (the store works meanwhile)."""
    queue: asyncio.Queue[list[Msg] | BaseException | None] = asyncio.Queue(maxsize=depth)

    async def fill() -> None:
        try:
            async for batch in batches:
                await queue.put(batch)
            await queue.put(None)
        except Exception as exc:
            await queue.put(exc)

    task = asyncio.create_task(fill(), name="rebuild read-ahead")
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def decode(messages: Sequence[Msg], types: Collection[str] | None = None) -> tuple[list[Replayed], int]:
    """The events of ``messages`` that the live consumer applies (of ``types``, or all), and how
    many were invalid."""
    events: list[Replayed] = []
    invalid = 0
    for msg in messages:
        try:
            event = parse_event(msg.data)
        except InvalidEvent:
            invalid += 1
            continue
        if types and event.type not in types:
            continue
        events.append(Replayed(event, stream_seq(msg)))
    return events, invalid


def rebuild_for(settings: Settings, *, today: date | None = None, batch_size: int = BATCH) -> Rebuild:
    """The rebuild of ``settings``' regency: its store, its NATS server, its programme's phase
    criteria, and its clock's today."""
    deps = ReportingDeps.build(settings)
    return Rebuild(
        database=swap.database_for(settings),
        nats_url=settings.nats_url,
        regency=settings.regency,
        timezone=settings.timezone,
        criteria=deps.phase_criteria,
        today=today or clock_from(settings.clock, settings.timezone, settings.clock_start).today(),
        batch_size=batch_size,
        settings=settings,
    )
