"""The projection's write lock, and swapping a rebuilt projection in for the live one.

**The write lock** serialises whoever changes the live projection as a whole: the live
consumer's batches, the jobs that recount it, and the swap. On SQLite it is the database's one
writer lock, taken when the transaction begins (``BEGIN IMMEDIATE``: a transaction that first
reads and then writes could otherwise fail at its first write when another process committed in
between). On PostgreSQL it is a transaction-level advisory lock (:data:`WRITE_LOCK`,
:func:`take_write_lock`), which the swap takes before locking the live tables, so a batch of the
live consumer is either wholly before the swap or wholly after it.

**The swap** is one transaction: with the lock held, the live tables locked and the live
``position`` no further than the rebuilt one, it drops the live tables and renames the
``rebuild_`` ones in their place, their indexes and constraints too (so a next rebuild can
create its ``rebuild_`` set again, and migrations find the names they know). PostgreSQL renames
indexes; SQLite cannot, so the rebuilt set's secondary indexes are created again under their
live names. Readers see the old projection until the commit and the new one after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event, inspect, select, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry

from pulih.kit.database import Database
from pulih.kit.migrations import upgrade_to_head
from pulih.kit.settings import Settings
from pulih.reporting.projection import CONSUMER
from pulih.reporting.store import LIVE, REBUILD, ProjectionTables

WRITE_LOCK = 0x7075_6C69_6872_6570
"""PostgreSQL advisory lock key of the reporting projection (``puli hrep`` in ASCII)."""

LOCK_TIMEOUT = "15s"
"""How long the swap waits on PostgreSQL for readers and writers to leave the live tables."""


MIGRATIONS = Path(__file__).parent / "migrations"
"""Reporting's migrations (what the service applies at start)."""


def database_for(settings: Settings) -> Database:
    """Reporting's store, each transaction taking SQLite's writer lock when it begins."""
    database = Database(settings.database_url_for("reporting"))
    if database.is_sqlite:
        immediate_transactions(database)
    return database


async def migrate(database: Database) -> None:
    """Bring the store to the service's schema (a rebuild may run before the service ever did)."""
    await upgrade_to_head(database, MIGRATIONS)


def immediate_transactions(database: Database) -> None:
    """Make every transaction of ``database`` (SQLite) begin with ``BEGIN IMMEDIATE``, and run
    DDL inside it (pysqlite otherwise runs DDL outside any transaction it did not begin itself).

    The recipe of SQLAlchemy's SQLite dialect documentation ("Serializable isolation /
    Savepoints / Transactional DDL"), for aiosqlite as for pysqlite.
    """

    def no_implicit_begin(dbapi_conn: DBAPIConnection, _: ConnectionPoolEntry) -> None:
        dbapi_conn.isolation_level = None

    def begin_immediate(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(database.engine.sync_engine, "connect", no_implicit_begin)
    event.listen(database.engine.sync_engine, "begin", begin_immediate)


@asynccontextmanager
async def write(database: Database, *, lock: bool = False) -> AsyncIterator[AsyncConnection]:
    """One transaction on ``database``, committed when the block ends; with ``lock``, holding
    the projection's write lock (PostgreSQL's advisory lock; SQLite's is taken by every
    transaction of :func:`database_for`)."""
    async with database.engine.connect() as conn, conn.begin():
        if lock and not database.is_sqlite:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _signed(WRITE_LOCK)})
        yield conn


def take_write_lock_sync(conn: Connection | Session) -> None:
    """Take the projection's write lock in the transaction of ``conn`` (PostgreSQL; on SQLite a
    writer holds the database's one writer lock anyway, and this does nothing)."""
    if isinstance(conn, Session):
        conn = conn.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _signed(WRITE_LOCK)})


async def take_write_lock(session: AsyncSession) -> None:
    """Take the projection's write lock, first thing in a transaction that writes the live
    projection: the live consumer's batch, and a job that recounts (stocks rolled forward,
    phases caught up). On PostgreSQL two such transactions otherwise run at once, and a recount
    that reads while a batch is uncommitted misses it for good."""
    await session.run_sync(take_write_lock_sync)


def _signed(key: int) -> int:
    return key - (1 << 64) if key >= 1 << 63 else key


async def try_swap(database: Database) -> int | None:
    """Swap the rebuilt projection in, or, when the live one has got further, change nothing and
    return the live position (the caller applies the tail to the rebuilt one and tries again)."""
    async with write(database, lock=True) as conn:
        return await conn.run_sync(swap_sync)


def swap_sync(conn: Connection) -> int | None:
    """:func:`try_swap` inside the caller's transaction, the write lock held."""
    postgres = conn.dialect.name == "postgresql"
    present = set(inspect(conn).get_table_names())
    live_present = [t for t in LIVE.all if t.name in present]
    if postgres:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        names = ", ".join(_quoted(t.name) for t in [*live_present, *REBUILD.all])
        conn.exec_driver_sql(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
    live = position_sync(conn, LIVE) if LIVE.position.name in present else 0
    rebuilt = position_sync(conn, REBUILD)
    if live > rebuilt:
        return live
    for live_table, rebuilt_table in zip(LIVE.all, REBUILD.all, strict=True):
        _replace(conn, live_table.name, rebuilt_table.name, postgres, live_table.name in present)
    return None


def position_sync(conn: Connection, tables: ProjectionTables) -> int:
    """The stream sequence ``tables`` have applied up to (0 before the first event)."""
    p = tables.position
    return int(conn.scalar(select(p.c.stream_seq).where(p.c.consumer == CONSUMER)) or 0)


def _replace(conn: Connection, live: str, rebuilt: str, postgres: bool, live_exists: bool) -> None:
    """Drop table ``live`` and rename ``rebuilt`` to it, its index and constraint names too."""
    inspector = inspect(conn)
    live_names: dict[tuple[str, ...], str] = {}
    if live_exists:
        live_names = {_columns(ix): str(ix["name"]) for ix in inspector.get_indexes(live)}
        conn.exec_driver_sql(f"DROP TABLE {_quoted(live)}")
    rebuilt_indexes = inspector.get_indexes(rebuilt)
    constraints = [inspector.get_pk_constraint(rebuilt), *inspector.get_unique_constraints(rebuilt)]
    conn.exec_driver_sql(f"ALTER TABLE {_quoted(rebuilt)} RENAME TO {_quoted(live)}")
    for index in rebuilt_indexes:
        old = str(index["name"])
        new = live_names.get(_columns(index)) or old.replace(rebuilt, live, 1)
        if postgres:
            conn.exec_driver_sql(f"ALTER INDEX {_quoted(old)} RENAME TO {_quoted(new)}")
        else:
            unique = "UNIQUE " if index.get("unique") else ""
            columns = ", ".join(_quoted(c) for c in _columns(index))
            conn.exec_driver_sql(f"DROP INDEX {_quoted(old)}")
            conn.exec_driver_sql(f"CREATE {unique}INDEX {_quoted(new)} ON {_quoted(live)} ({columns})")
    if postgres:
        for constraint in constraints:
            name = constraint.get("name")
            if name and rebuilt in name:
                renamed = name.replace(rebuilt, live, 1)
                conn.exec_driver_sql(
                    f"ALTER TABLE {_quoted(live)} RENAME CONSTRAINT {_quoted(name)} TO {_quoted(renamed)}"
                )


def _columns(index: Any) -> tuple[str, ...]:
    return tuple(str(c) for c in index["column_names"])


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
