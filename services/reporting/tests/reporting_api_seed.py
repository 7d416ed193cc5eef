"""A small projection written straight into reporting's live tables, for the API's tests.

Three units in two districts of regency 3301; indicator cells for a few months and weeks; unit
phase histories; referrals in every state (two of them overdue on the clock's day); QoL changes.
The figures are chosen so each test can state the exact answer.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import insert

from pulih.kit.auth import Role
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.testing import REGENCY, auth, service_app
from pulih.reporting.app import build
from pulih.reporting.store import LIVE

TODAY = date(2026, 3, 15)
"""The reporting clock's day in these tests."""

MAWAR = uuid.UUID("00000000-0000-7000-8000-00000000000a")
MELATI = uuid.UUID("00000000-0000-7000-8000-00000000000b")
KENANGA = uuid.UUID("00000000-0000-7000-8000-00000000000c")

UNITS = [
    {"unit_id": MAWAR, "name": "Unit Mawar", "village_code": "3301012001", "district_code": "330101"},
    {"unit_id": MELATI, "name": "Unit Melati", "village_code": "3301012002", "district_code": "330101"},
    {"unit_id": KENANGA, "name": "Unit Kenanga", "village_code": "3301022001", "district_code": "330102"},
]

CELLS: dict[tuple[str, str, str], dict[str, int]] = {
    ("unit", str(MAWAR), "2026-01"): {
        "outreach_people_reached": 40,
        "clients_screened": 6,
        "screened_high": 2,
    },
    ("unit", str(MAWAR), "2026-02"): {
        "outreach_people_reached": 25,
        "sessions_held": 12,
        "sessions_attended": 9,
    },
    ("unit", str(MELATI), "2026-02"): {"outreach_people_reached": 10, "clients_enrolled": 3},
    ("unit", str(KENANGA), "2026-03"): {"clients_registered": 4},
    ("unit", str(MAWAR), "2026-W05"): {"outreach_people_reached": 25},
    ("unit", str(MAWAR), "2025-W52"): {"sessions_held": 2},
    ("unit", str(MAWAR), "2026-W01"): {"sessions_held": 3},
    ("unit", str(MAWAR), "2025-12"): {"sessions_held": 7},
    ("village", "3301012001", "2026-02"): {"outreach_people_reached": 25},
    ("village", "3301012002", "2026-02"): {"outreach_people_reached": 10},
    ("district", "330101", "2026-02"): {"outreach_people_reached": 35, "clients_enrolled": 3},
    ("district", "330102", "2026-03"): {"clients_registered": 4},
    ("regency", REGENCY, "2026-01"): {
        "outreach_people_reached": 40,
        "clients_screened": 6,
        "screened_high": 2,
    },
    ("regency", REGENCY, "2026-02"): {
        "outreach_people_reached": 35,
        "clients_enrolled": 3,
        "sessions_held": 12,
    },
    ("regency", REGENCY, "2026-03"): {"clients_registered": 4},
    ("regency", REGENCY, "2025-03"): {"clients_registered": 1},
}
"""(level, org_id, period) → the indicators that are not 0 there."""


def _phase(unit_id: uuid.UUID, period: str, phase: str, previous: str | None) -> dict[str, Any]:
    return {
        "unit_id": unit_id,
        "period": period,
        "phase": phase,
        "previous_phase": previous,
        "criteria": {"rintisan": True, "tumbuh": phase != "rintisan"},
    }


PHASES = [
    _phase(MAWAR, "2025-12", "rintisan", None),
    _phase(MAWAR, "2026-01", "tumbuh", "rintisan"),
    _phase(MAWAR, "2026-02", "tumbuh", "tumbuh"),
    _phase(MELATI, "2025-12", "tumbuh", None),
    _phase(MELATI, "2026-01", "tumbuh", "tumbuh"),
    _phase(MELATI, "2026-02", "rintisan", "tumbuh"),
]
"""Closed months only (today is in March): Mawar rose to tumbuh in January; Melati fell back in
February; Kenanga is not assessed yet."""


def referral(unit_id: uuid.UUID, referred_on: date, respond_by: date, **dates: Any) -> dict[str, Any]:
    """A referral row: made on ``referred_on``, with whatever answers ``dates`` holds."""
    row: dict[str, Any] = {
        "referral_id": uuid.uuid4(),
        "client_id": uuid.uuid4(),
        "unit_id": unit_id,
        "clinic_id": "klinik-pratama-1",
        "service": "rawat_jalan",
        "reason": "high_risk",
        "urgency": "routine",
        "referred_on": referred_on,
        "respond_by": respond_by,
    }
    for column in ("accepted_on", "declined_on", "attended_on", "escalated_on", "cancelled_on", "closed_on"):
        row[column] = dates.get(column)
    row["outcome"] = dates.get("outcome")
    row["back_referral"] = dates.get("back_referral")
    return row


D = date
REFERRALS = [
    # accepted after 2 days (in time), attended, completed after 20 days
    referral(
        MAWAR,
        D(2026, 1, 5),
        D(2026, 1, 8),
        accepted_on=D(2026, 1, 7),
        attended_on=D(2026, 1, 9),
        closed_on=D(2026, 1, 25),
        outcome="completed",
        back_referral=True,
    ),
    # accepted after 4 days (late), then dropped out, closed after 30 days
    referral(
        MAWAR,
        D(2026, 2, 1),
        D(2026, 2, 4),
        accepted_on=D(2026, 2, 5),
        closed_on=D(2026, 3, 3),
        outcome="dropped_out",
    ),
    # accepted after 1 day, still at the clinic
    referral(MELATI, D(2026, 2, 10), D(2026, 2, 13), accepted_on=D(2026, 2, 11)),
    # declined in time, escalated
    referral(
        MELATI,
        D(2026, 2, 20),
        D(2026, 2, 23),
        declined_on=D(2026, 2, 22),
        escalated_on=D(2026, 2, 22),
        closed_on=D(2026, 2, 22),
        outcome="declined",
    ),
    # cancelled before any answer
    referral(
        KENANGA,
        D(2026, 3, 1),
        D(2026, 3, 4),
        cancelled_on=D(2026, 3, 2),
        closed_on=D(2026, 3, 2),
        outcome="cancelled",
    ),
    # overdue: 5 days past respond_by on 2026-03-15, escalated
    referral(MAWAR, D(2026, 3, 7), D(2026, 3, 10), escalated_on=D(2026, 3, 11)),
    # overdue, made long before the default range: still listed
    referral(KENANGA, D(2025, 1, 2), D(2025, 1, 3)),
    # waiting, not yet due
    referral(MELATI, D(2026, 3, 14), D(2026, 3, 17)),
]


def qol(
    unit_id: uuid.UUID, exit_on: date, baseline: Sequence[float], exit_: Sequence[float]
) -> dict[str, Any]:
    """A client's QoL change: the four domains at baseline and at exit."""
    domains = ("physical", "psychological", "social", "environment")
    return {
        "client_id": uuid.uuid4(),
        "enrollment_id": uuid.uuid4(),
        "unit_id": unit_id,
        **{f"baseline_{d}": v for d, v in zip(domains, baseline, strict=True)},
        **{f"exit_{d}": v for d, v in zip(domains, exit_, strict=True)},
        "exit_on": exit_on,
    }


QOL = [
    qol(MAWAR, D(2026, 2, 1), [50, 40, 60, 50], [70, 60, 60, 55]),  # improved (+45 in all)
    qol(MAWAR, D(2026, 3, 1), [60, 60, 60, 60], [50, 55, 70, 60]),  # worse (-5 in all)
    qol(MELATI, D(2026, 1, 20), [30, 30, 40, 40], [40, 45, 40, 50]),  # improved
    qol(KENANGA, D(2024, 6, 1), [10, 10, 10, 10], [90, 90, 90, 90]),  # outside the default range
]


async def seed(runtime: ServiceRuntime) -> None:
    """Write the whole small projection into the live tables."""
    async with runtime.database.transaction() as session:
        await session.execute(insert(LIVE.units), [{**u, "established_on": D(2025, 6, 1)} for u in UNITS])
        cells = [
            {"level": level, "org_id": org, "period": period, "indicator": name, "value": value}
            for (level, org, period), values in CELLS.items()
            for name, value in values.items()
        ]
        await session.execute(insert(LIVE.indicator_cells), cells)
        await session.execute(insert(LIVE.unit_phases), PHASES)
        await session.execute(insert(LIVE.referrals), REFERRALS)
        await session.execute(insert(LIVE.qol_changes), QOL)


@dataclass
class ReportingApi:
    """The reporting app on a real store (seeded), its clock on :data:`TODAY`, NATS down."""

    http: httpx.AsyncClient
    app: FastAPI

    @property
    def runtime(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.app.state.runtime
        return runtime

    async def get(self, path: str, role: Role = Role.FACILITATOR, **params: Any) -> httpx.Response:
        """GET ``path`` as ``role`` (an agent of Mawar), query parameters by name (``from_`` for from)."""
        query: Mapping[str, Any] = {k.rstrip("_"): v for k, v in params.items() if v is not None}
        claims: dict[str, Any] = {"unit_id": MAWAR} if role is Role.AGENT else {}
        if role is Role.CLINIC:
            claims["clinic_id"] = "klinik-pratama-1"
        return await self.http.get(path, params=query, headers=auth(role, **claims))


@asynccontextmanager
async def reporting_api(
    tmp_path: Path, database_url: str, *, seeded: bool = True
) -> AsyncIterator[ReportingApi]:
    """The reporting app for one test, with the small projection written in (unless told not)."""
    async with service_app(
        build,
        tmp_path,
        database_url,
        PULIH_CLOCK="manual",
        PULIH_CLOCK_START=TODAY.isoformat(),
        PULIH_SCHEDULER_SECONDS=3600,
    ) as (http, app):
        api = ReportingApi(http, app)
        if seeded:
            await seed(api.runtime)
        yield api
