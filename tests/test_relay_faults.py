"""The outbox relay against a real nats-server under faults: order, no loss, no copy, no lag.

ARCHITECTURE.md invariant 1: a row is marked sent only after its PubAck, so a publish that fails
halfway through a batch leaves exactly the unacknowledged rows for the next attempt; and the
stream ends holding every row once, each client's rows in outbox order (the rows here are about
one client; tests/test_relay_order.py mixes clients). Issue 15 item 5: the relay's backoff does
not sleep through the commit doorbell once the broker is back.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from faststream.nats import NatsBroker
from relay_support import kit_store, now, own_regency, regency_broker, stream_ids
from sqlalchemy import select

from pulih.contracts import new_event, subject_for
from pulih.contracts.events.outreach import ClientErased
from pulih.kit.database import Database
from pulih.kit.messaging import stream_publisher
from pulih.kit.nats_server import NatsServer
from pulih.kit.outbox import OutboxRelay, Publish, add_to_outbox, outbox_table
from pulih.kit.testing import REGENCY, eventually

pytestmark = pytest.mark.system

LONG_BACKOFF = 30.0
"""Far longer than any wait below: a relay that sleeps through its backoff fails the test."""


@pytest.fixture
async def broker(nats_server: NatsServer) -> AsyncIterator[NatsBroker]:
    async with regency_broker(nats_server.url, "pulih-test-relay") as broker:
        yield broker


ONE_CLIENT = uuid.uuid4()


async def commit_event(
    database: Database, relay: OutboxRelay | None = None, client_id: uuid.UUID = ONE_CLIENT
) -> uuid.UUID:
    """Write one event about ``client_id`` to the outbox in its own transaction (ringing
    ``relay`` after commit)."""
    event_ = new_event(ClientErased(client_id=client_id, on=date(2026, 3, 1)), regency=REGENCY)
    async with database.transaction() as session:
        await add_to_outbox(
            session, event_, subject_for(event_, REGENCY), wake=relay.wake if relay is not None else None
        )
    return event_.id


async def outbox_rows(database: Database) -> list[tuple[uuid.UUID, bool]]:
    """Every outbox row in order: its event id and whether it is marked published."""
    async with database.sessions() as session:
        rows = (
            await session.execute(
                select(outbox_table.c.event_id, outbox_table.c.published_at).order_by(outbox_table.c.seq)
            )
        ).all()
    return [(row.event_id, row.published_at is not None) for row in rows]


def failing_on_call(publish: Publish, n: int) -> tuple[Publish, list[str]]:
    """``publish`` that raises on its ``n``-th call (only that one); also the ids it was asked for."""
    asked: list[str] = []

    async def flaky(payload: bytes, subject: str, headers: dict[str, str]) -> Any:
        asked.append(headers["Nats-Msg-Id"])
        if len(asked) == n:
            raise ConnectionError("broker went away mid-batch")
        return await publish(payload, subject, headers)

    return flaky, asked


async def test_a_publish_failing_mid_batch_marks_only_what_was_acknowledged(
    nats_server: NatsServer, broker: NatsBroker, database_url: str
) -> None:
    database = await kit_store(database_url)
    try:
        ids = [await commit_event(database) for _ in range(5)]
        flaky, asked = failing_on_call(stream_publisher(broker, REGENCY), 3)
        relay = OutboxRelay(database, flaky)

        with pytest.raises(ConnectionError):
            await relay.relay_once()

        assert asked == [str(i) for i in ids[:3]], "a client's next row waits for the failed one"
        assert await outbox_rows(database) == [(i, n < 2) for n, i in enumerate(ids)]
        assert await stream_ids(nats_server.url) == [str(i) for i in ids[:2]]
        assert await relay.backlog() == 3

        assert await relay.relay_once() == 3  # the broker is back: rows 3.. go out, in order
        assert await outbox_rows(database) == [(i, True) for i in ids]
        assert await relay.backlog() == 0
        assert await stream_ids(nats_server.url) == [str(i) for i in ids]
    finally:
        await database.dispose()


async def test_a_failure_on_the_first_message_marks_nothing_and_publishes_nothing(
    nats_server: NatsServer, broker: NatsBroker, tmp_path: Path
) -> None:
    database = await kit_store(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
    try:
        ids = [await commit_event(database) for _ in range(3)]
        flaky, _ = failing_on_call(stream_publisher(broker, REGENCY), 1)
        with pytest.raises(ConnectionError):
            await OutboxRelay(database, flaky).relay_once()
        assert await outbox_rows(database) == [(i, False) for i in ids]
        assert await stream_ids(nats_server.url) == []
    finally:
        await database.dispose()


@asynccontextmanager
async def _outage(
    tmp_path: Path, *, with_ready: bool
) -> AsyncIterator[tuple[NatsServer, NatsBroker, Database, OutboxRelay]]:
    """A running relay that has published one row, then a broker that died; yields while it is
    down, with the relay in a long backoff after a failed publish."""
    async with own_regency(tmp_path, "pulih-test-relay") as (server, broker, database):
        relay = OutboxRelay(
            database,
            stream_publisher(broker, REGENCY, timeout=1.0),
            poll_seconds=0.2,
            min_backoff_seconds=LONG_BACKOFF,
            max_backoff_seconds=LONG_BACKOFF,
            ready=(lambda: broker.connection.is_connected) if with_ready else None,
        )
        relay.start()
        try:
            await commit_event(database, relay)
            await eventually(relay.backlog, until=lambda n: n == 0)

            server.kill()
            await eventually(lambda: now(not broker.connection.is_connected))
            await commit_event(database, relay)  # fails: the relay backs off for LONG_BACKOFF
            await eventually(lambda: now(relay.stats.failures), until=lambda n: n >= 1)
            yield server, broker, database, relay
        finally:
            await relay.stop()


async def test_a_commit_after_the_broker_is_back_cuts_the_relay_s_backoff_short(tmp_path: Path) -> None:
    async with _outage(tmp_path, with_ready=False) as (server, broker, database, relay):
        server.start()  # the same port and store
        await eventually(lambda: now(broker.connection.is_connected), timeout=15)

        started = time.monotonic()
        await commit_event(database, relay)  # the doorbell
        await eventually(relay.backlog, until=lambda n: n == 0, timeout=LONG_BACKOFF / 3)
        took = time.monotonic() - started

        ids = await stream_ids(server.url)
        assert [(str(i), sent) for i, sent in await outbox_rows(database)] == [(i, True) for i in ids]
        assert len(ids) == len(set(ids)) == 3
        assert took < 5, f"published {took:.1f}s after the commit; the backoff was {LONG_BACKOFF}s"


async def test_with_a_readiness_probe_the_broker_s_return_alone_ends_the_backoff(tmp_path: Path) -> None:
    async with _outage(tmp_path, with_ready=True) as (server, _broker, database, relay):
        failures = relay.stats.failures
        for _ in range(3):  # commits while the broker is down do not make the relay hammer it
            await commit_event(database, relay)
        assert relay.stats.failures == failures

        started = time.monotonic()
        server.start()
        await eventually(relay.backlog, until=lambda n: n == 0, timeout=LONG_BACKOFF / 3)
        took = time.monotonic() - started

        ids = await stream_ids(server.url)
        assert [(str(i), sent) for i, sent in await outbox_rows(database)] == [(i, True) for i in ids]
        assert len(ids) == len(set(ids)) == 5
        assert relay.stats.failures == failures
        assert took < 8, f"published {took:.1f}s after the broker came back; the backoff was {LONG_BACKOFF}s"
