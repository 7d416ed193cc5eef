"""The kit's durable consumer with event handlers when the store fails and when a consumer dies
or runs long.

A store fault is not the event's fault: a consumer whose store cannot commit pauses (and says so
in ``runtime.paused_consumers``) without spending the message's delivery attempts, and resumes
when the store answers. A short ``ack_wait`` brings a dead consumer's message back soon, while
in-progress acks keep a slow handler's message its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from sqlalchemy import event, func, select
from system_support import stream_messages
from test_consumer_delivery import (
    Consuming,
    Harness,
    consent,
    consented,
    consume,
    effects,
    on_consent,
    on_registered,
    registered,
    registration,
)

from pulih.contracts import CloudEvent, stream_name
from pulih.contracts.events.outreach import ClientRegistered, ConsentRecorded
from pulih.kit.consumers import Delivery, EventHandler
from pulih.kit.database import Database, kit_metadata
from pulih.kit.emitter import Emitter
from pulih.kit.inbox import inbox_table
from pulih.kit.nats_server import NatsServer
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.testing import eventually, make_settings
from pulih.kit.unit_of_work import UnitOfWork

pytestmark = pytest.mark.system


class StoreFault:
    """Makes the store refuse every write, as a read-only or failing disk does (reads still work):
    the driver's own OperationalError ("disk I/O error"), raised where a statement would run."""

    def __init__(self, database: Database) -> None:
        self.active = False
        self.refused = 0
        self._error: type[Exception] = database.engine.dialect.loaded_dbapi.OperationalError
        event.listen(database.engine.sync_engine, "before_cursor_execute", self._check)

    def _check(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if self.active and not statement.lstrip().upper().startswith("SELECT"):
            self.refused += 1
            raise self._error("disk I/O error")


async def open_store(database_url: str) -> Database:
    database = Database(database_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(kit_metadata.create_all)
        await conn.run_sync(effects.create_all)
    return database


async def start_consumers(
    runtime: ServiceRuntime,
    nats_url: str,
    consumers: dict[str, tuple[str, dict[Any, EventHandler]]],
    name: str,
) -> Consuming:
    return await consume(runtime, nats_url, consumers, name)


async def count(database: Database, table: Any, *where: Any) -> int:
    async with database.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(table).where(*where)) or 0)


async def test_a_store_that_fails_longer_than_the_retry_budget_loses_no_event(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    # Two consumers of one service: registrations, and consents that depend on them. Each
    # message may be delivered 3 times, 0.1 s then 0.2 s apart: a retry budget well under 1 s.
    settings = make_settings(
        tmp_path, nats_url=nats_server.url, PULIH_MAX_DELIVER=3, PULIH_STORE_RETRY_MAX_SECONDS=0.3
    )
    database = await open_store(database_url)
    fault = StoreFault(database)
    runtime = ServiceRuntime("rehab", settings, database, Emitter("3301"))
    consuming = await start_consumers(
        runtime,
        nats_server.url,
        {
            "registrations": ("ibm.3301.outreach.client_registered", {ClientRegistered: on_registered}),
            "consents": ("ibm.3301.outreach.consent_recorded", {ConsentRecorded: on_consent}),
        },
        "store-fault",
    )
    harness = Harness(nats_server.url, database, consuming.broker)
    try:
        before = uuid.uuid4()
        await harness.publish(registration(before))
        await harness.publish(consent(before))
        await eventually(lambda: harness.count(consented), until=lambda n: n == 1)

        fault.active = True
        clients = [uuid.uuid4() for _ in range(3)]
        for client_id in clients:
            await harness.publish(registration(client_id))
            await harness.publish(consent(client_id))

        async def paused() -> set[str]:
            return set(runtime.paused_consumers)

        assert await eventually(paused, until=lambda p: len(p) == 2) == {
            "rehab.registrations",
            "rehab.consents",
        }
        # The fault lasts several times the retry budget; the paused consumers keep probing.
        outage_started = time.monotonic()
        refused = await eventually(
            lambda: asyncio.sleep(0.1, fault.refused),
            until=lambda n: n >= 6 and time.monotonic() - outage_started > 3,
        )
        assert await paused() == {"rehab.registrations", "rehab.consents"}
        assert refused >= 6
        assert await stream_messages(nats_server.url, "ibm.3301.dlq.>") == [], "nothing dead-lettered"
        fault.active = False

        await eventually(lambda: harness.count(consented), until=lambda n: n == 4, timeout=20)
        assert await harness.count(registered) == 4
        for consumer in ("rehab.registrations", "rehab.consents"):
            assert await count(database, inbox_table, inbox_table.c.consumer == consumer) == 4
        assert await count(database, inbox_table) == 8, "the store probe leaves no row behind"
        assert await paused() == set()
        assert await stream_messages(nats_server.url, "ibm.3301.dlq.>") == [], "nothing dead-lettered"
    finally:
        await consuming.stop()
        await database.dispose()


async def test_a_handler_bug_still_counts_while_the_store_answers(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    # the pause is for the store only: an event whose handler fails on its own is dead-lettered
    # after max_deliver attempts, and the consumer never says it is paused
    settings = make_settings(tmp_path, nats_url=nats_server.url, PULIH_MAX_DELIVER=3)
    database = await open_store(database_url)
    runtime = ServiceRuntime("rehab", settings, database, Emitter("3301"))
    seen_paused: list[set[str]] = []

    async def buggy(uow: UnitOfWork, event_: CloudEvent[ClientRegistered], delivery: Delivery) -> None:
        seen_paused.append(set(runtime.paused_consumers))
        raise KeyError("a handler bug")

    consuming = await start_consumers(
        runtime, nats_server.url, {"clients": ("ibm.3301.outreach.>", {ClientRegistered: buggy})}, "bug"
    )
    try:
        await Harness(nats_server.url, database, consuming.broker).publish(registration())
        [dead] = await eventually(
            lambda: stream_messages(nats_server.url, "ibm.3301.dlq.rehab"), until=lambda m: len(m) == 1
        )
        assert dead.headers is not None and dead.headers["Pulih-Dlq-Error"] == "handler_failed"
        assert seen_paused == [set(), set(), set()]
    finally:
        await consuming.stop()
        await database.dispose()


def handler_that_waits(
    calls: list[tuple[str, int]], name: str, release: asyncio.Event
) -> Callable[[UnitOfWork, CloudEvent[ClientRegistered], Delivery], Awaitable[None]]:
    async def handle(uow: UnitOfWork, event_: CloudEvent[ClientRegistered], delivery: Delivery) -> None:
        calls.append((name, delivery.attempt))
        await release.wait()
        await on_registered(uow, event_, delivery)

    return handle


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Database]:
    database = await open_store(database_url)
    try:
        yield database
    finally:
        await database.dispose()


async def test_a_dead_consumers_message_comes_back_within_ack_wait(
    tmp_path: Path, nats_server: NatsServer, store: Database
) -> None:
    settings = make_settings(tmp_path, nats_url=nats_server.url, PULIH_ACK_WAIT_SECONDS=2)
    runtime = ServiceRuntime("rehab", settings, store, Emitter("3301"))
    calls: list[tuple[str, int]] = []
    never = asyncio.Event()
    first = await start_consumers(
        runtime,
        nats_server.url,
        {"clients": ("ibm.3301.outreach.>", {ClientRegistered: handler_that_waits(calls, "first", never)})},
        "first",
    )
    second: Consuming | None = None
    try:
        await Harness(nats_server.url, store, first.broker).publish(registration())
        await eventually(lambda: asyncio.sleep(0, calls), until=lambda c: c == [("first", 1)])
        # the first instance dies mid-batch, as under kill -9: its work stops and its
        # connection goes, nothing is acked or nacked
        await first.kill()
        died = time.monotonic()
        opened = asyncio.Event()
        opened.set()
        second = await start_consumers(
            runtime,
            nats_server.url,
            {
                "clients": (
                    "ibm.3301.outreach.>",
                    {ClientRegistered: handler_that_waits(calls, "second", opened)},
                )
            },
            "second",
        )
        await eventually(lambda: count(store, registered), until=lambda n: n == 1, timeout=10)
        assert time.monotonic() - died < 2 + 1.5, "redelivered within ack_wait and a small margin"
        assert calls == [("first", 1), ("second", 2)]
    finally:
        never.set()
        if second is not None:
            await second.stop()
        with contextlib.suppress(Exception):  # the dead instance's connection is gone
            await asyncio.wait_for(first.stop(), 5)


async def test_a_handler_that_runs_longer_than_ack_wait_is_not_redelivered_meanwhile(
    tmp_path: Path, nats_server: NatsServer, store: Database
) -> None:
    settings = make_settings(tmp_path, nats_url=nats_server.url, PULIH_ACK_WAIT_SECONDS=1)
    runtime = ServiceRuntime("rehab", settings, store, Emitter("3301"))
    calls: list[tuple[str, int]] = []
    slow_done = asyncio.Event()

    async def slow(uow: UnitOfWork, event_: CloudEvent[ClientRegistered], delivery: Delivery) -> None:
        calls.append(("slow", delivery.attempt))
        await asyncio.sleep(3.5)  # the work itself: three and a half ack_waits
        await on_registered(uow, event_, delivery)
        slow_done.set()

    opened = asyncio.Event()
    opened.set()
    # two instances of one durable consumer: a redelivery would reach the idle one
    one = await start_consumers(
        runtime, nats_server.url, {"clients": ("ibm.3301.outreach.>", {ClientRegistered: slow})}, "one"
    )
    await Harness(nats_server.url, store, one.broker).publish(registration())
    await eventually(lambda: asyncio.sleep(0, calls), until=lambda c: len(c) == 1)
    other = await start_consumers(
        runtime,
        nats_server.url,
        {"clients": ("ibm.3301.outreach.>", {ClientRegistered: handler_that_waits(calls, "other", opened)})},
        "other",
    )
    redelivered: list[int] = []
    nc = await nats.connect(nats_server.url)
    try:

        async def watch() -> bool:
            info = await nc.jetstream().consumer_info(stream_name("3301"), "rehab-clients")
            redelivered.append(info.num_redelivered)
            return slow_done.is_set()

        await eventually(watch, timeout=10)
        await eventually(lambda: count(store, registered), until=lambda n: n == 1)
        assert len(redelivered) > 20, "watched all along"
        assert set(redelivered) == {0}, "the slow handler's message was not delivered again"
        assert calls == [("slow", 1)]
    finally:
        await nc.close()
        await other.stop()
        await one.stop()
