"""Helpers for the outbox relay's system tests (tests/test_relay_faults.py, tests/test_relay_order.py):
a store with the kit's tables, a broker with the regency's stream, and the stream read back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from faststream.nats import NatsBroker
from system_support import stream_messages

from pulih.kit.database import Database, kit_metadata
from pulih.kit.messaging import ensure_regency_stream, make_broker
from pulih.kit.nats_server import NatsServer
from pulih.kit.testing import REGENCY

T = TypeVar("T")


async def kit_store(url: str) -> Database:
    """The database at ``url`` with the kit's tables (outbox, inbox, idempotency keys) created."""
    database = Database(url)
    async with database.engine.begin() as conn:
        await conn.run_sync(kit_metadata.create_all)
    return database


@asynccontextmanager
async def regency_broker(nats_url: str, name: str) -> AsyncIterator[NatsBroker]:
    """A broker connected to ``nats_url`` as ``name``, the regency's stream declared; stopped on exit."""
    broker = make_broker(nats_url, name=name)
    await broker.connect()
    await ensure_regency_stream(broker, REGENCY)
    try:
        yield broker
    finally:
        await broker.stop()


@asynccontextmanager
async def own_regency(
    tmp_path: Path, broker_name: str
) -> AsyncIterator[tuple[NatsServer, NatsBroker, Database]]:
    """A nats-server of the test's own (to kill and start again on the same port and store), a
    broker connected to it as ``broker_name`` with the regency's stream declared, and a SQLite
    store with the kit's tables, all in ``tmp_path``; closed and stopped on exit."""
    server = NatsServer(tmp_path / "nats", server_name="pulih-test").start()
    broker = make_broker(server.url, name=broker_name)
    database = await kit_store(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
    try:
        await broker.connect()
        await ensure_regency_stream(broker, REGENCY)
        yield server, broker, database
    finally:
        await broker.stop()
        await database.dispose()
        server.stop()


async def stream_ids(nats_url: str) -> list[str]:
    """The ``Nats-Msg-Id`` of every message in the regency's stream, in stream order."""
    return [
        (m.headers or {}).get("Nats-Msg-Id", "") for m in await stream_messages(nats_url, f"ibm.{REGENCY}.>")
    ]


async def now(value: T) -> T:
    """``value`` as an awaitable, for :func:`~pulih.kit.testing.eventually` to poll a plain
    attribute (``lambda: now(relay.stats.failures)``)."""
    return value
