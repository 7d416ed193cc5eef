"""Alembic migrations per service, applied at start.

Each service keeps an Alembic script directory (``migrations/``) inside its package. Its
``env.py`` calls :func:`run_migrations`, whose target metadata includes the kit's outbox, inbox and
idempotency tables, so a service's first revision creates them in its store too.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from sqlalchemy import Connection, MetaData

from pulih.kit import idempotency, inbox, outbox  # noqa: F401 - they declare the kit's tables
from pulih.kit.database import Database, kit_metadata


def alembic_config(script_location: Path) -> Config:
    """An Alembic configuration for the script directory at ``script_location``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    return cfg


async def upgrade_to_head(database: Database, script_location: Path) -> None:
    """Apply every migration the store has not seen yet, in one transaction."""
    cfg = alembic_config(script_location)

    def _upgrade(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")

    async with database.engine.begin() as conn:
        await conn.run_sync(_upgrade)


def run_migrations(context: EnvironmentContext, service_metadata: MetaData) -> None:
    """Body of a service's ``env.py``: migrate the connection handed over by the kit."""
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is None:  # pragma: no cover - only through the alembic command line
        raise RuntimeError("run migrations through pulih.kit.migrations.upgrade_to_head")
    context.configure(
        connection=connection,
        target_metadata=[service_metadata, kit_metadata],
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
