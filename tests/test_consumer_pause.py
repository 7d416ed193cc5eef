"""How a paused consumer waits, and what it waits for (the mutation analysis of the kit's pause
loop, tests/MUTATION.md): it backs off between probes instead of hammering a failing store; a
fault in its own tables holds it, and the events that build on it, without spending an attempt;
an error of unknown kind while the store cannot commit is the store's; a domain error is
dead-lettered with its code at once."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from system_support import stream_messages
from test_consumer_delivery import (
    Consuming,
    Harness,
    consent,
    consented,
    on_consent,
    on_registered,
    registered,
    registration,
)
from test_consumer_store_faults import count, open_store, start_consumers

from pulih.contracts import CloudEvent
from pulih.contracts.events.outreach import ClientRegistered, ConsentRecorded
from pulih.kit.consumers import Delivery, EventHandler
from pulih.kit.database import Database
from pulih.kit.emitter import Emitter
from pulih.kit.errors import Conflict
from pulih.kit.inbox import inbox_table
from pulih.kit.nats_server import NatsServer
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.telemetry import setup_tracing
from pulih.kit.testing import eventually, make_settings
from pulih.kit.unit_of_work import UnitOfWork

pytestmark = pytest.mark.system

OUTAGE_SECONDS = 3.0
RETRY_BASE_SECONDS = 0.1  # start_consumers' retry_base_seconds: the first wait between probes
RETRY_MAX_SECONDS = 0.3  # PULIH_STORE_RETRY_MAX_SECONDS below: the longest wait between probes
MOST_ROUNDS = int(OUTAGE_SECONDS / RETRY_BASE_SECONDS) + 5
"""More rounds than a consumer that waits between its probes can make in the outage (it makes
about OUTAGE_SECONDS / RETRY_MAX_SECONDS); one that does not wait makes thousands."""


class Fault:
    """Makes writes fail while ``active``: every write (a failing disk), or only those that name
    ``table`` (one consumer's tables, while the inbox and the probe still commit). It raises the
    driver's own OperationalError, or ``error`` (an exception of no kind the consumer knows)."""

    def __init__(self, database: Database, table: str | None = None, error: type[Exception] | None = None):
        self.active = False
        self.refused = 0
        self.table = table
        self._error = error or database.engine.dialect.loaded_dbapi.OperationalError
        event.listen(database.engine.sync_engine, "before_cursor_execute", self._check)

    def _check(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        words = statement.lstrip().upper()
        if not self.active or words.startswith("SELECT"):
            return
        if self.table is None or f" {self.table.upper()} " in f" {words.replace('(', ' ')} ":
            self.refused += 1
            raise self._error("disk I/O error")


class PauseLog(set[str]):
    """A runtime's ``paused_consumers`` that remembers each consumer taken out of it."""

    def __init__(self) -> None:
        super().__init__()
        self.resumed: list[str] = []

    def discard(self, name: str) -> None:
        if name in self:
            self.resumed.append(name)
        super().discard(name)


def counting(handler: EventHandler, calls: list[str], name: str) -> EventHandler:
    async def handle(uow: UnitOfWork, event_: CloudEvent[Any], delivery: Delivery) -> None:
        calls.append(name)
        await handler(uow, event_, delivery)

    return handle


async def dead_letters(nats_url: str) -> list[Any]:
    return await stream_messages(nats_url, "ibm.3301.dlq.>")


class RegistrationsAndConsents:
    """One service with two consumers: registrations, and consents that depend on them."""

    def __init__(
        self, runtime: ServiceRuntime, harness: Harness, consuming: Consuming, calls: list[str]
    ) -> None:
        self.runtime, self.harness, self.consuming, self.calls = runtime, harness, consuming, calls

    @classmethod
    async def start(
        cls, tmp_path: Path, nats_server: NatsServer, database: Database
    ) -> RegistrationsAndConsents:
        settings = make_settings(
            tmp_path,
            nats_url=nats_server.url,
            PULIH_MAX_DELIVER=3,  # a retry budget well under the outage
            PULIH_STORE_RETRY_MAX_SECONDS=RETRY_MAX_SECONDS,
        )
        runtime = ServiceRuntime("rehab", settings, database, Emitter("3301"))
        calls: list[str] = []
        consuming = await start_consumers(
            runtime,
            nats_server.url,
            {
                "registrations": (
                    "ibm.3301.outreach.client_registered",
                    {ClientRegistered: counting(on_registered, calls, "registration")},
                ),
                "consents": (
                    "ibm.3301.outreach.consent_recorded",
                    {ConsentRecorded: counting(on_consent, calls, "consent")},
                ),
            },
            "pause",
        )
        return cls(runtime, Harness(nats_server.url, database, consuming.broker), consuming, calls)

    async def outage(self, fault: Fault) -> dict[str, int]:
        """A registration and its consent arrive while ``fault`` is active for OUTAGE_SECONDS;
        return how often each handler ran meanwhile and how many writes were refused."""
        client_id = uuid.uuid4()
        fault.active = True
        await self.harness.publish(registration(client_id))
        await self.harness.publish(consent(client_id))
        await eventually(
            lambda: asyncio.sleep(0, self.calls), until=lambda c: {"registration", "consent"} <= set(c)
        )
        began = time.monotonic()
        self.calls.clear()
        refused = fault.refused
        await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself
        seen = {
            "registration": self.calls.count("registration"),
            "consent": self.calls.count("consent"),
            "refused": fault.refused - refused,
        }
        assert time.monotonic() - began < OUTAGE_SECONDS + 1
        return seen

    async def recovered(self, fault: Fault) -> None:
        """After the fault: both events applied once, nothing paused, nothing dead-lettered."""
        fault.active = False
        database = self.harness.database
        await eventually(lambda: count(database, consented), until=lambda n: n == 1, timeout=20)
        assert await count(database, registered) == 1
        assert await count(database, inbox_table) == 2
        assert self.runtime.paused_consumers == set()
        assert await dead_letters(self.harness.nats_url) == []

    async def stop(self) -> None:
        await self.consuming.stop()


@pytest.mark.parametrize("error", [None, RuntimeError], ids=["operational-error", "unknown-error"])
async def test_a_consumer_paused_by_a_failing_store_waits_between_its_probes(
    tmp_path: Path, nats_server: NatsServer, database_url: str, error: type[Exception] | None
) -> None:
    # every write fails: the registration's handler and every probe; the consent is not ready
    # (its SELECT answers) and waits too, since the probe says the store cannot commit. An error
    # the consumer does not know is the store's when the probe fails as well.
    database = await open_store(database_url)
    fault = Fault(database, error=error)
    service = await RegistrationsAndConsents.start(tmp_path, nats_server, database)
    service.runtime.paused_consumers = pauses = PauseLog()
    try:
        seen = await service.outage(fault)
        assert service.runtime.paused_consumers == {"rehab.registrations", "rehab.consents"}
        # paused for the whole outage: not resumed and paused again at each of its tries (the
        # consent's, not ready, retried while nothing commits)
        assert pauses.resumed == []
        assert await dead_letters(nats_server.url) == [], "no attempt spent on the store's fault"
        assert 1 <= seen["consent"] <= MOST_ROUNDS, seen
        assert 2 <= seen["refused"] <= 3 * MOST_ROUNDS, seen
        await service.recovered(fault)
    finally:
        await service.stop()
        await database.dispose()


async def test_a_fault_in_one_consumers_tables_holds_it_and_its_dependents_without_spending_attempts(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    # Only the registrations' table refuses writes: the inbox commits, so the probe succeeds.
    # The registration is held (the driver's OperationalError is the store's, whatever the
    # probe says) and says it is paused; its consent, not ready, waits for it without spending
    # attempts, since a consumer of the service is paused. Both wait between their tries.
    database = await open_store(database_url)
    fault = Fault(database, table="registered")
    service = await RegistrationsAndConsents.start(tmp_path, nats_server, database)
    try:
        seen = await service.outage(fault)
        assert service.runtime.paused_consumers == {"rehab.registrations"}
        assert await dead_letters(nats_server.url) == [], "no attempt spent on the store's fault"
        assert 1 <= seen["registration"] <= MOST_ROUNDS, seen
        assert 1 <= seen["consent"] <= MOST_ROUNDS, seen
        await service.recovered(fault)
    finally:
        await service.stop()
        await database.dispose()


async def test_a_domain_error_is_dead_lettered_at_once_with_its_code_and_the_consumer_carries_on(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    setup_tracing("rehab", "3301")  # as in a service: a dead letter continues the consumer's trace
    settings = make_settings(tmp_path, nats_url=nats_server.url, PULIH_MAX_DELIVER=3)
    database = await open_store(database_url)
    runtime = ServiceRuntime("rehab", settings, database, Emitter("3301"))
    refused = registration()

    async def register(uow: UnitOfWork, event_: CloudEvent[ClientRegistered], delivery: Delivery) -> None:
        if event_.id == refused.id:
            raise Conflict("already_enrolled", "the client is enrolled in another unit")
        await on_registered(uow, event_, delivery)

    consuming = await start_consumers(
        runtime, nats_server.url, {"clients": ("ibm.3301.outreach.>", {ClientRegistered: register})}, "domain"
    )
    harness = Harness(nats_server.url, database, consuming.broker)
    try:
        await harness.publish(refused)
        await harness.publish(registration())
        [dead] = await harness.dead_letters(1)
        assert (dead.data.error, dead.data.attempts) == ("already_enrolled", 1)
        assert dead.data.reason == (
            "ibm.3301.outreach.client_registered: the client is enrolled in another unit"
        )
        assert dead.causationid == str(refused.id)
        await eventually(lambda: count(database, registered), until=lambda n: n == 1)
        assert await count(database, inbox_table) == 1, "the refused event changed nothing"
    finally:
        await consuming.stop()
        await database.dispose()
