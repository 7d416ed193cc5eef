"""Every service's migrations build exactly the schema its models (and the kit's) describe, on
SQLite and PostgreSQL, and downgrade to an empty store."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from pulih.kit.database import Database, kit_metadata
from pulih.kit.local_regency import installed_services
from pulih.kit.migrations import alembic_config, upgrade_to_head

SERVICES = [s.name for s in installed_services()]


def _spec(name: str) -> Any:
    from importlib.metadata import entry_points

    return next(ep for ep in entry_points(group="pulih.services") if ep.name == name).load()


@pytest.mark.parametrize("service", SERVICES)
async def test_migrations_build_the_schema_the_models_describe(service: str, database_url: str) -> None:
    spec = _spec(service)
    store = __import__(f"pulih.{service}.store", fromlist=["Base"])
    database = Database(database_url)
    try:
        await upgrade_to_head(database, spec.migrations)

        def differences(connection: Connection) -> list[Any]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, [store.Base.metadata, kit_metadata]))

        async with database.engine.connect() as conn:
            assert await conn.run_sync(differences) == []

        def downgrade(connection: Connection) -> list[str]:
            cfg = alembic_config(spec.migrations)
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, "base")
            return [t for t in inspect(connection).get_table_names() if t != "alembic_version"]

        async with database.engine.begin() as conn:
            assert await conn.run_sync(downgrade) == []
    finally:
        await database.dispose()
