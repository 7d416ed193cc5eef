"""Aggregates over random regency histories: events reach reporting day by day as devices sync
(late ones into closed months among them), the job runs each day, and every aggregate it ever
publishes shows the true figures of its moment, hides every small count, and lets no null be
worked out; at the end the latest revision of every closed month shows today's true figures."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from reporting_histories import REGENCY, TIMEZONE, Delivery, History, histories
from sqlalchemy import select
from test_suppression_solver import pinned_cells, published_is_consistent

from pulih.contracts import parse_event
from pulih.kit.clock import ManualClock
from pulih.kit.database import Database
from pulih.kit.emitter import Emitter
from pulih.kit.migrations import upgrade_to_head
from pulih.kit.outbox import outbox_table
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.settings import Settings
from pulih.reporting import indicators, phases, projection
from pulih.reporting.aggregates import publish_aggregates
from pulih.reporting.deps import ReportingDeps
from pulih.reporting.store import LIVE

MIGRATIONS = Path(phases.__file__).parent / "migrations"
ZONE = ZoneInfo(TIMEZONE)
BELOW = 5


def by_day(deliveries: list[Delivery]) -> Iterator[tuple[date, list[Delivery]]]:
    """Deliveries in order, cut where the regency's day of reaching reporting changes."""
    day: date | None = None
    batch: list[Delivery] = []
    for delivery in deliveries:
        reached = max(day or date.min, delivery.event.time.astimezone(ZONE).date())
        if day is not None and reached != day:
            yield day, batch
            batch = []
        day = reached
        batch.append(delivery)
    if day is not None:
        yield day, batch


async def true_month(runtime: ServiceRuntime, period: str) -> dict[str, int]:
    cells = LIVE.indicator_cells
    async with runtime.database.sessions() as session:
        rows = await session.execute(
            select(cells.c.indicator, cells.c.value).where(
                cells.c.level == "regency", cells.c.period == period
            )
        )
        found = {name: int(value) for name, value in rows}
    return found


async def new_aggregates(runtime: ServiceRuntime, after: int) -> list[tuple[int, dict[str, Any]]]:
    async with runtime.database.sessions() as session:
        rows = await session.execute(
            select(outbox_table.c.seq, outbox_table.c.payload)
            .where(outbox_table.c.seq > after)
            .order_by(outbox_table.c.seq)
        )
        return [(seq, parse_event(payload).data.model_dump(mode="json")) for seq, payload in rows]


class Check:
    """Runs the job and checks what it published against the projection at that moment (the
    job runs whenever a month closes or a late event lands in a closed month: the only times it
    can publish)."""

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime
        self.seen = 0
        self.revisions: dict[str, int] = {}
        self.shown: dict[str, tuple[Any, Any]] = {}

    async def run(self) -> None:
        await publish_aggregates(self.runtime)
        for seq, data in await new_aggregates(self.runtime, self.seen):
            self.seen = seq
            period, shown = data["period"], data["indicators"]
            truth = await true_month(self.runtime, period)
            truth = {name: truth.get(name, 0) for name in shown}
            assert data["revision"] == self.revisions.get(period, 0) + 1, period
            self.revisions[period] = data["revision"]
            # A revision that repeats the last one would only say that a hidden count moved.
            payload = (shown, data["units_by_phase"])
            assert self.shown.get(period) != payload, period
            self.shown[period] = payload
            assert published_is_consistent(shown, truth), (period, shown, truth)
            assert all(shown[name] is None for name, count in truth.items() if 1 <= count < BELOW)
            assert pinned_cells(shown, cap=max(truth.values()) + 2) == {}, (period, shown)


async def replay(history: History, store: Path) -> None:
    settings = Settings(PULIH_REGENCY=REGENCY, PULIH_DATA_DIR=store)  # type: ignore[call-arg]
    database = Database(f"sqlite+aiosqlite:///{store / 'reporting.db'}")
    await upgrade_to_head(database, MIGRATIONS)
    deliveries = list(by_day(history.deliveries))
    clock = ManualClock(deliveries[0][0] if deliveries else history.today, TIMEZONE)
    deps = ReportingDeps(suppressed_below=BELOW)
    runtime = ServiceRuntime("reporting", settings, database, Emitter(REGENCY), deps=deps, clock=clock)
    check = Check(runtime)
    try:
        month = phases.month_index(clock.today())
        for day, batch in deliveries:
            clock.set(day)
            if phases.month_index(day) != month:  # a month closed
                month = phases.month_index(day)
                await check.run()
            async with runtime.unit_of_work() as uow:
                touched = await projection.apply_batch(uow.session, LIVE, batch, timezone=TIMEZONE)
                await indicators.refresh(uow.session, LIVE, touched, today=day, regency=REGENCY)
                await phases.note_changed(uow.session, LIVE, touched.earliest)
            if touched.earliest is not None and phases.month_index(touched.earliest) < month:
                await check.run()  # a late event into a closed month
        # Close the last month too, then nothing is left to publish.
        clock.set(date(history.today.year, history.today.month, 28) + timedelta(days=5))
        await check.run()
        assert await publish_aggregates(runtime) == 0
    finally:
        await database.dispose()


@pytest.mark.slow
@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(history=histories(max_units=3, max_months=4))
def test_every_aggregate_ever_published_is_true_and_safe(history: History) -> None:
    with tempfile.TemporaryDirectory() as store:
        asyncio.run(replay(history, Path(store)))
