"""``pulih backup`` / ``pulih restore`` with the stores on PostgreSQL (a schema per service):
the rows come back identical in new, empty schemas, and a schema with tables is refused."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from outreach_factories import Outreach, screening_body
from sqlalchemy import make_url

from pulih.kit import backup as pulih_backup
from pulih.kit.nats_server import NatsServer
from pulih.kit.settings import Settings
from pulih.kit.testing import POSTGRES_URL, REGENCY, make_settings, postgres_schema_url, serve
from pulih.outreach.app import build

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SERVICES = ("outreach", "rehab", "referral", "reporting")


@pytest.fixture(autouse=True)
def pg_tools() -> None:
    missing = [t for t in ("pg_dump", "pg_restore", "psql") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install postgresql-client)")


def schemas(n: int) -> Iterator[list[str]]:
    made = [postgres_schema_url() for _ in range(n)]
    try:
        yield [next(g) for g in made]
    finally:
        for g in made:
            g.close()


@pytest.fixture
def live() -> Iterator[list[str]]:
    yield from schemas(len(SERVICES))


@pytest.fixture
def fresh() -> Iterator[list[str]]:
    yield from schemas(len(SERVICES))


async def table_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the URL's schema, sorted, by table."""
    schema = str(make_url(url).query["search_path"])
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        tables = [
            r["table_name"]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema
            )
        ]
        return {
            t: sorted((tuple(r) for r in await conn.fetch(f'SELECT * FROM "{schema}"."{t}"')), key=repr)
            for t in tables
        }
    finally:
        await conn.close()


async def next_ids(url: str) -> dict[str, int]:
    """What each sequence of the schema hands out next (setval must come back too)."""
    schema = str(make_url(url).query["search_path"])
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        names = [
            r["sequence_name"]
            for r in await conn.fetch(
                "SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = $1", schema
            )
        ]
        return {n: await conn.fetchval(f'SELECT last_value FROM "{schema}"."{n}"') for n in names}
    finally:
        await conn.close()


async def outbox(url: str) -> dict[str, tuple[tuple[Any, ...], Any]]:
    """By event id: the row without published_at, and published_at."""
    schema = str(make_url(url).query["search_path"])
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        rows = await conn.fetch(f'SELECT * FROM "{schema}".outbox')
        return {
            str(r["event_id"]): (tuple(v for k, v in r.items() if k != "published_at"), r["published_at"])
            for r in rows
        }
    finally:
        await conn.close()


def point_at(monkeypatch: pytest.MonkeyPatch, urls: list[str]) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("NATS_URL", raising=False)
    for service, url in zip(SERVICES, urls, strict=True):
        monkeypatch.setenv(f"PULIH_{service.upper()}_DATABASE_URL", url)


async def fill_outreach(tmp_path: Path, url: str, nats_url: str) -> int:
    """Outreach on ``url`` with a real NATS: a unit, an agent, clients consented and screened."""
    app = build(make_settings(tmp_path / "outreach", nats_url=nats_url, database_url=url))
    async with serve(app) as http:
        o = Outreach(http, app)
        unit = await o.unit()
        agent = await o.agent(unit)
        headers = o.agent_auth(unit, agent)
        for n in range(4):
            r = await o.client(
                unit, headers, full_name=f"Klien {n}", nik=f"33010115059000{n + 1:02d}", phone=None
            )
            assert r.status_code == 201, r.text
            client = r.json()["client_id"]
            await o.consent(client, headers, ["programme", "referral"])
            s = await http.post(
                f"/v1/clients/{client}/screenings", headers=headers, json=screening_body(agent)
            )
            assert s.status_code == 201, s.text
        return 4


def test_postgres_stores_back_up_and_restore_into_new_schemas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, live: list[str], fresh: list[str]
) -> None:
    with NatsServer(tmp_path / "nats", server_name="pulih-test", domain=f"r{REGENCY}") as server:
        asyncio.run(fill_outreach(tmp_path, live[0], server.url))
        point_at(monkeypatch, live)
        settings = Settings(data_dir=tmp_path / "live", regency=REGENCY, database_url=None)
        backup = tmp_path / "backup"
        manifest = asyncio.run(pulih_backup.take_backup(settings, backup, nats_url=server.url))

    assert {s: e["store"] for s, e in manifest["services"].items()} == dict.fromkeys(SERVICES, "postgresql")
    assert {f"{s}.pgdump" for s in SERVICES} <= set(manifest["files"])
    before = {s: asyncio.run(table_rows(u)) for s, u in zip(SERVICES, live, strict=True)}
    sequences = asyncio.run(next_ids(live[0]))
    assert len(before["outreach"]["clients"]) == 4 and before["outreach"]["outbox"]

    point_at(monkeypatch, fresh)
    restored = Settings(data_dir=tmp_path / "restored", regency=REGENCY, database_url=None)
    with NatsServer(tmp_path / "nats-restored", server_name="pulih-test", domain=f"r{REGENCY}") as target:
        asyncio.run(pulih_backup.restore_backup(restored, backup, nats_url=target.url))

    after = {s: asyncio.run(table_rows(u)) for s, u in zip(SERVICES, fresh, strict=True)}
    # Every stream event the backup saw was in the snapshot: no outbox row changes on restore.
    assert not manifest["events_after_snapshot"]
    for service in SERVICES:
        assert set(after[service]) == set(before[service]), service
        for table, was in before[service].items():
            if table != "outbox":
                assert after[service][table] == was, f"{service}.{table}"
    # The outbox: the same rows; one published but not yet marked when the relay stopped is
    # marked sent on restore (its event is in the restored stream), every other row as it was.
    sent_before = set(manifest["events_before_snapshot"])
    was, now = asyncio.run(outbox(live[0])), asyncio.run(outbox(fresh[0]))
    assert set(was) == set(now) and was
    for event_id, (row, published) in now.items():
        assert row == was[event_id][0]
        if was[event_id][1] is not None:
            assert published == was[event_id][1]
        else:
            assert (published is not None) == (event_id in sent_before)
    assert asyncio.run(next_ids(fresh[0])) == sequences
    # The live schemas are untouched, and nothing landed in them twice.
    assert {s: asyncio.run(table_rows(u)) for s, u in zip(SERVICES, live, strict=True)} == before

    # A schema that already holds tables is refused, and left as it was.
    again = Settings(data_dir=tmp_path / "again", regency=REGENCY, database_url=None)
    with pytest.raises(pulih_backup.BackupError, match="already holds tables"):
        asyncio.run(pulih_backup.restore_backup(again, backup, nats_url="nats://127.0.0.1:1"))
    assert {s: asyncio.run(table_rows(u)) for s, u in zip(SERVICES, fresh, strict=True)} == after
