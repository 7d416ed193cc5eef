"""``pulih reporting rebuild`` against a real nats-server, on SQLite and PostgreSQL: the rebuilt
projection equals the live one row for row (after a clean run, after a rebuild killed midway and
resumed, and when the live one got further during the replay), and the API keeps answering
while the tables are swapped.

The regency's history comes from ``bench/generate_regency.py``; the live projection is the real
service's (its ordered batch consumer, its jobs), stopped once it has caught up with the stream.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, inspect, select
from test_reporting_rebuild_generator import generator

from pulih.kit.auth import Role
from pulih.kit.database import Database
from pulih.kit.nats_server import NatsServer
from pulih.kit.settings import Settings
from pulih.kit.testing import REGENCY, auth, eventually, make_settings, serve
from pulih.reporting import indicators
from pulih.reporting.app import build
from pulih.reporting.indicators import DEFERRED_SINCE
from pulih.reporting.phases import CHANGED_FROM
from pulih.reporting.rebuild import rebuild_for
from pulih.reporting.status import reporting_status
from pulih.reporting.store import LIVE, REBUILD
from pulih.reporting.stream_reader import connect, last_sequence

pytestmark = [pytest.mark.system, pytest.mark.slow]

TODAY = date(2026, 6, 15)
"""The regency's manual clock: the service and the rebuild count stocks and phases as of it."""

Snapshot = dict[str, list[tuple[Any, ...]]]


def settings_for(tmp_path: Path, nats: NatsServer, database_url: str) -> Settings:
    """The service's and the rebuild's settings: one store, one stream, one clock."""
    return make_settings(
        tmp_path,
        nats_url=nats.url,
        database_url=database_url,
        PULIH_CLOCK="manual",
        PULIH_CLOCK_START=TODAY,
        PULIH_SCHEDULER_SECONDS=0.5,
    )


async def publish_history(nats: NatsServer, events: int, seed: int) -> int:
    """Publish a generated regency's ``events``; the stream's last sequence."""
    gen = generator()
    plan = gen.plan_for(REGENCY, events, months=10, seed=seed, end=TODAY - timedelta(days=1))
    stored = await gen.publish(nats.url, REGENCY, gen.chunked(gen.messages(gen.generate(plan))))
    assert stored == events
    return await stream_last(nats)


async def stream_last(nats: NatsServer) -> int:
    nc = await connect(nats.url)
    try:
        return await last_sequence(nc, REGENCY)
    finally:
        await nc.close()


async def caught_up(settings: Settings, nats: NatsServer, database: Database) -> None:
    """Wait until the live projection has settled: the whole stream applied (its own aggregates
    too), no recount deferred, no phase assessment pending, the aggregates job run."""

    async def state() -> tuple[int, int, int, bool]:
        found = await reporting_status(database, stream_last_seq=await stream_last(nats))
        p = LIVE.position
        async with database.engine.connect() as conn:
            pending = await conn.scalar(
                select(func.count()).where(p.c.consumer.in_([DEFERRED_SINCE, CHANGED_FROM]))
            )
        aggregates = found["aggregates"]
        return (
            int(found["lag"]),
            int(aggregates["waiting_in_outbox"]),
            int(pending or 0),
            aggregates["months"] > 0,
        )

    settled = (0, 0, 0, True)
    await eventually(state, until=lambda now: now == settled, timeout=120)
    await asyncio.sleep(1.0)  # one more round of the jobs
    await eventually(state, until=lambda now: now == settled, timeout=60)


def _plain(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def snapshot(database: Database) -> Snapshot:
    """Every row of every live projection table (``position`` without ``applied_at``)."""
    found: Snapshot = {}
    async with database.engine.connect() as conn:
        for table in LIVE.all:
            columns = [c for c in table.c if not (table is LIVE.position and c.name == "applied_at")]
            rows = (await conn.execute(select(*columns))).all()
            found[table.name] = sorted((tuple(_plain(v) for v in row) for row in rows), key=repr)
    return found


def assert_same(live: Snapshot, rebuilt: Snapshot) -> None:
    for name, rows in live.items():
        other = rebuilt[name]
        if rows != other:
            only_live = sorted(set(rows) - set(other), key=repr)[:3]
            only_rebuilt = sorted(set(other) - set(rows), key=repr)[:3]
            raise AssertionError(
                f"{name}: {len(rows)} live rows, {len(other)} rebuilt; "
                f"only live: {only_live}; only rebuilt: {only_rebuilt}"
            )


def assert_lived(live: Snapshot) -> None:
    """The history reached every part of the projection (an empty table compares equal)."""
    for name in ("units", "agents", "clients", "screenings", "enrolments", "sessions", "discharges"):
        assert live[name], name
    for name in ("referrals", "qol_assessments", "phase_completions", "follow_ups", "indicator_cells"):
        assert live[name], name
    for name in ("unit_phases", "qol_changes", "applied_events", "position"):
        assert live[name], name


async def index_names(database: Database) -> dict[str, set[str]]:
    def names(conn: Any) -> dict[str, set[str]]:
        inspector = inspect(conn)
        return {t.name: {str(ix["name"]) for ix in inspector.get_indexes(t.name)} for t in LIVE.all}

    async with database.engine.connect() as conn:
        return await conn.run_sync(names)


async def table_names(database: Database) -> set[str]:
    async with database.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def assert_recounts_to_itself(database: Database) -> None:
    """The live projection's cells equal a full recount of its own facts (done in a transaction
    rolled back): otherwise a difference from the rebuild is the live consumer's, not the
    rebuild's."""
    found = (await snapshot(database))["indicator_cells"]
    async with database.engine.connect() as conn:
        transaction = await conn.begin()
        try:
            await conn.run_sync(
                lambda sync: indicators.refresh_all_sync(sync, LIVE, today=TODAY, regency=REGENCY)
            )
            rows = (await conn.execute(select(LIVE.indicator_cells))).all()
        finally:
            await transaction.rollback()
    recount = sorted((tuple(_plain(v) for v in row) for row in rows), key=repr)
    assert_same(
        {"live indicator_cells vs a recount of its facts": found},
        {"live indicator_cells vs a recount of its facts": recount},
    )


async def live_regency(
    tmp_path: Path, nats: NatsServer, database_url: str, events: int, seed: int
) -> Settings:
    """Publish a history and let the real service project it, then stop the service."""
    await publish_history(nats, events, seed)
    settings = settings_for(tmp_path, nats, database_url)
    app = build(settings)
    async with serve(app):
        await caught_up(settings, nats, app.state.runtime.database)
        await assert_recounts_to_itself(app.state.runtime.database)
    return settings


async def test_a_rebuild_equals_the_live_projection_row_for_row(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    settings = await live_regency(tmp_path, nats_server, database_url, 4000, seed=21)
    database = Database(settings.database_url_for("reporting"))
    try:
        live = await snapshot(database)
        assert_lived(live)
        indexes = await index_names(database)

        report = await rebuild_for(settings, batch_size=700).run()
        assert (report.resumed_from, report.invalid, report.tail_rounds) == (0, 0, 0)
        assert report.read == await stream_last(nats_server)
        assert_same(live, await snapshot(database))
        assert not {t.name for t in REBUILD.all} & await table_names(database)
        assert await index_names(database) == indexes  # the names the migrations gave

        # the swapped-in tables can be rebuilt again: nothing of the first rebuild is in the way
        await rebuild_for(settings).run()
        assert_same(live, await snapshot(database))
        assert await index_names(database) == indexes
    finally:
        await database.dispose()


async def test_the_tail_the_live_projection_applied_meanwhile_is_applied_before_the_swap(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    settings = await live_regency(tmp_path, nats_server, database_url, 3000, seed=22)
    database = Database(settings.database_url_for("reporting"))
    try:
        live = await snapshot(database)
        last = await stream_last(nats_server)

        report = await rebuild_for(settings, batch_size=500).run(until=last // 3)
        assert report.tail_rounds == 1
        assert report.position == last
        assert_same(live, await snapshot(database))
    finally:
        await database.dispose()


def rebuild_process(settings: Settings, *arguments: str) -> subprocess.Popen[str]:
    """``pulih reporting rebuild`` in a process of its own, with the service's settings."""
    env = {
        **os.environ,
        "PULIH_REGENCY": REGENCY,
        "PULIH_DATA_DIR": str(settings.data_dir),
        "NATS_URL": settings.nats_url,
        "DATABASE_URL": settings.database_url_for("reporting"),
        "PULIH_CLOCK": "manual",
        "PULIH_CLOCK_START": TODAY.isoformat(),
        "PULIH_JWT_SECRET": settings.jwt_secret.get_secret_value(),
    }
    env.pop("PULIH_PROGRAMME_FILE", None)
    return subprocess.Popen(
        [sys.executable, "-m", "pulih.kit.cli", "reporting", "rebuild", *arguments],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def rebuilt_position(database: Database) -> int:
    """How far the ``rebuild_`` tables are (0 while they do not exist yet)."""
    p = REBUILD.position
    try:
        async with database.engine.connect() as conn:
            return int(await conn.scalar(select(p.c.stream_seq).where(p.c.consumer == "stream")) or 0)
    except Exception:  # the rebuilt set is not there (yet, or any more)
        return 0


async def test_a_rebuild_killed_midway_resumes_and_still_equals_live(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    settings = await live_regency(tmp_path, nats_server, database_url, 5000, seed=23)
    database = Database(settings.database_url_for("reporting"))
    try:
        live = await snapshot(database)
        last = await stream_last(nats_server)

        first = rebuild_process(settings, "--batch", "20")
        try:
            killed_at = await eventually(
                lambda: rebuilt_position(database), until=lambda s: s >= 600, timeout=120
            )
        finally:
            first.send_signal(signal.SIGKILL)
            first.communicate(timeout=30)
        assert first.returncode == -signal.SIGKILL
        left = await rebuilt_position(database)
        assert killed_at <= left < last, "the rebuild was killed before it finished"
        assert_same(live, await snapshot(database))  # the live projection never saw it

        second = rebuild_process(settings, "--batch", "500")
        out, err = second.communicate(timeout=300)
        assert second.returncode == 0, err
        assert f"resumed from seq {left:,}" in out, out
        assert_same(live, await snapshot(database))
    finally:
        await database.dispose()


async def test_the_api_answers_while_a_rebuild_swaps_the_tables(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    await publish_history(nats_server, 3000, seed=24)
    settings = settings_for(tmp_path, nats_server, database_url)
    app = build(settings)
    query = {"level": "regency", "from": "2025-09", "to": "2026-06", "by": "month"}
    async with serve(app) as http:
        database = app.state.runtime.database
        await caught_up(settings, nats_server, database)
        headers = auth(Role.FACILITATOR)
        before = await http.get("/v1/indicators", params=query, headers=headers)
        assert before.status_code == 200, before.text
        phases_before = (await http.get("/v1/units/phases", headers=headers)).json()

        rebuild = rebuild_process(settings, "--batch", "300")
        answers: list[tuple[int, Any]] = []
        while rebuild.poll() is None:
            r = await http.get("/v1/indicators", params=query, headers=headers)
            answers.append((r.status_code, r.json()))
            await asyncio.sleep(0.005)
        out, err = rebuild.communicate()
        assert rebuild.returncode == 0, err
        for _ in range(5):
            r = await http.get("/v1/indicators", params=query, headers=headers)
            answers.append((r.status_code, r.json()))

        assert len(answers) > 20
        assert {status for status, _ in answers} == {200}, [
            body for status, body in answers if status != 200
        ][:3]
        assert all(body == before.json() for _, body in answers)
        assert (await http.get("/v1/units/phases", headers=headers)).json() == phases_before
        assert "rebuilt up to seq" in out
        assert not {t.name for t in REBUILD.all} & await table_names(database)
