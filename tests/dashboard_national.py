"""A national-mode reporting service with a few regencies' aggregates behind it, for the
national dashboard's browser tests.

Three regencies of the federation list the test writes (Cilacap 3301 and Banyumas 3302 in Jawa
Tengah, Kota Kendari 7471 in Sulawesi Tenggara) report May to October 2026, some figures
suppressed (null), Cilacap's October twice (revision 2 wins), and Kendari silent for October, the
last closed month on the service's clock (15 November 2026). The aggregates go through the
national view's own projection (``apply_aggregates``) into a SQLite store; then ``uvicorn``
serves the real app on it in national mode, on a free port, NATS down.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime
from pathlib import Path

from dashboard_support import reporting_process

from pulih.contracts.codes import Indicator, UnitPhase
from pulih.contracts.events.reporting import AggregateReported
from pulih.kit.auth import Role, issue_token
from pulih.kit.database import Database
from pulih.kit.migrations import upgrade_to_head
from pulih.kit.testing import JWT_SECRET
from pulih.reporting.national.projection import apply_aggregates

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "services" / "reporting" / "src" / "pulih" / "reporting" / "migrations"
TODAY = date(2026, 11, 15)
"""The national office's day: October 2026 is the last closed month."""
MONTHS = ["2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10"]
SUPPRESSED_BELOW = 5

REGENCIES = {"3301": "Cilacap", "3302": "Banyumas", "7471": "Kota Kendari"}
SCREENED: dict[str, list[int | None]] = {
    "3301": [40, 42, 45, 47, 50, 52],
    "3302": [20, None, 25, 28, 30, None],
    "7471": [10, 12, None, 15, 18],  # nothing for October: silent
}
"""``clients_screened`` by regency and month (None: suppressed)."""
CILACAP_OCTOBER_FIRST = 49
"""Cilacap's first October figure, which its revision 2 (52) replaces."""
PHASES: dict[str, dict[UnitPhase, int]] = {
    "3301": {
        UnitPhase.RINTISAN: 2,
        UnitPhase.TUMBUH: 3,
        UnitPhase.BERKEMBANG: 4,
        UnitPhase.TANGGUH: 2,
        UnitPhase.PRIMA: 1,
    },
    "3302": {
        UnitPhase.RINTISAN: 3,
        UnitPhase.TUMBUH: 2,
        UnitPhase.BERKEMBANG: 1,
        UnitPhase.TANGGUH: 0,
        UnitPhase.PRIMA: 0,
    },
    "7471": {
        UnitPhase.RINTISAN: 4,
        UnitPhase.TUMBUH: 1,
        UnitPhase.BERKEMBANG: 0,
        UnitPhase.TANGGUH: 0,
        UnitPhase.PRIMA: 0,
    },
}
"""Each regency's units by phase in October (earlier, some of its tumbuh units were rintisan)."""


def national_token(role: Role = Role.NATIONAL) -> str:
    """A token for the national view (``"regency": "national"``)."""
    return issue_token(JWT_SECRET, sub=f"{role}-national-test", role=role, regency="national")


def _indicators(code: str, month: int, screened: int | None) -> dict[Indicator, int | None]:
    """Every indicator of one regency's month: ``clients_screened`` as given, the others made up
    (small ones suppressed as a regency would)."""
    figures: dict[Indicator, int | None] = {}
    for n, indicator in enumerate(Indicator):
        value = (int(code) % 97 + 7 * n + 3 * month) % 60
        figures[indicator] = None if 0 < value < SUPPRESSED_BELOW else value
    figures[Indicator.CLIENTS_SCREENED] = screened
    return figures


def _phases(code: str, month: int) -> dict[UnitPhase, int]:
    phases = dict(PHASES[code])
    younger = min(phases[UnitPhase.TUMBUH], (len(MONTHS) - 1 - month) // 2)
    phases[UnitPhase.TUMBUH] -= younger
    phases[UnitPhase.RINTISAN] += younger
    return phases


def aggregates() -> list[AggregateReported]:
    """The aggregates the hub has received, in arrival order."""
    events = []
    for code, figures in SCREENED.items():
        for month, (period, screened) in enumerate(zip(MONTHS, figures, strict=False)):
            revisions = [(1, screened)]
            if code == "3301" and period == "2026-10":
                revisions = [(1, CILACAP_OCTOBER_FIRST), (2, screened)]
            for revision, value in revisions:
                year, mm = (int(part) for part in period.split("-"))
                events.append(
                    AggregateReported(
                        regency=code,
                        period=period,
                        generated_at=datetime(year, mm, 28, 17, revision, tzinfo=UTC),
                        indicators=_indicators(code, month, value),
                        units_by_phase=_phases(code, month),
                        suppressed_below=SUPPRESSED_BELOW,
                        revision=revision,
                    )
                )
    return events


FEDERATION = """\
[hub]
host = "127.0.0.1"
client_port = 4222
leaf_port = 7422
{regencies}"""


def federation_file(data_dir: Path) -> Path:
    """The federation list naming the three regencies (so that a silent one is expected)."""
    regencies = "".join(
        f'\n[[regencies]]\ncode = "{code}"\nname = "{name}"\nclinics = []\n'
        for code, name in REGENCIES.items()
    )
    path = data_dir / "federation.toml"
    path.write_text(FEDERATION.format(regencies=regencies), encoding="utf-8")
    return path


async def _project(url: str) -> None:
    database = Database(url)
    try:
        await upgrade_to_head(database, MIGRATIONS)
        async with database.transaction() as session:
            await apply_aggregates(session, aggregates(), received_at=datetime(2026, 11, 2, 1, tzinfo=UTC))
    finally:
        await database.dispose()


def seed(data_dir: Path) -> str:
    """A SQLite store in ``data_dir`` holding the national view of :func:`aggregates`; its URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite+aiosqlite:///{data_dir / 'national.db'}"
    asyncio.run(_project(url))
    return url


def national_server(data_dir: Path, database_url: str, timeout: float = 60) -> AbstractContextManager[str]:
    """``uvicorn pulih.reporting.app:app`` in national mode on a free port, its clock on
    :data:`TODAY`; yields its base URL and stops it afterwards."""
    return reporting_process(
        data_dir,
        database_url,
        today=TODAY,
        timeout=timeout,
        PULIH_REPORTING_MODE="national",
        PULIH_FEDERATION_FILE=str(federation_file(data_dir)),
    )
