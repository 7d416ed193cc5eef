"""One service's database: the async engine, sessions, and the tables the kit itself owns.

SQLite (a file under the data dir) by default, PostgreSQL through ``DATABASE_URL``. SQLite runs
in WAL mode with a busy timeout so the API, the outbox relay and the consumers can share a file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import BigInteger, Integer, MetaData, event, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

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


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    """The engine and session factory of one service's store."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:
            engine_options.setdefault("connect_args", {"timeout": 15})
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

    async def ping(self) -> None:
        """Raise unless the database answers."""
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
