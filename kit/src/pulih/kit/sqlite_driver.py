"""SQLite for the asyncio engine without a thread hop per call: ``sqlite+pulih://``.

aiosqlite runs every call (``cursor()``, ``execute``, ``fetchall``, ``close``: three or four per
statement) in the connection's thread and wakes the event loop with the answer. On the 2-core
box each hop cost about 85 µs of CPU and, with the machine busy, a scheduler slice of wall time:
one screening spent more time handing its ten statements between threads than in SQLite
(1.4 ms a statement against 0.05 ms inline, measured side by side). A service's statements are
small (a row by key, an insert), so this driver runs them **inline**, in the event loop's thread,
through Python's own :mod:`sqlite3` (the pysqlite dialect, declared asynchronous so the asyncio
engine takes it). Two cases still leave the loop:

- **The database is busy.** Connections are opened with a busy timeout of 0: a statement that
  meets another connection's write lock fails at once instead of sleeping inside SQLite (which
  would stop every other request of the process, and could wait forever for a transaction of the
  same process that cannot commit while the loop is stopped). It is then run again in a worker
  thread with :data:`BUSY_TIMEOUT_MS`, so the loop goes on while SQLite waits for the lock. A
  statement refused with ``SQLITE_BUSY`` changed nothing, so running it again is safe.
- **Bulk writes.** ``executemany`` with at least :data:`BULK_ROWS` rows (a consumer's batch, a
  projection rebuilt) runs in a worker thread, where SQLite works while the loop parses the next
  batch on the other core.

The connection is used by one coroutine at a time (the pool checks it out), and by the worker
thread only while that coroutine waits for it, so ``check_same_thread`` is off.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine.url import URL
from sqlalchemy.util.concurrency import await_, in_greenlet

T = TypeVar("T")

BUSY_TIMEOUT_MS = 15_000
"""How long a statement that met another writer waits for it, in the worker thread."""

BULK_ROWS = 50
"""From how many rows an ``executemany`` runs in a worker thread."""

_SQLITE_BUSY = 5
_SQLITE_BUSY_SNAPSHOT = 5 | (2 << 8)
"""A deferred transaction that read an older snapshot cannot write: waiting never helps."""


def _busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # pragma: no cover - Python < 3.11
        return "database is locked" in str(exc)
    return bool(code & 0xFF == _SQLITE_BUSY and code != _SQLITE_BUSY_SNAPSHOT)


class InlineConnection(sqlite3.Connection):
    """A :class:`sqlite3.Connection` whose cursors run inline and wait for locks off the loop."""

    def cursor(self, factory: Any = None) -> Any:
        return super().cursor(factory or InlineCursor)

    def commit(self) -> None:
        try:
            super().commit()
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
            _off_the_loop(self, super().commit)

    def _waiting(self, call: Callable[[], T]) -> T:
        """Run ``call`` (in a worker thread) with the busy timeout on."""
        plain = super().cursor()
        plain.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        try:
            return call()
        finally:
            plain.execute("PRAGMA busy_timeout = 0")
            plain.close()


class InlineCursor(sqlite3.Cursor):
    """Runs statements in the calling thread; see the module's docstring for the exceptions."""

    connection: InlineConnection

    async def _async_soft_close(self) -> None:
        """What the asyncio engine calls on a result it hands over: rows are read inline, as
        they are asked for, so there is nothing to fetch ahead."""

    def execute(self, sql: str, parameters: Any = (), /) -> InlineCursor:
        try:
            super().execute(sql, parameters)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
            _off_the_loop(self.connection, lambda: super(InlineCursor, self).execute(sql, parameters))
            return self
        _awaited()
        return self

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> InlineCursor:
        rows = seq_of_parameters if isinstance(seq_of_parameters, list) else list(seq_of_parameters)
        if len(rows) >= BULK_ROWS and in_greenlet():
            await_(_in_worker(self.connection, lambda: super(InlineCursor, self).executemany(sql, rows)))
            return self
        try:
            super().executemany(sql, rows)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
            _off_the_loop(self.connection, lambda: super(InlineCursor, self).executemany(sql, rows))
            return self
        _awaited()
        return self


async def _nothing() -> None:
    """A coroutine that finishes without suspending: awaiting it costs two greenlet switches and
    no turn of the event loop."""


def _awaited() -> None:
    """Await :func:`_nothing` from SQLAlchemy's greenlet. ``AsyncConnection.execute`` refuses a
    driver that never awaited (``AwaitRequired``: its check for a sync driver by mistake); a
    statement run inline awaits this instead of a thread."""
    if in_greenlet():
        await_(_nothing())


def _off_the_loop(connection: InlineConnection, call: Callable[[], T]) -> T:
    """Run ``call`` again with the busy timeout on: in a worker thread when an event loop waits
    for it (through SQLAlchemy's greenlet), in this thread otherwise."""
    if in_greenlet():
        return await_(_in_worker(connection, call))
    return connection._waiting(call)


async def _in_worker(connection: InlineConnection, call: Callable[[], T]) -> T:
    """Run ``call`` with the busy timeout on, in a worker thread. If the caller is cancelled
    meanwhile (a consumer's handler timeout), the statement is interrupted and the thread waited
    for before the cancellation goes on: the connection must not be rolled back or closed while
    the thread still runs on it (SQLite would crash the process)."""
    worker = asyncio.ensure_future(asyncio.to_thread(connection._waiting, call))
    try:
        return await asyncio.shield(worker)
    except asyncio.CancelledError:
        connection.interrupt()
        while not worker.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({worker})
        if not worker.cancelled():
            worker.exception()  # "interrupted": the cancellation is what the caller hears of
        raise


class SQLiteDialect_pulih(SQLiteDialect_pysqlite):
    """The pysqlite dialect, for the asyncio engine, with :class:`InlineConnection`."""

    driver = "pulih"
    is_async = True
    supports_statement_cache = True

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        if cls._is_url_file_db(url):
            return pool.AsyncAdaptedQueuePool
        return pool.StaticPool

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        cparams["factory"] = InlineConnection
        cparams["check_same_thread"] = False
        cparams["timeout"] = 0
        return super().connect(*cargs, **cparams)


registry.register("sqlite.pulih", __name__, "SQLiteDialect_pulih")
