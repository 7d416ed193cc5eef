"""The deployments' migration step, ``python -m pulih.kit.migrate`` (the compose file's ``migrate``
service, the Kubernetes init containers): every service's store at head, each in its own schema
of one PostgreSQL database; two replicas migrating at once both succeed; a failure is one line."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from deploy_support import fresh_database

from pulih.kit import migrate
from pulih.kit.database import Database
from pulih.kit.migrations import upgrade_to_head
from pulih.kit.settings import async_driver_url

SERVICES = ["outreach", "rehab", "referral", "reporting"]


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def run_migrate(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pulih.kit.migrate", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def revisions(url: str) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        return {
            service: await conn.fetchval(f'SELECT version_num FROM "{service}".alembic_version')
            for service in SERVICES
        }
    finally:
        await conn.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_every_service_in_its_own_schema_and_two_replicas_at_once(database: str) -> None:
    # two migration steps at once (two replicas' init containers): the advisory lock orders them
    both = [run_migrate("--schema-per-service", *SERVICES, env={"DATABASE_URL": database}) for _ in range(2)]
    outputs = [process.communicate(timeout=120) for process in both]
    for process, (out, err) in zip(both, outputs, strict=True):
        assert process.returncode == 0, err
        assert [line.split(":")[0] for line in out.splitlines()] == SERVICES
        assert "(schema outreach)" in out
    found = asyncio.run(revisions(database))
    assert all(found.values()), found
    # a service starting on its own schema (its DATABASE_URL) finds its store at head
    asyncio.run(upgrade_at_start(f"{database}?search_path=outreach"))
    assert asyncio.run(revisions(database)) == found


async def upgrade_at_start(url: str) -> None:
    """What a service's lifespan does first."""
    store = Database(async_driver_url(url))
    try:
        await upgrade_to_head(store, migrate.migrations_of("outreach"))
    finally:
        await store.dispose()


def test_a_sqlite_store_in_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("PULIH_DATA_DIR", str(tmp_path))
    assert migrate.main(["outreach"]) == 0
    with sqlite3.connect(tmp_path / "outreach.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"alembic_version", "outbox", "inbox", "idempotency_keys"} <= tables


def test_a_failure_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("PULIH_DATA_DIR", str(tmp_path))
    assert migrate.main(["outreach", "nosuch"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("outreach: at revision ")  # what was done before is said
    assert err.strip() == "pulih migrate: nosuch: no such service installed (no pulih.nosuch.migrations)"

    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:secret@127.0.0.1:1/none")
    assert migrate.main(["outreach"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert "outreach: the store at postgresql+asyncpg://nobody:***@127.0.0.1:1/none was not migrated" in err
    assert "secret" not in err
