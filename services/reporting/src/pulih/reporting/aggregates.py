"""The monthly ``AggregateReported``: the only event that leaves a regency.

:func:`publish_aggregates` is a periodic job (``app.py``; a manual clock runs it whenever it
moves). Each run looks at every *closed* month, from the first month with data up to the month
before today's (the regency's local day, ``runtime.clock.today()``):

- it rolls the projection forward in time first: stocks (``clients_active``,
  ``referrals_overdue``) counted on a closed month's last day, and unit phases assessed (closed
  months only) from the earliest closed day the consumer noted as changed, and for every month
  that closed since the last run (:func:`pulih.reporting.phases.catch_up`);
- it reads the month's true figures: the regency-level indicator cells and ``units_by_phase``
  (the units in each phase after that month's assessment);
- it publishes when the month was never published, or when its true figures changed since the
  last publication (a late event: a session synced days later into a closed month; compared
  through ``true_digest``, a hash of the unsuppressed figures).

Publishing suppresses small counts (:mod:`pulih.reporting.domain.suppression`, threshold
``[reporting] suppressed_below``) from the month's figures alone: each revision hides what its
own figures require, so a cell hidden while a month was young is published once it has grown
(the module :mod:`pulih.reporting.domain.suppression` says what comparing revisions can still
tell). It emits the event through the unit of work (the outbox; the relay publishes it to
``ibm.<regency>.reporting.aggregate_reported``) together with its ``published_aggregates`` row, in
one transaction: both are kept or neither.

**A change only in hidden cells is not published.** When the true figures changed but what
would be published (``indicators`` with their nulls, ``units_by_phase``) equals the latest
revision's, a new revision would tell the national office that a hidden count changed and
nothing else: none is published. The latest revision's ``true_digest`` takes the new figures'
hash instead, so the month is not tried again until its figures change once more
(``true_digest`` never leaves the regency; it stands for the figures the latest revision
answers for).

**Which one counts.** Each publication of a month carries ``revision``: 1 the first time, one
more each time the month is published again. A consumer keeps, for each ``period``, the
aggregate with the highest ``revision`` (``generated_at`` grows with it, but two revisions can
share a day); an older revision arriving late changes nothing. Two replicas running this job
cannot both publish a revision: ``(period, revision)`` is the key of ``published_aggregates``,
so the second one's transaction fails and its event never leaves the outbox.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.contracts.codes import Indicator, UnitPhase
from pulih.contracts.events.reporting import AggregateReported
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.unit_of_work import UnitOfWork
from pulih.reporting import indicators, phases, swap
from pulih.reporting.deps import ReportingDeps
from pulih.reporting.domain.suppression import suppress
from pulih.reporting.projection import Touched
from pulih.reporting.store import LIVE, ProjectionTables, published_aggregates


@dataclass(frozen=True)
class MonthFigures:
    """A month's true figures, before suppression."""

    period: str
    indicators: dict[str, int]
    units_by_phase: dict[str, int]

    @property
    def digest(self) -> str:
        """A hash of the figures: equal digests, equal figures."""
        canonical = json.dumps(
            {"indicators": self.indicators, "units_by_phase": self.units_by_phase}, sort_keys=True
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class LastPublished:
    """The latest revision published for a month."""

    revision: int
    true_digest: str
    indicators: dict[str, int | None]
    units_by_phase: dict[str, int]

    def shows(self, indicators: dict[str, int | None], units_by_phase: dict[str, int]) -> bool:
        """Whether publishing these figures would repeat this revision."""
        return indicators == self.indicators and units_by_phase == self.units_by_phase


def _month(index: int) -> str:
    return phases.month_name(index)


async def _roll_forward(
    session: AsyncSession, tables: ProjectionTables, *, today: date, deps: ReportingDeps, regency: str
) -> None:
    """Count closed months' stocks on their last day, and assess unit phases that are due."""
    position = tables.position
    counted_on = await session.scalar(
        select(position.c.event_time).where(position.c.consumer == indicators.STOCKS_COUNTED)
    )
    if counted_on is None or _as_date(counted_on) < today:
        await indicators.refresh(session, tables, Touched(), today=today, regency=regency)
    await phases.catch_up(session, tables, today=today, criteria=deps.phase_criteria)


def _as_date(value: datetime | date) -> date:
    return value.date() if isinstance(value, datetime) else value


async def closed_months(
    session: AsyncSession, tables: ProjectionTables, *, today: date, regency: str
) -> list[str]:
    """The months from the first one with data (an indicator or a unit's assessment) to the one
    before ``today``'s."""
    cells, p = tables.indicator_cells, tables.unit_phases
    first_cell = await session.scalar(
        select(func.min(cells.c.period)).where(
            cells.c.level == "regency", cells.c.org_id == regency, func.length(cells.c.period) == 7
        )
    )
    first_phase = await session.scalar(select(func.min(p.c.period)))
    firsts = [m for m in (first_cell, first_phase) if m is not None]
    if not firsts:
        return []
    start = phases.month_index(date(int(min(firsts)[:4]), int(min(firsts)[5:7]), 1))
    return [_month(i) for i in range(start, phases.month_index(today))]


async def true_figures(
    session: AsyncSession, tables: ProjectionTables, periods: list[str], *, regency: str
) -> dict[str, MonthFigures]:
    """Each month's unsuppressed figures: every indicator (0 where no cell) and units by phase."""
    if not periods:
        return {}
    cells, p = tables.indicator_cells, tables.unit_phases
    found: dict[str, dict[str, int]] = {period: {} for period in periods}
    rows = await session.execute(
        select(cells.c.period, cells.c.indicator, cells.c.value).where(
            cells.c.level == "regency",
            cells.c.org_id == regency,
            cells.c.period >= periods[0],
            cells.c.period <= periods[-1],
            func.length(cells.c.period) == 7,
        )
    )
    for period, name, value in rows:
        found[period][name] = int(value)
    by_phase: dict[str, dict[str, int]] = {period: dict.fromkeys(UnitPhase, 0) for period in periods}
    counted = await session.execute(
        select(p.c.period, p.c.phase, func.count())
        .where(p.c.period >= periods[0], p.c.period <= periods[-1])
        .group_by(p.c.period, p.c.phase)
    )
    for period, phase, count in counted:
        by_phase[period][phase] = int(count)
    return {
        period: MonthFigures(
            period,
            {indicator.value: found[period].get(indicator.value, 0) for indicator in Indicator},
            {str(phase): count for phase, count in by_phase[period].items()},
        )
        for period in periods
    }


async def latest_published(session: AsyncSession) -> dict[str, LastPublished]:
    """The latest revision published for each month."""
    t = published_aggregates
    latest = select(t.c.period, func.max(t.c.revision).label("revision")).group_by(t.c.period).subquery()
    rows = await session.execute(
        select(t.c.period, t.c.revision, t.c.true_digest, t.c.indicators, t.c.units_by_phase).join(
            latest, (latest.c.period == t.c.period) & (latest.c.revision == t.c.revision)
        )
    )
    return {
        period: LastPublished(revision, digest, dict(shown), dict(by_phase))
        for period, revision, digest, shown, by_phase in rows
    }


async def publish(
    uow: UnitOfWork,
    figures: MonthFigures,
    *,
    regency: str,
    below: int,
    now: datetime,
    last: LastPublished | None,
) -> AggregateReported | None:
    """Emit ``figures`` as the month's next revision and record it in ``published_aggregates``;
    ``None`` when that revision would show what ``last`` shows (only ``last``'s digest moves)."""
    shown = suppress(figures.indicators, below=below)
    if last is not None and last.shows(shown, figures.units_by_phase):
        t = published_aggregates
        await uow.session.execute(
            update(t)
            .where(t.c.period == figures.period, t.c.revision == last.revision)
            .values(true_digest=figures.digest)
        )
        return None
    event = AggregateReported(
        regency=regency,
        period=figures.period,
        generated_at=now,
        indicators={Indicator(name): value for name, value in shown.items()},
        units_by_phase={UnitPhase(phase): count for phase, count in figures.units_by_phase.items()},
        suppressed_below=below,
        revision=1 if last is None else last.revision + 1,
    )
    envelope = await uow.emit(event)
    await uow.session.execute(
        insert(published_aggregates).values(
            period=figures.period,
            revision=event.revision,
            event_id=envelope.id,
            generated_at=now,
            indicators=shown,
            units_by_phase=figures.units_by_phase,
            suppressed_below=below,
            true_digest=figures.digest,
        )
    )
    return event


async def publish_aggregates(runtime: ServiceRuntime) -> int:
    """Publish the aggregate of every closed month never published or whose true figures
    changed since; returns how many revisions were published (see the module's docstring)."""
    deps = runtime.deps_as(ReportingDeps)
    regency = runtime.settings.regency
    today = runtime.clock.today()
    published = 0
    async with runtime.unit_of_work() as uow:
        # The live consumer's batches recount cells and assess phases too: one at a time.
        await uow.session.run_sync(lambda session: swap.take_write_lock_sync(session.connection()))
        await _roll_forward(uow.session, LIVE, today=today, deps=deps, regency=regency)
        months = await closed_months(uow.session, LIVE, today=today, regency=regency)
        figures = await true_figures(uow.session, LIVE, months, regency=regency)
        latest = await latest_published(uow.session)
        for period in months:
            last = latest.get(period)
            if last is not None and last.true_digest == figures[period].digest:
                continue
            event = await publish(
                uow,
                figures[period],
                regency=regency,
                below=deps.suppressed_below,
                now=runtime.clock.now(),
                last=last,
            )
            if event is not None:
                published += 1
    return published


async def published(
    session: AsyncSession, *, period: str | None = None, every_revision: bool = False
) -> list[Any]:
    """What left the regency: the latest revision of each month (or every revision), for one
    ``period`` or all, oldest first. ``true_digest`` stays inside: a hash of a few small counts
    could be matched by trying every value the nulls may hide."""
    t = published_aggregates
    columns = [column for column in t.c if column.name != "true_digest"]
    stmt = select(*columns).order_by(t.c.period, t.c.revision)
    if period is not None:
        stmt = stmt.where(t.c.period == period)
    if not every_revision:
        latest = select(t.c.period, func.max(t.c.revision).label("revision")).group_by(t.c.period).subquery()
        stmt = stmt.join(latest, (latest.c.period == t.c.period) & (latest.c.revision == t.c.revision))
    return list((await session.execute(stmt)).all())
