"""A reporting service with a realistic projection behind it, for the dashboard's browser tests.

Fifteen months of twelve units, told by ``bench/generate_regency.py`` (every event built by its
contract model), plus two referrals no clinic answered, go through the real projection
(``projection.apply_batch``, ``indicators.refresh_all``, the monthly phase assessment) into a
SQLite store; then ``uvicorn`` serves the real app on it, on a free port, NATS down.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from dashboard_support import reporting_process
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.contracts import CloudEvent, new_event
from pulih.contracts.events.outreach import ClientRegistered, UnitEstablished
from pulih.contracts.events.referral import ReferredToClinic
from pulih.kit.database import Database
from pulih.kit.migrations import upgrade_to_head
from pulih.kit.testing import REGENCY
from pulih.reporting import indicators, phases, projection
from pulih.reporting.deps import ReportingDeps
from pulih.reporting.store import LIVE

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "services" / "reporting" / "src" / "pulih" / "reporting" / "migrations"
TODAY = date(2026, 3, 15)
"""The regency's day in these tests (the reporting clock stands on it)."""
TIMEZONE = "Asia/Jakarta"


@dataclass(frozen=True)
class Stored:
    """An event as the stream hands it over: the envelope and its sequence."""

    event: CloudEvent[Any]
    stream_seq: int


def regency_events(extra_unit_name: str | None = None) -> list[CloudEvent[Any]]:
    """Fifteen months of twelve units up to yesterday, then two referrals left unanswered (and
    a unit named ``extra_unit_name``, if given)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from generate_regency import generate, plan_for

    plan = plan_for(REGENCY, 10**9, months=15, units=12, end=date(2026, 3, 14), seed=3)
    events = [event for _, event in generate(plan)]
    clients = [e.data for e in events if isinstance(e.data, ClientRegistered)][-2:]
    for client, referred_on in zip(clients, (date(2026, 3, 2), date(2026, 3, 9)), strict=True):
        referral = ReferredToClinic(
            referral_id=uuid.uuid4(),
            client_id=client.client_id,
            unit_id=client.unit_id,
            clinic_id="klinik-pratama-cilacap",
            service="rawat_jalan",
            reason="high_risk",
            urgency="routine",
            referred_on=referred_on,
            respond_by=referred_on + timedelta(days=3),
            consent_id=uuid.uuid4(),
        )
        when = datetime(referred_on.year, referred_on.month, referred_on.day, 3, tzinfo=UTC)
        events.append(new_event(referral, regency=REGENCY, time=when))
    if extra_unit_name is not None:
        unit = UnitEstablished(
            unit_id=uuid.uuid4(),
            name=extra_unit_name,
            village_code=f"{REGENCY}249001",
            established_on=date(2026, 1, 5),
        )
        events.append(new_event(unit, regency=REGENCY, time=datetime(2026, 1, 5, 3, tzinfo=UTC)))
    return events


async def _project(url: str, events: list[CloudEvent[Any]]) -> None:
    database = Database(url)
    try:
        await upgrade_to_head(database, MIGRATIONS)
        async with database.transaction() as session:
            for start in range(0, len(events), 2000):
                batch = [Stored(e, start + i + 1) for i, e in enumerate(events[start : start + 2000])]
                await projection.apply_batch(session, LIVE, batch, timezone=TIMEZONE)
            await indicators.refresh_all(session, LIVE, today=TODAY, regency=REGENCY)
            await _assess_phases(session)
    finally:
        await database.dispose()


async def _assess_phases(session: AsyncSession) -> None:
    first = await session.scalar(select(func.min(LIVE.units.c.established_on)))
    await phases.reassess(session, LIVE, first, today=TODAY, criteria=ReportingDeps().phase_criteria)


def seed(data_dir: Path, *, extra_unit_name: str | None = None) -> str:
    """A SQLite store in ``data_dir`` holding the regency's projection; its URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite+aiosqlite:///{data_dir / 'reporting.db'}"
    asyncio.run(_project(url, regency_events(extra_unit_name)))
    return url


def reporting_server(data_dir: Path, database_url: str, timeout: float = 60) -> AbstractContextManager[str]:
    """``uvicorn pulih.reporting.app:app`` for regency :data:`REGENCY` on a free port with its
    clock on :data:`TODAY`; yields its base URL and stops it afterwards."""
    return reporting_process(data_dir, database_url, today=TODAY, timeout=timeout, PULIH_REGENCY=REGENCY)
