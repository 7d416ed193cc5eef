"""Which of several relays on one store publishes: the relay lease.

Two replicas of a service on one database each run an outbox relay. Each would be correct on
its own (a row goes out only after the PubAck of every earlier row about the same client, and
``Nats-Msg-Id`` drops a row published twice), but two relays racing over the same rows double
the broker's work and each one's failures hold back the other. So only the holder of the lease
publishes; the others look again every ``retry_seconds`` and take over when it goes.

- **PostgreSQL**: a session-level advisory lock (``pg_try_advisory_lock``) held on a connection
  of its own, keyed by the schema and the service (services sharing one database each get
  theirs). When the holder's process dies its connection closes and PostgreSQL frees the lock
  at once; a replica takes it at its next try, within ``retry_seconds`` (plus the relay's poll).
  The holder checks its connection every ``check_seconds``; if it broke (the database restarted,
  the network dropped) it stops publishing and competes again. A holder cut off from PostgreSQL
  may publish for up to ``check_seconds`` while another has taken over: harmless, as said above.
- **SQLite**: one process per database file is the rule (``pulih up`` runs each service once).
  Several processes on one file (say, uvicorn workers) are still kept to one relay by an
  exclusive ``flock`` on ``<file>-relay.lock`` beside the database, freed by the kernel when
  the holder dies. In-memory databases have no lease (one process by definition).

A replica that does not hold the lease does not ring the holder's doorbell: its commits are
published at the holder's next poll (``PULIH_RELAY_POLL_SECONDS``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Protocol

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection

from pulih.kit.database import Database

log = logging.getLogger("pulih.outbox")

_TRY_LOCK = text(
    "SELECT pg_try_advisory_lock(('x' || left(md5(current_schema() || ':' || :name), 16))::bit(64)::bigint)"
)
"""The lock's 64-bit key is made from the schema and the name, so services sharing a database
each have their own."""


class RelayLease(Protocol):
    """Whether this relay may publish now."""

    async def hold(self) -> bool:
        """True while this relay holds the lease: takes it when free (at most every
        ``retry_seconds``), and checks it still has it. Never raises."""

    async def release(self) -> None:
        """Give the lease up (at stop), so another relay takes over at once."""


class PostgresRelayLock:
    """The relay lease on PostgreSQL: an advisory lock held on a connection of its own."""

    def __init__(
        self, database: Database, name: str, *, retry_seconds: float = 1.0, check_seconds: float = 1.0
    ) -> None:
        self.database = database
        self.name = name
        self.retry_seconds = retry_seconds
        self.check_seconds = check_seconds
        self._connection: AsyncConnection | None = None
        self._checked = 0.0
        self._tried = float("-inf")

    async def hold(self) -> bool:
        """True while the lock is held on a live connection (see :class:`RelayLease`)."""
        now = time.monotonic()
        if self._connection is not None:
            if now - self._checked < self.check_seconds:
                return True
            try:
                await self._connection.execute(text("SELECT 1"))
            except Exception as exc:
                log.warning("outbox relay %s lost its lease (%s); trying to take it again", self.name, exc)
                await self._drop()
            else:
                self._checked = now
                return True
        if now - self._tried < self.retry_seconds:
            return False
        self._tried = now
        try:
            connection = await self.database.engine.connect()
        except Exception as exc:
            log.warning("outbox relay %s cannot reach its database for the lease: %s", self.name, exc)
            return False
        try:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            held = bool(await connection.scalar(_TRY_LOCK, {"name": self.name}))
        except Exception as exc:
            log.warning("outbox relay %s could not ask for the lease: %s", self.name, exc)
            held = False
        if not held:
            await _discard(connection)
            return False
        log.info("outbox relay %s holds the lease: it publishes", self.name)
        self._connection, self._checked = connection, now
        return True

    async def release(self) -> None:
        """Close the lock's connection: PostgreSQL frees the lock with it."""
        await self._drop()

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await _discard(connection)


async def _discard(connection: AsyncConnection) -> None:
    # Invalidated, not returned to the pool: a pooled connection would keep the lock for whoever
    # checks it out next.
    with contextlib.suppress(Exception):
        await connection.invalidate()
    with contextlib.suppress(Exception):
        await connection.close()


class FileRelayLock:
    """The relay lease on SQLite: an exclusive ``flock`` on a file beside the database."""

    def __init__(self, path: Path, name: str, *, retry_seconds: float = 1.0) -> None:
        self.path = path
        self.name = name
        self.retry_seconds = retry_seconds
        self._fd: int | None = None
        self._tried = float("-inf")

    async def hold(self) -> bool:
        """True while this process holds the lock file (see :class:`RelayLease`)."""
        import fcntl

        if self._fd is not None:
            return True
        now = time.monotonic()
        if now - self._tried < self.retry_seconds:
            return False
        self._tried = now
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.warning("outbox relay %s cannot open its lease file %s: %s", self.name, self.path, exc)
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        log.info("outbox relay %s holds the lease (%s): it publishes", self.name, self.path)
        self._fd = fd
        return True

    async def release(self) -> None:
        """Close the lock file: the kernel frees the lock with it."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def relay_lease_for(database: Database, name: str) -> RelayLease | None:
    """The lease for relays of service ``name`` on ``database``; None where there is nothing to
    share (an in-memory SQLite database, or a platform without ``flock``)."""
    if not database.is_sqlite:
        return PostgresRelayLock(database, name)
    path = make_url(database.url).database
    if not path or path == ":memory:" or path.startswith("file:") or os.name != "posix":
        return None
    return FileRelayLock(Path(f"{path}-relay.lock"), name)
