"""Leader lock: of two relays on one database only one publishes, and the other takes over
within seconds when the first dies (issue 13, "Leader lock").

Each relay has a store of its own (its own connection pool, as a second process would) on the
same database: a PostgreSQL schema, or a SQLite file. The publishers are stand-ins that record
what they were asked to publish: the lease is about who publishes, not about NATS.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from pulih.contracts import new_event, subject_for
from pulih.contracts.events.outreach import ClientErased
from pulih.kit.database import Database, kit_metadata
from pulih.kit.outbox import OutboxRelay, add_to_outbox
from pulih.kit.relay_lease import FileRelayLock, PostgresRelayLock, relay_lease_for
from pulih.kit.testing import REGENCY, eventually, postgres_schema_url

TAKEOVER = 5.0
"""How soon a relay must take over from one that died ("within seconds")."""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One database two relays share: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'outreach.db'}"
    else:
        yield from postgres_schema_url()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema."""
    yield from postgres_schema_url()


class Recorder:
    """A stand-in publish function that records the ids it published."""

    def __init__(self) -> None:
        self.published: list[str] = []

    async def publish(self, payload: bytes, subject: str, headers: dict[str, str]) -> None:
        self.published.append(headers["Nats-Msg-Id"])


class Replica:
    """One relay replica: its own pool on the shared database, its lease, its publisher."""

    def __init__(self, url: str) -> None:
        self.database = Database(url)
        self.recorder = Recorder()
        lease = relay_lease_for(self.database, "outreach")
        assert isinstance(lease, PostgresRelayLock | FileRelayLock)
        lease.retry_seconds = 0.2
        if isinstance(lease, PostgresRelayLock):
            lease.check_seconds = 0.2
        self.relay = OutboxRelay(self.database, self.recorder.publish, poll_seconds=0.2, lease=lease)

    async def close(self) -> None:
        await self.relay.stop()
        await self.database.dispose()


@pytest.fixture
async def replicas(store_url: str) -> AsyncIterator[tuple[Replica, Replica]]:
    first, second = Replica(store_url), Replica(store_url)
    async with first.database.engine.begin() as conn:
        await conn.run_sync(kit_metadata.create_all)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def commit(database: Database, *relays: OutboxRelay) -> str:
    """Write one event to the outbox, ringing each relay's doorbell (as its own process would
    ring only its own, both are rung here: a follower must not publish even when woken)."""
    event_ = new_event(ClientErased(client_id=uuid.uuid4(), on=date(2026, 3, 1)), regency=REGENCY)
    async with database.transaction() as session:
        await add_to_outbox(session, event_, subject_for(event_, REGENCY))
    for relay in relays:
        relay.wake()
    return str(event_.id)


async def _value(x: Any) -> Any:
    return x


async def test_of_two_relays_on_one_database_only_one_publishes_and_the_other_takes_over(
    replicas: tuple[Replica, Replica],
) -> None:
    first, second = replicas
    first.relay.start()
    await eventually(lambda: _value(first.relay.stats.leading))
    second.relay.start()
    ids = [await commit(first.database, first.relay, second.relay) for _ in range(10)]
    await eventually(first.relay.backlog, until=lambda n: n == 0)
    await asyncio.sleep(0.6)  # a window for a wrong second relay to publish too (3 of its polls)
    assert first.recorder.published == ids
    assert second.recorder.published == []
    assert (first.relay.stats.leading, second.relay.stats.leading) == (True, False)

    await first.relay.stop()  # the leader stops: its task cancelled, its lease's connection closed
    started = time.monotonic()
    later = [await commit(second.database, second.relay) for _ in range(5)]
    await eventually(
        lambda: _value(second.recorder.published), until=lambda p: p == later, timeout=TAKEOVER * 2
    )
    assert time.monotonic() - started < TAKEOVER
    assert first.recorder.published == ids, "the stopped relay published nothing more"


_HOLDER = """
import asyncio, sys
from pulih.kit.database import Database
from pulih.kit.relay_lease import relay_lease_for

async def main():
    lease = relay_lease_for(Database(sys.argv[1]), "outreach")
    assert await lease.hold()
    print("held", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_when_the_process_holding_the_lease_is_killed_another_relay_takes_over_in_seconds(
    replicas: tuple[Replica, Replica], store_url: str
) -> None:
    _, replica = replicas
    holder = subprocess.Popen(  # noqa: ASYNC220 (started once; its output is read in a thread)
        [sys.executable, "-c", _HOLDER, store_url], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        assert holder.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(holder.stdout.readline), timeout=30)
        assert line.strip() == b"held"
        replica.relay.start()
        ids = [await commit(replica.database, replica.relay) for _ in range(3)]
        await asyncio.sleep(0.6)  # a window for a wrong relay to publish (3 of its polls)
        assert replica.recorder.published == []
        assert await replica.relay.backlog() == 3

        os.kill(holder.pid, signal.SIGKILL)  # a crash: nothing is released by the holder itself
        started = time.monotonic()
        await eventually(replica.relay.backlog, until=lambda n: n == 0, timeout=TAKEOVER * 2)
        assert time.monotonic() - started < TAKEOVER
        assert replica.recorder.published == ids
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()


@pytest.mark.postgres
async def test_a_leader_whose_lock_connection_breaks_stops_publishing(pg_url: str) -> None:
    first = Replica(pg_url)
    rival_database = Database(pg_url)
    rival = PostgresRelayLock(rival_database, "outreach", retry_seconds=0.0)
    try:
        async with first.database.engine.begin() as conn:
            await conn.run_sync(kit_metadata.create_all)
        first.relay.start()
        await eventually(lambda: _value(first.relay.stats.leading))
        lease = first.relay.lease
        assert isinstance(lease, PostgresRelayLock) and lease._connection is not None
        lease.check_seconds = 1.0  # the rival, trying every 50 ms, takes the lock before it looks
        pid = await lease._connection.scalar(text("SELECT pg_backend_pid()"))
        async with rival_database.engine.connect() as conn:  # say, an administrator ended it
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await eventually(rival.hold, timeout=TAKEOVER)  # another replica took the lock
        await eventually(lambda: _value(first.relay.stats.leading), until=lambda leading: not leading)

        ids = [await commit(first.database, first.relay) for _ in range(3)]
        await asyncio.sleep(0.6)  # a window for a wrong relay to publish (3 of its polls)
        assert first.recorder.published == []
        assert await first.relay.backlog() == 3

        await rival.release()  # that replica dies: the first takes the lock again
        await eventually(lambda: _value(first.recorder.published), until=lambda p: p == ids, timeout=TAKEOVER)
    finally:
        await rival.release()
        await rival_database.dispose()
        await first.close()


@pytest.mark.postgres
async def test_services_sharing_a_database_each_have_their_own_lease(pg_url: str) -> None:
    database, other = Database(pg_url), Database(pg_url)
    try:
        outreach, rehab = relay_lease_for(database, "outreach"), relay_lease_for(database, "rehab")
        second_outreach = relay_lease_for(other, "outreach")
        assert outreach is not None and rehab is not None and second_outreach is not None
        assert await outreach.hold() and await rehab.hold()
        assert not await second_outreach.hold()
        for lease in (outreach, rehab, second_outreach):
            await lease.release()
    finally:
        await database.dispose()
        await other.dispose()


def test_an_in_memory_sqlite_database_needs_no_lease() -> None:
    assert relay_lease_for(Database("sqlite+aiosqlite:///:memory:"), "outreach") is None
