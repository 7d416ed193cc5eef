"""Reporting's use cases, each in the caller's unit of work (ARCHITECTURE.md, "Inside a service").

Reporting takes no commands: its one use case is bringing the live projection up to date with a
batch of the regency's stream (:func:`project_batch`): the projection tables
(:func:`projection.apply_batch`, which keeps its own inbox and position), the indicator cells the
batch changed (:func:`indicators.refresh`), and the earliest day it changed, noted for the unit
phases (:func:`phases.note_changed`), in one transaction with the projection's write lock.

Assessing the unit phases reads every unit's facts: about 1.2 to 1.5 s on a regency of a
million events (SQLite), as long as everything else a small batch costs. So a batch only notes
where the facts changed, and the phases catch up from there (:func:`phases.catch_up`) at most
every :data:`PHASES_AT_MOST_EVERY` seconds in the consumer, and in the aggregates job
(:func:`pulih.reporting.aggregates.publish_aggregates`, every ``PULIH_SCHEDULER_SECONDS``): the
dashboard's phases lag the events by at most about that long, never a minute (phases are of
closed months only: an event of the running month counts once the month closes).

:class:`LiveProjection` is what the live consumer calls for each batch: while it catches up
(full batches: more are waiting) the recount waits for the last batch, or at most
:data:`RECOUNT_AT_LEAST_EVERY` seconds, and so do the phases. While it keeps up with a live
stream (a batch of one or a few events every few milliseconds), it recounts at most every
:data:`RECOUNT_AT_MOST_EVERY` seconds: a recount costs much the same whatever the batch (some
100 ms of CPU on a regency of 10^5 events, SQLite), and once a batch it was nine tenths of the
consumer's CPU at 200 events/s (4 ms an event). A batch that comes sooner only notes where
it began (as a catch-up's batches do); the next batch after that long recounts, and a job
(:func:`recount_job`, every :data:`RECOUNT_AT_MOST_EVERY` seconds) recounts what the last
batches deferred when no batch follows: the indicators lag the events by at most about that
long. (The job costs a query by key when nothing is deferred.)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pulih.kit.batch_consumer import Received
from pulih.kit.clock import Clock
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.unit_of_work import UnitOfWork
from pulih.reporting import indicators, phases, projection, swap
from pulih.reporting.deps import JobPacing, ReportingDeps
from pulih.reporting.domain.phases import PhaseCriteria
from pulih.reporting.store import LIVE, ProjectionTables

BATCH_SIZE = 1000
"""Events per transaction: large enough that a commit's cost spreads thin on catch-up."""

RECOUNT_AT_LEAST_EVERY = 30.0
"""Seconds: while catching up, the indicators are still recounted this often."""

RECOUNT_AT_MOST_EVERY = 2.0
"""Seconds: the live consumer recounts the indicators at most this often; a batch that comes
sooner defers its recount to the next batch after that, or to :func:`recount_job`."""

LINGER = 0.02
"""Seconds the live consumer waits for a batch to fill once it holds an event (the kit's
``linger``): at 200 events/s a batch of a few events rather than one, each paying a batch's
fixed cost (its transaction, position, markers) once. Short: the end-to-end latency that
``bench/latency_e2e.py`` measures ends at reporting's ``applied_events``."""

PHASES_AT_MOST_EVERY = 30.0
"""Seconds: the live consumer assesses the unit phases at most this often (the job does too)."""


async def project_batch(
    uow: UnitOfWork,
    received: Sequence[projection.Delivered],
    *,
    today: date,
    regency: str,
    timezone: str,
    criteria: PhaseCriteria | Mapping[str, Any],
    defer: bool = False,
    assess: bool = False,
    tables: ProjectionTables = LIVE,
) -> date | None:
    """Apply ``received`` (in stream order) to the projection and recount what it changed, in
    ``uow``'s transaction, holding the projection's write lock (a swap is wholly before or
    after). ``defer``: only remember where the batch began (a consumer with more batches
    waiting). The unit phases are noted as changed from the batch's earliest day and, with
    ``assess``, caught up. Returns the first day recounted from (None when nothing was)."""
    await uow.session.run_sync(lambda session: swap.take_write_lock_sync(session.connection()))
    touched = await projection.apply_batch(uow.session, tables, received, timezone=timezone)
    since = await indicators.refresh(uow.session, tables, touched, today=today, regency=regency, defer=defer)
    await phases.note_changed(uow.session, tables, touched.earliest)
    if assess and not defer:
        await phases.catch_up(uow.session, tables, today=today, criteria=criteria)
    return since


async def recount_deferred(
    uow: UnitOfWork,
    *,
    today: date,
    regency: str,
    timezone: str,
    criteria: PhaseCriteria | Mapping[str, Any],
    assess: bool = False,
    tables: ProjectionTables = LIVE,
) -> date | None:
    """The recount that batches applied with ``defer`` left for later, if one is still left (in
    ``uow``'s transaction, holding the projection's write lock): the first day recounted from,
    or None when none was left. With ``assess`` the unit phases are caught up too."""
    await uow.session.run_sync(lambda session: swap.take_write_lock_sync(session.connection()))
    if await indicators.deferred_since(uow.session, tables) is None:
        return None
    return await project_batch(
        uow,
        [],
        today=today,
        regency=regency,
        timezone=timezone,
        criteria=criteria,
        assess=assess,
        tables=tables,
    )


async def recount_job(runtime: ServiceRuntime) -> int:
    """The periodic job that recounts what the live consumer's last batches deferred when no
    batch came after them (:func:`recount_deferred`), and then catches the unit phases up, at
    most every :data:`PHASES_AT_MOST_EVERY` seconds (as the consumer would have). Returns 0: the
    recounts are the indicators' routine, not changes worth a log line every few seconds."""
    settings, deps = runtime.settings, runtime.deps_as(ReportingDeps)
    now, pacing = time.monotonic(), deps.pacing
    if pacing.catching_up or now - pacing.recounted < RECOUNT_AT_MOST_EVERY:
        return 0  # the consumer catches up, or recounted lately: it, or the next round, will
    assess = pacing.assessed is None or now - pacing.assessed >= PHASES_AT_MOST_EVERY
    async with runtime.unit_of_work() as uow:
        since = await recount_deferred(
            uow,
            today=runtime.clock.today(),
            regency=settings.regency,
            timezone=settings.timezone,
            criteria=deps.phase_criteria,
            assess=assess,
        )
    if since is not None:
        pacing.recounted = now
        if assess:
            pacing.assessed = now
    return 0


@dataclass
class LiveProjection:
    """The live consumer's batch handler: :func:`project_batch` on the regency's day, deferring
    the recount while full batches say more are waiting (but not past ``recount_every``), and
    while the last recount here is under ``settle`` seconds old (0: never; :func:`recount_job`
    recounts what no later batch did)."""

    regency: str
    timezone: str
    criteria: PhaseCriteria | Mapping[str, Any]
    clock: Clock
    batch_size: int = BATCH_SIZE
    recount_every: float = RECOUNT_AT_LEAST_EVERY
    phases_every: float = PHASES_AT_MOST_EVERY
    recounted: float = field(default_factory=time.monotonic)
    """When the indicators were last recounted (``time.monotonic``)."""
    assessed: float | None = None
    """When the unit phases were last assessed here (None: not yet, since the start)."""
    settle: float = 0.0
    """Seconds: a batch within this long of the last recount defers it (0: never)."""
    pacing: JobPacing | None = None
    """Shared with :func:`recount_job`: its recounts count as the last recount too."""

    @classmethod
    def of(cls, runtime: ServiceRuntime) -> LiveProjection:
        """The handler of ``runtime``'s regency, clock and phase criteria."""
        settings = runtime.settings
        criteria = runtime.deps_as(ReportingDeps).phase_criteria
        return cls(
            regency=settings.regency,
            timezone=settings.timezone,
            criteria=criteria,
            clock=runtime.clock,
            settle=RECOUNT_AT_MOST_EVERY,
            pacing=runtime.deps_as(ReportingDeps).pacing,
        )

    async def __call__(self, uow: UnitOfWork, received: Sequence[Received]) -> None:
        # A full batch means more are waiting: recount once the consumer has caught up, not
        # after every batch of a year's backlog (but at least every ``recount_every``).
        now = time.monotonic()
        full = len(received) >= self.batch_size
        behind = full and now - self.recounted < self.recount_every
        # A live stream: recount at most every ``settle`` seconds (recount_job does the last).
        last = self.recounted
        if self.pacing is not None:
            last, self.pacing.catching_up = max(last, self.pacing.recounted), full
        behind = behind or now - last < self.settle
        assess = self.assessed is None or now - self.assessed >= self.phases_every
        since = await project_batch(
            uow,
            received,
            today=self.clock.today(),
            regency=self.regency,
            timezone=self.timezone,
            criteria=self.criteria,
            defer=behind,
            assess=assess,
        )
        if since is not None:
            self.recounted = now
            if self.pacing is not None:
                self.pacing.recounted = now
        if assess and not behind:
            self.assessed = now
