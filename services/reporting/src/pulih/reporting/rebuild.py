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

import contextlib
import gc
import time
from collections.abc import AsyncIterator, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from nats.aio.client import Client
from sqlalchemy import Connection, inspect, select

from pulih.contracts import CloudEvent, InvalidEvent, parse_event
from pulih.kit.clock import clock_from
from pulih.kit.database import Database
from pulih.kit.settings import Settings
from pulih.reporting import indicators, phases, swap
from pulih.reporting.cli import DEFAULT_BATCH
from pulih.reporting.deps import ReportingDeps
from pulih.reporting.projection import Touched, apply_batch_sync
from pulih.reporting.store import REBUILD, rebuild_metadata
from pulih.reporting.stream_reader import (
    FETCH,
    Body,
    connect,
    last_sequence,
    read_ahead,
    read_elsewhere,
)
from pulih.reporting.swap import position_sync

BATCH = DEFAULT_BATCH
"""Events per transaction of the replay."""
GC_FIRST_GENERATION = 50_000
"""Allocations between two collections of the youngest generation during a rebuild (700 by
default)."""


@dataclass(frozen=True, slots=True)
class Replayed:
    """One event read back from the stream, as :func:`~pulih.reporting.projection.apply_batch`
    takes it (the shape of the live consumer's ``Received``)."""

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
        with fewer_collections():
            return await self._run(fresh=fresh, progress=progress, until=until)

    async def _run(self, *, fresh: bool, progress: Progress | None, until: int | None) -> RebuildReport:
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
        # Three stages, each a task of its own with a short queue: reading, parsing, and the
        # store. While SQLite works in aiosqlite's thread (without the GIL) the next events are
        # read and parsed here, so the two cores both work.
        reading = read_elsewhere(
            self.nats_url, self.settings, self.regency, report.position + 1, last, self.fetch
        )
        async for read, events, invalid in read_ahead(decoded(reading)):
            pending += events
            report.read += read
            report.invalid += invalid
            if len(pending) >= self.batch_size:
                touched |= await self._apply(pending)
                pending = []
            if progress is not None:
                progress.advance(read)
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


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Let Python's cyclic garbage collector run less often while a replay allocates: the events
    of a batch are freed by reference counting, and with the default thresholds the collector
    walks the batch in hand again and again (about a third of the time spent parsing). Startup
    objects are frozen out of its way; everything is as it was afterwards."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_FIRST_GENERATION, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


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


async def decoded(batches: AsyncIterator[list[Body]]) -> AsyncIterator[tuple[int, list[Replayed], int]]:
    """Each batch of messages as (how many, its events, how many were invalid)."""
    async for messages in batches:
        events, invalid = decode(messages)
        yield len(messages), events, invalid


def decode(messages: Sequence[Body], types: Collection[str] | None = None) -> tuple[list[Replayed], int]:
    """The events of ``messages`` (stream sequence, body) that the live consumer applies (of
    ``types``, or all), and how many were invalid."""
    events: list[Replayed] = []
    invalid = 0
    for seq, body in messages:
        try:
            event = parse_event(body)
        except InvalidEvent:
            invalid += 1
            continue
        if types and event.type not in types:
            continue
        events.append(Replayed(event, seq))
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
