"""Order after a failure: the pipelined relay keeps every client's events in outbox order.

Issue 13, "Order after a failure". The relay sends a window of rows with many PubAcks pending
(kit/src/pulih/kit/relay_window.py). Each test writes rows about several clients, interleaved,
injects a failure in the middle of a window against a real nats-server, lets the relay finish,
and checks the stream: every row once (nothing lost, nothing doubled) and each client's rows in
the order of the outbox. Each also checks that the failure really came mid-window: rows sent
after the failed one, about other clients, were stored before the retry.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from faststream.nats import NatsBroker
from relay_support import kit_store, now, own_regency, regency_broker, stream_ids
from sqlalchemy import select

from pulih.contracts import new_event, subject_for
from pulih.contracts.events.outreach import ClientErased
from pulih.kit.database import Database
from pulih.kit.messaging import StreamLimits, ensure_regency_stream, stream_publisher
from pulih.kit.nats_server import NatsServer
from pulih.kit.outbox import OutboxRelay, add_to_outbox, outbox_table
from pulih.kit.testing import REGENCY, eventually

pytestmark = pytest.mark.system

CLIENTS = 8
ROWS = 120
"""Rows per test, about ``CLIENTS`` clients in turn: a window of the relay's (256) holds them all."""


@pytest.fixture
async def broker(nats_server: NatsServer) -> AsyncIterator[NatsBroker]:
    async with regency_broker(nats_server.url, "pulih-test-relay-order") as broker:
        yield broker


async def write_rows(database: Database, rows: int = ROWS, *, pad: dict[int, int] | None = None) -> list[str]:
    """Write ``rows`` events, about the clients in turn, in one transaction; their ids in outbox
    order. ``pad`` gives row numbers whose payload gets that many bytes of trailing whitespace
    (still the same JSON), to exceed the stream's largest message."""
    clients = [uuid.uuid4() for _ in range(CLIENTS)]
    ids: list[str] = []
    async with database.transaction() as session:
        for n in range(rows):
            event_ = new_event(
                ClientErased(client_id=clients[n % CLIENTS], on=date(2026, 1, 1) + timedelta(days=n)),
                regency=REGENCY,
            )
            await add_to_outbox(session, event_, subject_for(event_, REGENCY))
            ids.append(str(event_.id))
        for n, size in (pad or {}).items():
            row = outbox_table.c.event_id == uuid.UUID(ids[n])
            payload = await session.scalar(select(outbox_table.c.payload).where(row))
            await session.execute(outbox_table.update().where(row).values(payload=payload + b" " * size))
    return ids


async def client_of(database: Database) -> dict[str, str]:
    """Each outbox row's event id and the client it is about."""
    async with database.sessions() as session:
        rows = (await session.execute(select(outbox_table.c.event_id, outbox_table.c.payload))).all()
    return {str(r.event_id): _client(r.payload) for r in rows}


def _client(payload: bytes) -> str:
    return str(json.loads(payload)["data"]["client_id"])


def per_client(ids: list[str], clients: dict[str, str]) -> dict[str, list[str]]:
    """``ids`` split by client, each list in the order of ``ids``."""
    split: dict[str, list[str]] = defaultdict(list)
    for id_ in ids:
        split[clients[id_]].append(id_)
    return dict(split)


async def assert_every_client_in_outbox_order(database: Database, nats_url: str, outbox: list[str]) -> None:
    """The stream holds each outbox row once, each client's rows in outbox order, and every row
    is marked published."""
    stored = await stream_ids(nats_url)
    assert sorted(stored) == sorted(outbox), "a row was lost or doubled"
    clients = await client_of(database)
    assert per_client(stored, clients) == per_client(outbox, clients)
    async with database.sessions() as session:
        unmarked = (
            await session.execute(select(outbox_table.c.seq).where(outbox_table.c.published_at.is_(None)))
        ).all()
    assert unmarked == []


async def test_a_message_the_stream_refuses_mid_window_is_never_overtaken_by_its_client(
    nats_server: NatsServer, broker: NatsBroker, database_url: str
) -> None:
    # The stream refuses messages over 2 KiB; row 30 is 4 KiB (an operator raises the limit later).
    await ensure_regency_stream(broker, REGENCY, StreamLimits(max_msg_size=2048))
    database = await kit_store(database_url)
    try:
        outbox = await write_rows(database, pad={30: 4096})
        relay = OutboxRelay(database, stream_publisher(broker, REGENCY))

        with pytest.raises(Exception, match=r"(?i)maximum|size"):
            await relay.relay_once()

        clients = await client_of(database)
        refused_client = clients[outbox[30]]
        stored = await stream_ids(nats_server.url)
        assert outbox[30] not in stored
        assert not [i for i in outbox[31:] if clients[i] == refused_client and i in stored], (
            "a later row about the refused row's client was stored before it"
        )
        later_others = [i for i in outbox[31:] if clients[i] != refused_client]
        assert set(later_others) <= set(stored), "the window stopped at the failure instead of going on"
        assert await relay.backlog() == len([i for i in outbox[30:] if clients[i] == refused_client])

        with pytest.raises(Exception, match=r"(?i)maximum|size"):
            await relay.relay_once()  # still refused: still nothing of that client passes it
        assert await stream_ids(nats_server.url) == stored

        await ensure_regency_stream(broker, REGENCY)  # the operator raises the limit
        while await relay.relay_once():
            pass
        await assert_every_client_in_outbox_order(database, nats_server.url, outbox)
        assert relay.stats.published == ROWS
    finally:
        await database.dispose()


class LateFailure:
    """The stream publisher, except that row ``failing``'s publish fails only once ``after``
    later rows were acknowledged (a timeout): its message lost, or (``stored_anyway``) stored
    after all. Through :meth:`send` (the relay's pipelined path) or a call (a plain publish
    function, a task per row), as ``pipelined`` says."""

    def __init__(self, broker: NatsBroker, failing: str, *, after: int, stored_anyway: bool) -> None:
        self.publisher = stream_publisher(broker, REGENCY)
        self.timeout = 30.0
        self.failing, self.after, self.stored_anyway = failing, after, stored_anyway
        self.acked: list[str] = []
        self.failed = False

    async def _late(self, payload: bytes, subject: str, headers: dict[str, str]) -> None:
        self.failed = True
        if self.stored_anyway:
            await self.publisher(payload, subject, headers)
        await eventually(lambda: now(len(self.acked)), until=lambda n: n >= self.after)
        raise TimeoutError("no PubAck in time")

    async def __call__(self, payload: bytes, subject: str, headers: dict[str, str]) -> None:
        id_ = headers["Nats-Msg-Id"]
        if id_ == self.failing and not self.failed:
            await self._late(payload, subject, headers)
        await self.publisher(payload, subject, headers)
        self.acked.append(id_)

    async def send(self, payload: bytes, subject: str, headers: dict[str, str]) -> asyncio.Future[Any]:
        id_ = headers["Nats-Msg-Id"]
        if id_ == self.failing and not self.failed:
            return asyncio.ensure_future(self._late(payload, subject, headers))
        answer = await self.publisher.send(payload, subject, headers)
        answer.add_done_callback(lambda done: done.exception() or self.acked.append(id_))
        return answer


class CalledOnly:
    """``publish`` without its ``send``: the relay publishes through it a task per row."""

    def __init__(self, publish: LateFailure) -> None:
        self.publish = publish

    async def __call__(self, payload: bytes, subject: str, headers: dict[str, str]) -> None:
        await self.publish(payload, subject, headers)


@pytest.mark.parametrize("pipelined", [True, False], ids=["send", "call"])
@pytest.mark.parametrize("stored_anyway", [False, True], ids=["lost", "stored"])
async def test_a_failure_reported_after_later_rows_were_stored_is_not_overtaken(
    nats_server: NatsServer, broker: NatsBroker, tmp_path: Path, stored_anyway: bool, pipelined: bool
) -> None:
    database = await kit_store(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
    try:
        outbox = await write_rows(database)
        late = LateFailure(broker, outbox[40], after=60, stored_anyway=stored_anyway)
        # Windows of 32 rows, each started while the one before awaits its PubAcks: the failed
        # row's client has rows in the later windows too.
        relay = OutboxRelay(database, late if pipelined else CalledOnly(late), batch_size=32)
        with pytest.raises(TimeoutError):
            await relay.relay_all()
        clients = await client_of(database)
        stored = await stream_ids(nats_server.url)
        others_after = [i for i in outbox[41:] if clients[i] != clients[outbox[40]]]
        assert set(others_after) & set(stored), "the failure was not in the middle of a window"
        assert (outbox[40] in stored) == stored_anyway

        assert await relay.relay_all() == ROWS - len(set(stored) - {outbox[40]})
        await assert_every_client_in_outbox_order(database, nats_server.url, outbox)
    finally:
        await database.dispose()


@pytest.mark.slow
async def test_the_server_killed_mid_window_and_restarted_loses_reorders_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    async with own_regency(tmp_path, "pulih-test-relay-order") as (server, broker, database):
        outbox = await write_rows(database, rows=600)
        publisher = stream_publisher(broker, REGENCY, timeout=1.0)
        sends = 0

        class Killing:
            """The stream publisher (pipelined), killing the server at the 300th message."""

            timeout = publisher.timeout

            async def __call__(self, payload: bytes, subject: str, headers: dict[str, str]) -> None:
                await publisher(payload, subject, headers)

            async def send(
                self, payload: bytes, subject: str, headers: dict[str, str]
            ) -> asyncio.Future[Any]:
                nonlocal sends
                sends += 1
                if sends == 300:  # the second window (of 128), many PubAcks pending
                    server.kill()
                return await publisher.send(payload, subject, headers)

        relay = OutboxRelay(
            database,
            Killing(),
            batch_size=128,
            poll_seconds=0.2,
            min_backoff_seconds=0.2,
            max_backoff_seconds=1.0,
        )
        relay.start()
        try:
            await eventually(lambda: now(relay.stats.failures), until=lambda n: n >= 1)
            assert 0 < await relay.backlog() < len(outbox)
            await asyncio.to_thread(server.start)  # the same port and store
            await eventually(relay.backlog, until=lambda n: n == 0, timeout=60)
            await assert_every_client_in_outbox_order(database, server.url, outbox)
        finally:
            await relay.stop()
