"""A service on a migrated store starts without Alembic: the heads read from the revision files'
source are Alembic's own, a migrated store is seen at head (by the service, and by ``pulih up``
reading the SQLite file itself), and a store one revision behind (or none) is not."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from pulih.kit.database import Database
from pulih.kit.local_regency import installed_services, spec_literals
from pulih.kit.migrations import alembic_config, store_at_head, upgrade_to_head
from pulih.kit.revisions import migrations_of, script_heads, sqlite_store_at_head

SERVICES = [s.name for s in installed_services()]


def _spec(name: str) -> Any:
    return next(ep for ep in entry_points(group="pulih.services") if ep.name == name).load()


@pytest.mark.parametrize("service", SERVICES)
def test_the_heads_read_from_source_are_alembics(service: str) -> None:
    scripts: Path = _spec(service).migrations
    assert script_heads(scripts) == set(ScriptDirectory.from_config(alembic_config(scripts)).get_heads())


@pytest.mark.parametrize("service", SERVICES)
def test_the_supervisor_reads_each_services_name_and_port_as_its_spec_says(service: str) -> None:
    spec = _spec(service)
    assert spec_literals(f"pulih.{service}.app", "spec") == (spec.name, spec.port)


async def test_a_store_is_at_head_only_once_every_revision_is_applied(tmp_path: Path) -> None:
    scripts: Path = _spec("outreach").migrations
    assert migrations_of("outreach") == scripts, "found without importing the service"
    assert not sqlite_store_at_head(tmp_path / "outreach.db", scripts), "no store yet"
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/outreach.db")
    try:
        assert not await store_at_head(database, scripts), "an empty store"
        cfg = alembic_config(scripts)

        def upgrade_to_first(connection: Connection) -> None:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "0001")

        async with database.engine.begin() as conn:
            await conn.run_sync(upgrade_to_first)
        assert not await store_at_head(database, scripts), "one revision behind"
        assert not sqlite_store_at_head(tmp_path / "outreach.db", scripts), "as the supervisor sees it"
        await upgrade_to_head(database, scripts)
        assert await store_at_head(database, scripts)
        assert sqlite_store_at_head(tmp_path / "outreach.db", scripts)
    finally:
        await database.dispose()
