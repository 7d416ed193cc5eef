"""Reporting's tests' projection on a real store (SQLite and PostgreSQL), fed batches of events as
the live consumer feeds it, read cell by cell and row by row; and the envelopes and ids they feed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from reporting_histories import Delivery
from sqlalchemy import Table, select

import pulih.reporting
from pulih.contracts import CloudEvent, Event, new_event
from pulih.kit.database import Database
from pulih.kit.testing import REGENCY
from pulih.reporting import indicators, projection
from pulih.reporting.store import LIVE

MIGRATIONS = Path(pulih.reporting.__file__).parent / "migrations"
TODAY = date(2026, 3, 15)
TIMEZONE = "Asia/Jakarta"


def envelope(data: Event, on: date | None = None, **extra: Any) -> CloudEvent[Any]:
    """``data`` in its envelope, published at 10:00 in Jakarta on ``on`` (default: today)."""
    when = datetime.combine(on or TODAY, time(3, 0), tzinfo=UTC)
    return new_event(data, regency=REGENCY, time=extra.pop("time", when), **extra)


@dataclass
class Projection:
    """Reporting's live tables on one store, fed batch by batch."""

    database: Database
    seq: int = 0

    async def feed(
        self, *items: Event | CloudEvent[Any] | Delivery, today: date = TODAY, defer: bool = False
    ) -> projection.Touched:
        """Apply ``items`` as one batch (events get the next stream sequences) and refresh."""
        batch: list[Delivery] = []
        for item in items:
            if isinstance(item, Delivery):
                batch.append(item)
                continue
            self.seq += 1
            batch.append(Delivery(item if isinstance(item, CloudEvent) else envelope(item), self.seq))
        async with self.database.transaction() as session:
            touched = await projection.apply_batch(session, LIVE, batch, timezone=TIMEZONE)
            await indicators.refresh(session, LIVE, touched, today=today, regency=REGENCY, defer=defer)
        return touched

    async def recount(self, today: date = TODAY) -> None:
        """Recount every cell, as a rebuild does."""
        async with self.database.transaction() as session:
            await indicators.refresh_all(session, LIVE, today=today, regency=REGENCY)

    async def cells(self, level: str = "regency", org_id: str = REGENCY) -> dict[tuple[str, str], int]:
        """(period, indicator) → value of one org unit."""
        c = LIVE.indicator_cells
        query = select(c.c.period, c.c.indicator, c.c.value).where(c.c.level == level, c.c.org_id == org_id)
        async with self.database.transaction() as session:
            return {(r.period, r.indicator): r.value for r in await session.execute(query)}

    async def all_cells(self) -> set[tuple[str, str, str, str, int]]:
        c = LIVE.indicator_cells
        async with self.database.transaction() as session:
            return {tuple(r) for r in await session.execute(select(c))}  # type: ignore[misc]

    async def rows(self, table: Table) -> list[Any]:
        async with self.database.transaction() as session:
            return list(await session.execute(select(table)))


def ids(n: int) -> Sequence[uuid.UUID]:
    """``n`` fresh ids."""
    return [uuid.uuid4() for _ in range(n)]
