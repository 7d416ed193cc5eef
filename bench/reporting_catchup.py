"""How fast the reporting service's live consumer catches up with a regency's backlog (10^6
events by default), and how fast ``GET /v1/indicators`` answers over the projection it built
(p50/p95/p99 per query). Prints tables, then one JSON line; not a test.

    .venv/bin/python bench/reporting_catchup.py [--events 1000000] [--stream-dir DIR]
        [--database-url postgresql+asyncpg://…] [--queries 200]

The service runs in this process with its real lifespan (migrations, broker, the ordered batch
consumer, the aggregates job) on a fresh store; the backlog is the stream ``reporting_rebuild.py``
makes (kept in ``--stream-dir`` for the next run). Caught up means: the position reached the
stream's last message as it was at the start, and no recount is deferred any more. The queries
go through the app over HTTP semantics (httpx on its ASGI interface: routing, auth, SQL, JSON or
CSV), one at a time, each kind ``--queries`` times after a warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import nats
from asgi_lifespan import LifespanManager
from nats.js.errors import NotFoundError
from reporting_rebuild import REGENCY, ensure_stream
from sqlalchemy import func, select

from pulih.contracts import stream_name
from pulih.kit.auth import issue_token
from pulih.kit.nats_server import NatsServer
from pulih.kit.settings import Settings
from pulih.reporting.aggregates import publish_aggregates
from pulih.reporting.app import build
from pulih.reporting.cli import EventProgress
from pulih.reporting.consumers import DURABLE
from pulih.reporting.indicators import DEFERRED_SINCE
from pulih.reporting.status import reporting_status
from pulih.reporting.store import LIVE

TARGET_EVENTS_PER_SECOND = 5_000
TARGET_P99_MS = 50.0


@dataclass(frozen=True)
class Latencies:
    """One kind of query, timed ``len(ms)`` times."""

    name: str
    path: str
    rows: int
    ms: list[float]

    def percentile(self, p: float) -> float:
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def forget_durable(nats_url: str) -> None:
    """Delete the service's durable left by an earlier run on this stream: a fresh store must
    start from the first message (or it would wait for new ones)."""
    nc = await nats.connect(nats_url)
    try:
        with contextlib.suppress(NotFoundError):
            await nc.jetstream().delete_consumer(stream_name(REGENCY), f"reporting-{DURABLE}")
    finally:
        await nc.close()


async def catch_up(app: Any, last: int) -> tuple[float, float]:
    """Seconds until the position reaches ``last``; then seconds of the recount the consumer
    deferred while catching up (when the backlog ended on a full batch, the aggregates job does
    it: it is run here at once instead of waiting for its next round)."""
    runtime = app.state.runtime
    started = time.perf_counter()
    with EventProgress("catch-up", last) as progress:
        while True:
            await asyncio.sleep(0.5)
            applied = int((await reporting_status(runtime.database))["applied_seq"])
            progress.advance(applied - progress.done)
            if applied >= last:
                break
    reached = time.perf_counter() - started
    started = time.perf_counter()
    async with runtime.database.engine.connect() as conn:
        p = LIVE.position
        deferred = await conn.scalar(select(func.count()).where(p.c.consumer == DEFERRED_SINCE))
    if deferred:
        await publish_aggregates(runtime)
    return reached, time.perf_counter() - started


async def periods_and_orgs(app: Any) -> tuple[list[str], list[str], str, str, str]:
    """The months and weeks the projection holds, and a district, a village and a unit of it."""
    database = app.state.runtime.database
    cells, units = LIVE.indicator_cells, LIVE.units
    async with database.engine.connect() as conn:
        periods = sorted(
            (await conn.scalars(select(cells.c.period).where(cells.c.level == "regency").distinct())).all()
        )
        unit = (await conn.execute(select(units.c.unit_id, units.c.village_code).limit(1))).one()
    months = [p for p in periods if "W" not in p]
    weeks = [p for p in periods if "W" in p]
    return months, weeks, unit.village_code[:6], unit.village_code, str(unit.unit_id)


def query_kinds(
    months: list[str], weeks: list[str], district: str, village: str, unit: str
) -> list[tuple[str, dict[str, str], bool]]:
    """(name, parameters, as CSV) of the queries a dashboard and an analyst make."""
    last, year, three = months[-1], months[-12:][0], months[-3:][0]
    last_week, year_of_weeks = weeks[-1], weeks[-52:][0]
    return [
        ("regency by month, whole history", {"level": "regency", "from": months[0], "to": last}, False),
        ("every district by month, a year", {"level": "district", "from": year, "to": last}, False),
        (
            "one village by week, a year",
            {"level": "village", "id": village, "from": year_of_weeks, "to": last_week, "by": "week"},
            False,
        ),
        ("one unit by month, a year", {"level": "unit", "id": unit, "from": year, "to": last}, False),
        ("every unit by month, 3 months", {"level": "unit", "from": three, "to": last}, False),
        (
            "regency by week, a year, CSV",
            {"level": "regency", "from": year_of_weeks, "to": last_week, "by": "week"},
            True,
        ),
        (
            "one district by month, whole history",
            {"level": "district", "id": district, "from": months[0], "to": last},
            False,
        ),
    ]


async def time_queries(app: Any, settings: Settings, repeats: int) -> list[Latencies]:
    token = issue_token(
        settings.jwt_secret.get_secret_value(), sub="bench", role="facilitator", regency=REGENCY
    )
    months, weeks, district, village, unit = await periods_and_orgs(app)
    found = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://reporting") as http:
        for name, params, as_csv in query_kinds(months, weeks, district, village, unit):
            headers = {
                "Authorization": f"Bearer {token}",
                "Accept": "text/csv" if as_csv else "application/json",
            }
            timings, rows = [], 0
            for attempt in range(repeats + 5):
                started = time.perf_counter()
                response = await http.get("/v1/indicators", params=params, headers=headers)
                elapsed = 1000 * (time.perf_counter() - started)
                if response.status_code != 200:
                    raise SystemExit(f"{name}: {response.status_code} {response.text[:300]}")
                if attempt >= 5:  # after the warm-up
                    timings.append(elapsed)
                rows = response.text.count("\n") - 1 if as_csv else len(response.json()["rows"])
            found.append(Latencies(name, str(httpx.URL("/v1/indicators", params=params)), rows, timings))
            print(f"  {name}: p99 {found[-1].percentile(99):.1f} ms", flush=True)
    return found


async def measure(events: int, stream_dir: Path, database_url: str | None, repeats: int) -> None:
    server = NatsServer(stream_dir / "nats", domain=f"r{REGENCY}").start()
    try:
        last = await ensure_stream(server.url, events, seed=1)
        await forget_durable(server.url)
        with tempfile.TemporaryDirectory() as name:
            settings = Settings.model_validate(
                {
                    "PULIH_REGENCY": REGENCY,
                    "PULIH_DATA_DIR": name,
                    "NATS_URL": server.url,
                    "DATABASE_URL": database_url or f"sqlite+aiosqlite:///{Path(name) / 'reporting.db'}",
                    "PULIH_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
                    "PULIH_PROGRAMME_FILE": None,
                }
            )
            app = build(settings)
            cpu = time.process_time()
            async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
                reached, recount = await catch_up(app, last)
                cpu = time.process_time() - cpu
                latencies = await time_queries(app, settings, repeats)
    finally:
        server.stop()
    report(last, reached, recount, cpu, latencies, database_url)


def report(
    events: int,
    reached: float,
    recount: float,
    cpu: float,
    latencies: list[Latencies],
    database_url: str | None,
) -> None:
    load = os.getloadavg()[0]
    store = "PostgreSQL" if database_url else "SQLite"
    print()
    print(f"load average {load:.1f} on {os.cpu_count()} cores; store {store}")
    print(f"{'catch-up':<44} {'events':>10} {'seconds':>8} {'events/s':>9} {'CPU us/ev':>10}")
    settled = reached + recount
    for name, seconds in (
        ("position reaches the last message", reached),
        ("... and the recount deferred meanwhile", settled),
    ):
        print(
            f"{name:<44} {events:>10,} {seconds:>8.1f} {events / seconds:>9,.0f} {1e6 * cpu / events:>10.0f}"
        )
    print()
    print(f"{'GET /v1/indicators':<40} {'rows':>6} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    for q in latencies:
        print(
            f"{q.name:<40} {q.rows:>6} {statistics.median(q.ms):>7.1f} {q.percentile(95):>7.1f} "
            f"{q.percentile(99):>7.1f} {max(q.ms):>7.1f}"
        )
    worst = max(q.percentile(99) for q in latencies)
    print(
        f"targets: catch-up ≥ {TARGET_EVENTS_PER_SECOND:,} events/s: {events / settled:,.0f}; "
        f"indicator p99 ≤ {TARGET_P99_MS:.0f} ms: worst {worst:.1f} ms"
    )
    print(
        json.dumps(
            {
                "bench": "reporting_catchup",
                "store": store,
                "events": events,
                "load_average": round(load, 1),
                "cores": os.cpu_count(),
                "seconds_to_last_message": round(reached, 1),
                "seconds_of_deferred_recount": round(recount, 1),
                "events_per_second": round(events / settled),
                "cpu_us_per_event": round(1e6 * cpu / events, 1),
                "queries": [
                    {
                        "query": q.name,
                        "path": q.path,
                        "rows": q.rows,
                        "p50_ms": round(statistics.median(q.ms), 1),
                        "p95_ms": round(q.percentile(95), 1),
                        "p99_ms": round(q.percentile(99), 1),
                        "max_ms": round(max(q.ms), 1),
                    }
                    for q in latencies
                ],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--stream-dir", type=Path, help="keep the NATS store here, and reuse it next time")
    parser.add_argument("--database-url", help="the service's store (default: a fresh SQLite file)")
    parser.add_argument("--queries", type=int, default=200, help="timed requests per kind of query")
    args = parser.parse_args()
    if args.stream_dir is not None:
        args.stream_dir.mkdir(parents=True, exist_ok=True)
        asyncio.run(measure(args.events, args.stream_dir, args.database_url, args.queries))
        return
    with tempfile.TemporaryDirectory() as name:
        asyncio.run(measure(args.events, Path(name), args.database_url, args.queries))


if __name__ == "__main__":
    main()
