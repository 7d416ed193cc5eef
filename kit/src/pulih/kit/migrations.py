"""Alembic migrations per service, applied at start.

Each service keeps an Alembic script directory (``migrations/``) inside its package. Its
``env.py`` calls :func:`run_migrations`, whose target metadata includes the kit's outbox, inbox and
idempotency tables, so a service's first revision creates them in its store too.

A store already at head is seen without Alembic: its ``alembic_version`` row is compared with the
heads of the revision files, read as source (:func:`pulih.kit.revisions.script_heads`). A service
that starts on a migrated store (``pulih up`` migrates them first, as a deployment's migration
step does) so never loads Alembic, Mako and Pygments, some 10 MiB of each service's memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, MetaData, text
from sqlalchemy.exc import SQLAlchemyError

from pulih.kit import idempotency, inbox, outbox  # noqa: F401 - they declare the kit's tables
from pulih.kit.database import Database, kit_metadata
from pulih.kit.revisions import script_heads

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext


def alembic_config(script_location: Path) -> Config:
    """An Alembic configuration for the script directory at ``script_location``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    return cfg


async def store_at_head(database: Database, script_location: Path) -> bool:
    """Whether the store's revisions are the script directory's heads (read without Alembic)."""
    heads = script_heads(script_location)
    if not heads:
        return False
    try:
        async with database.sessions() as session:
            applied = set((await session.execute(text("SELECT version_num FROM alembic_version"))).scalars())
    except SQLAlchemyError:  # no version table yet
        return False
    return applied == heads


async def upgrade_to_head(database: Database, script_location: Path) -> None:
    """Apply every migration the store has not seen yet, in one transaction (nothing to do, and
    Alembic not even loaded, for a store at head)."""
    if await store_at_head(database, script_location):
        return
    from alembic import command

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


def create_kit_tables_v1() -> None:
    """Create version 1 of the kit's tables (outbox, inbox, idempotency keys).

    Called from each service's first revision. Frozen: a later change to the kit's tables is a
    new function (``…_v2``) that services call from a new revision, so applied migrations never
    change under a deployment.
    """
    import sqlalchemy as sa
    from alembic import op

    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String(length=120), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("principal", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(length=120), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("stream_seq", sa.BigInteger(), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_inbox")),
    )
    op.create_table(
        "outbox",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_published_at"), ["published_at"], unique=False)


def drop_kit_tables_v1() -> None:
    """Drop what :func:`create_kit_tables_v1` created."""
    from alembic import op

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_published_at"))
    op.drop_table("outbox")
    op.drop_table("inbox")
    op.drop_table("idempotency_keys")
