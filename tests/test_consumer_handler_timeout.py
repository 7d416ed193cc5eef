"""Every attempt of the kit's durable consumer gets at most ``PULIH_HANDLER_TIMEOUT_SECONDS``.

A store can hang without raising (a stopped PostgreSQL, a disk that stalls, a SQLite file whose
write lock another connection holds): the attempt overruns, the probe cannot commit either, and
the consumer pauses, says so, and spends no attempt; it applies the message once the store
answers. A handler that hangs on its own while the store answers spends its attempts like any
failing handler, and its message is dead-lettered after ``max_deliver``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from system_support import stream_messages
from test_consumer_delivery import Harness, on_registered, registered, registration
from test_consumer_store_faults import count, open_store, start_consumers

from pulih.contracts import CloudEvent
from pulih.contracts.events.outreach import ClientRegistered
from pulih.kit.consumers import Delivery
from pulih.kit.database import Database
from pulih.kit.emitter import Emitter
from pulih.kit.inbox import inbox_table
from pulih.kit.nats_server import NatsServer
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.telemetry import setup_tracing
from pulih.kit.testing import eventually, make_settings
from pulih.kit.unit_of_work import UnitOfWork

pytestmark = pytest.mark.system

HANDLER_TIMEOUT = 1.0
HANG_SECONDS = 6.0
"""Longer than the retry budget (2 attempts of a 1 s timeout, 0.1 s apart), shorter than SQLite's
15 s busy timeout: the store never raises, it only makes the writer wait."""


@contextlib.asynccontextmanager
async def store_hangs(database_url: str) -> AsyncIterator[None]:
    """Another connection holds the write lock: SQLite's ``BEGIN EXCLUSIVE`` (every other writer
    waits, for up to the busy timeout), PostgreSQL's ``LOCK TABLE`` on the inbox and the effect
    table (a writer waits for ever). Reads still answer."""
    if make_url(database_url).get_backend_name() == "sqlite":
        locked, release = threading.Event(), threading.Event()

        def hold() -> None:
            db = sqlite3.connect(make_url(database_url).database or "", timeout=30, isolation_level=None)
            try:
                db.execute("BEGIN EXCLUSIVE")
                locked.set()
                release.wait(60)
                db.execute("ROLLBACK")
            finally:
                db.close()

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert await asyncio.to_thread(locked.wait, 10)
            yield
        finally:
            release.set()
            await asyncio.to_thread(holder.join)
        return
    other = Database(database_url)
    try:
        async with other.engine.connect() as conn:
            await conn.begin()
            await conn.execute(text("LOCK TABLE inbox, registered IN EXCLUSIVE MODE"))
            try:
                yield
            finally:
                await conn.rollback()
    finally:
        await other.dispose()


async def test_a_store_that_hangs_without_raising_pauses_the_consumer_and_spends_no_attempt(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    settings = make_settings(
        tmp_path,
        nats_url=nats_server.url,
        PULIH_MAX_DELIVER=2,
        PULIH_HANDLER_TIMEOUT_SECONDS=HANDLER_TIMEOUT,
        PULIH_STORE_RETRY_MAX_SECONDS=0.3,
    )
    database = await open_store(database_url)
    runtime = ServiceRuntime("rehab", settings, database, Emitter("3301"))
    attempts: list[int] = []

    async def register(uow: UnitOfWork, event_: CloudEvent[ClientRegistered], delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        await on_registered(uow, event_, delivery)

    consuming = await start_consumers(
        runtime, nats_server.url, {"clients": ("ibm.3301.outreach.>", {ClientRegistered: register})}, "hang"
    )
    harness = Harness(nats_server.url, database, consuming.broker)
    try:
        async with store_hangs(database_url):
            began = time.monotonic()
            await harness.publish(registration())

            async def paused() -> set[str]:
                return set(runtime.paused_consumers)

            # one attempt's time, then one probe's (no more than the handler's)
            assert await eventually(paused, until=bool, timeout=3 * HANDLER_TIMEOUT + 2) == {"rehab.clients"}
            await asyncio.sleep(max(0.0, HANG_SECONDS - (time.monotonic() - began)))
            assert await paused() == {"rehab.clients"}, "still paused while the store hangs"
            assert await count(database, registered) == 0
            assert await stream_messages(nats_server.url, "ibm.3301.dlq.>") == []
        await eventually(lambda: count(database, registered), until=lambda n: n == 1, timeout=30)
        assert await count(database, inbox_table) == 1
        assert set(attempts) == {1}, "every try was the first delivery: no attempt spent"
        assert len(attempts) >= 2, "tried again in hand once the store answered"
        await eventually(paused, until=lambda p: p == set())
        assert await stream_messages(nats_server.url, "ibm.3301.dlq.>") == []
    finally:
        await consuming.stop()
        await database.dispose()


async def test_a_handler_that_hangs_while_the_store_answers_spends_its_attempts(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    setup_tracing("rehab", "3301")  # as in a service: a dead letter continues the consumer's trace
    settings = make_settings(
        tmp_path, nats_url=nats_server.url, PULIH_MAX_DELIVER=2, PULIH_HANDLER_TIMEOUT_SECONDS=0.5
    )
    database = await open_store(database_url)
    runtime = ServiceRuntime("rehab", settings, database, Emitter("3301"))
    stuck = registration()
    never = asyncio.Event()
    seen_paused: list[set[str]] = []

    async def register(uow: UnitOfWork, event_: CloudEvent[ClientRegistered], delivery: Delivery) -> None:
        seen_paused.append(set(runtime.paused_consumers))
        if event_.id == stuck.id:
            await never.wait()  # waits for something that never comes, holding its transaction
        await on_registered(uow, event_, delivery)

    consuming = await start_consumers(
        runtime, nats_server.url, {"clients": ("ibm.3301.outreach.>", {ClientRegistered: register})}, "stuck"
    )
    harness = Harness(nats_server.url, database, consuming.broker)
    try:
        await harness.publish(stuck)
        await harness.publish(registration())
        [dead] = await harness.dead_letters(1)
        assert (dead.data.error, dead.data.attempts) == ("handler_failed", 2)
        assert dead.data.reason == (
            "HandlerTimedOut: the handler of pulih.outreach.ClientRegistered.v1 did not finish within 0.5s"
        )
        await eventually(lambda: count(database, registered), until=lambda n: n == 1)
        assert await count(database, inbox_table) == 1
        assert seen_paused == [set(), set(), set()], "never paused: the store answered all along"
    finally:
        never.set()
        await consuming.stop()
        await database.dispose()
