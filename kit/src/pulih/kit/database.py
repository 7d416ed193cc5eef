"""One service's database: the async engine, sessions, and the tables the kit itself owns.

SQLite (a file under the data dir) by default, PostgreSQL through ``DATABASE_URL``.

SQLite goes through :mod:`pulih.kit.sqlite_driver` (statements inline in the event loop, no
thread hop each; a statement that meets another writer waits in a worker thread) and every
connection is set up by :func:`_sqlite_pragmas`:

- ``journal_mode=WAL``: readers never block the writer nor the writer the readers, so the API,
  the outbox relay and the consumers share the file; a commit appends to the log instead of
  rewriting pages.
- ``synchronous=NORMAL``: in WAL mode a commit is not fsynced, the log is at each checkpoint.
  **Durable across a crash of the process** (what a commit wrote is in the OS's page cache and
  reaches the file); a power cut or a kernel crash can lose the last transactions before the
  checkpoint, never corrupt the database. The events those transactions wrote went with them:
  the outbox and the state stay one (ARCHITECTURE.md's guarantee), only the latest commits are
  lost together. (``FULL`` would fsync every commit, a few ms more each on an office PC's disk.)
- ``busy_timeout=0`` inline; see the driver for the wait in a worker thread (15 s).
- ``cache_size`` 8 MiB and ``mmap_size`` 64 MiB per connection: the hot pages (keys, the
  outbox's tail) stay in memory; ``temp_store=MEMORY`` for sorts; ``journal_size_limit`` keeps
  the log file from staying large after a burst.
- ``foreign_keys=ON``.

Writes of one process queue on an :class:`asyncio.Lock` (SQLite has one writer), which is much
faster than letting transactions collide on SQLite's own lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Insert, Integer, MetaData, Table, event, inspect, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from pulih.kit import sqlite_driver

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

kit_metadata = MetaData(naming_convention=NAMING_CONVENTION)
"""Tables of the kit (outbox, inbox, idempotency) that live in every service's database."""

BigIntId = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit autoincrementing key (SQLite only autoincrements INTEGER PRIMARY KEY)."""


SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=0",
    "PRAGMA foreign_keys=ON",
    "PRAGMA cache_size=-8192",
    "PRAGMA mmap_size=67108864",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA journal_size_limit=67108864",
    "PRAGMA synchronous=NORMAL",
)
"""Set on every SQLite connection (the module's docstring says why)."""


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    cursor = dbapi_conn.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


_INSERTS: dict[Table, Insert] = {}


def insert_for(table: Table, dialect: str) -> sqlite.Insert | postgresql.Insert:
    """The INSERT into ``table`` of the dialect named ``dialect`` (``sqlite`` or ``postgresql``),
    which knows ``ON CONFLICT``. PostgreSQL's dialect is loaded only when asked for: a service on
    SQLite never holds it (2 MB, and its drivers' modules)."""
    if dialect != "postgresql":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)
    from sqlalchemy.dialects import postgresql

    return postgresql.insert(table)


async def insert_new(session: AsyncSession, row: Any) -> None:
    """INSERT a new row of a mapped class now, with Core: the attributes set on ``row`` (the
    columns' defaults for the others), in the session's transaction.

    For a row a command adds and does not change again in that transaction: the ORM's flush
    (unit of work, identity map, events) costs more than the INSERT itself. ``row`` stays out of
    the session (transient), to build the answer and the event from."""
    table: Table = type(row).__table__
    statement = _INSERTS.get(table)
    if statement is None:
        statement = _INSERTS[table] = table.insert()
    given = inspect(row).dict
    await session.execute(statement, {c.key: given[c.key] for c in table.columns if c.key in given})


def hold_rows(session: AsyncSession) -> None:
    """Keep every row loaded or added in ``session`` in its identity map until the session ends.
    The map holds rows weakly: a row read by one event of a batch, or one item of a chunk, would
    otherwise be gone by the next, and read again from the store."""
    held: list[object] = []
    sync = session.sync_session
    event.listen(sync, "pending_to_persistent", lambda _, row: held.append(row))
    event.listen(sync, "loaded_as_persistent", lambda _, row: held.append(row))
    sync.info["pulih.held_rows"] = held


class Database:
    """The engine and session factory of one service's store."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:
            parsed = parsed.set(drivername=f"sqlite+{sqlite_driver.SQLiteDialect_pulih.driver}")
        else:
            engine_options.setdefault("pool_pre_ping", True)
            # ?search_path=<schema> lets services share one PostgreSQL database, a schema each.
            schema = parsed.query.get("search_path")
            if isinstance(schema, str):
                parsed = parsed.difference_update_query(["search_path"])
                engine_options.setdefault("connect_args", {"server_settings": {"search_path": schema}})
        self.url = parsed.render_as_string(hide_password=False)
        self.engine: AsyncEngine = create_async_engine(parsed, **engine_options)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time and its busy handler waits by sleeping; queueing
        # this process's write transactions here is much faster than letting them collide.
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        if self._write_lock is None:
            async with self.sessions() as session, session.begin():
                yield session
            return
        async with self._write_lock, self.sessions() as session, session.begin():
            yield session

    async def open_for_savepoints(self, session: AsyncSession) -> None:
        """Open ``session``'s transaction for real before its first savepoint. Python's sqlite3
        begins one only before a write, so a first ``SAVEPOINT`` would open a transaction of its
        own, and releasing it would commit the work before it (PostgreSQL needs nothing)."""
        if not self.is_sqlite:
            return
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        if not getattr(raw.driver_connection, "in_transaction", True):
            from sqlalchemy import text

            await session.execute(text("BEGIN"))

    async def ping(self) -> None:
        """Raise unless the database answers."""
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
