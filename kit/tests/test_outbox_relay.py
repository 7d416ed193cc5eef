"""The outbox relay's loop, with a stand-in publisher: it backs off from a failing broker without
hammering it, wakes through the backoff once the broker is back, and idles when there is nothing
to send. (Against a real nats-server: tests/test_relay_faults.py.)"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace

from pulih.contracts import new_event, subject_for
from pulih.contracts.events.outreach import ClientErased
from pulih.kit.database import Database, kit_metadata
from pulih.kit.outbox import OutboxRelay, add_to_outbox
from pulih.kit.testing import REGENCY, eventually

LONG = 30.0
"""A backoff far longer than any wait here."""


class Broker:
    """A stand-in publish function: refuses while ``up`` is false, else records the ids."""

    def __init__(self) -> None:
        self.up = True
        self.attempts = 0
        self.published: list[str] = []

    async def publish(self, payload: bytes, subject: str, headers: dict[str, str]) -> None:
        self.attempts += 1
        if not self.up:
            raise ConnectionError("no broker")
        self.published.append(headers["Nats-Msg-Id"])


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(kit_metadata.create_all)
    try:
        yield database
    finally:
        await database.dispose()


async def commit(database: Database, relay: OutboxRelay, traceparent: str | None = None) -> str:
    event_ = new_event(
        ClientErased(client_id=uuid.uuid4(), on=date(2026, 3, 1)), regency=REGENCY, traceparent=traceparent
    )
    async with database.transaction() as session:
        await add_to_outbox(session, event_, subject_for(event_, REGENCY), wake=relay.wake)
    return str(event_.id)


async def value(x: Any) -> Any:
    return x


async def test_a_wake_after_the_broker_is_back_ends_a_long_backoff(database: Database) -> None:
    broker = Broker()
    relay = OutboxRelay(database, broker.publish, min_backoff_seconds=LONG, max_backoff_seconds=LONG)
    relay.start()
    try:
        broker.up = False
        first = await commit(database, relay)
        await eventually(lambda: value(relay.stats.failures), until=lambda n: n >= 1)
        broker.up = True
        started = time.monotonic()
        second = await commit(database, relay)
        await eventually(relay.backlog, until=lambda n: n == 0, timeout=LONG / 3)
        assert time.monotonic() - started < LONG / 3
        assert broker.published == [first, second]
    finally:
        await relay.stop()


async def test_with_a_probe_a_wake_while_the_broker_is_down_does_not_retry_and_its_return_does(
    database: Database,
) -> None:
    broker = Broker()
    probes = 0

    def ready() -> bool:
        nonlocal probes
        probes += 1
        return broker.up

    relay = OutboxRelay(
        database,
        broker.publish,
        min_backoff_seconds=LONG,
        max_backoff_seconds=LONG,
        ready=ready,
        ready_check_seconds=0.05,
    )
    relay.start()
    try:
        broker.up = False
        ids = [await commit(database, relay)]
        await eventually(lambda: value(relay.stats.failures), until=lambda n: n >= 1)
        await asyncio.sleep(0.3)
        attempts, probed = broker.attempts, probes
        ids += [await commit(database, relay) for _ in range(3)]
        await asyncio.sleep(0.3)  # give a wrong relay the time to hammer the broker
        assert broker.attempts == attempts <= 2
        assert probes - probed <= 0.3 / 0.05 + 3, (
            "the probe is asked every ready_check_seconds, not in a loop"
        )
        broker.up = True  # no commit: the broker's return alone ends the backoff
        await eventually(relay.backlog, until=lambda n: n == 0, timeout=LONG / 3)
        assert broker.published == ids
    finally:
        await relay.stop()


async def test_with_a_probe_a_wake_while_the_broker_is_up_retries_at_once(database: Database) -> None:
    # say the stream refused a message (full) and an operator made room: ready all along
    broker = Broker()
    relay = OutboxRelay(
        database,
        broker.publish,
        min_backoff_seconds=LONG,
        max_backoff_seconds=LONG,
        ready=lambda: True,
        ready_check_seconds=0.05,
    )
    relay.start()
    try:
        broker.up = False
        first = await commit(database, relay)
        await eventually(lambda: value(relay.stats.failures), until=lambda n: n >= 1)
        await asyncio.sleep(0.5)  # a window: a ready broker alone does not end the backoff
        assert broker.attempts <= 2
        broker.up = True
        second = await commit(database, relay)
        await eventually(relay.backlog, until=lambda n: n == 0, timeout=LONG / 3)
        assert broker.published == [first, second]
    finally:
        await relay.stop()


async def test_a_failing_broker_is_retried_with_a_growing_backoff_not_in_a_loop(database: Database) -> None:
    broker = Broker()
    broker.up = False
    relay = OutboxRelay(database, broker.publish, min_backoff_seconds=0.5, max_backoff_seconds=10.0)
    await commit(database, relay)
    relay.start()
    try:
        await asyncio.sleep(2.2)  # a window to count attempts in, not a wait for an event
    finally:
        await relay.stop()
    # attempts at about 0, 0.5 and 1.5 s (the next at 3.5 s); a fixed backoff or one cut short
    # makes more, none makes thousands; a loaded machine can only make fewer
    assert 1 <= broker.attempts <= 3, broker.attempts
    assert relay.stats.failures == broker.attempts
    assert broker.published == []


async def test_an_idle_relay_waits_for_its_doorbell_or_its_poll(database: Database) -> None:
    broker = Broker()
    looks = 0

    class Counting(OutboxRelay):
        async def relay_all(self) -> int:
            nonlocal looks
            looks += 1
            return await super().relay_all()

    relay = Counting(database, broker.publish, poll_seconds=0.5)
    relay.start()
    try:
        await asyncio.sleep(1.2)
        idle_looks = looks
        event_id = await commit(database, relay)
        await eventually(lambda: value(list(broker.published)), until=lambda p: p == [event_id])
    finally:
        await relay.stop()
    assert idle_looks <= 4, f"an idle relay looked at the outbox {idle_looks} times in 1.2 s"


async def test_stop_waits_until_the_loop_has_ended(database: Database) -> None:
    broker = Broker()
    relay = OutboxRelay(database, broker.publish)
    relay.start()
    task = relay._task
    assert task is not None
    await relay.stop()
    assert task.done()
    relay.start()  # and it starts again
    event_id = await commit(database, relay)
    try:
        await eventually(lambda: value(list(broker.published)), until=lambda p: p == [event_id])
    finally:
        await relay.stop()


async def test_without_any_wake_the_backoff_ends_by_itself(database: Database) -> None:
    # rows written by another replica ring no doorbell here
    broker = Broker()
    relay = OutboxRelay(database, broker.publish, min_backoff_seconds=0.3, max_backoff_seconds=0.3)
    broker.up = False
    event_id = await commit(database, relay)
    relay.start()
    try:
        await eventually(lambda: value(relay.stats.failures), until=lambda n: n >= 1)
        broker.up = True
        await eventually(lambda: value(list(broker.published)), until=lambda p: p == [event_id], timeout=5)
    finally:
        await relay.stop()


async def test_relay_once_reports_how_many_rows_it_sent(database: Database) -> None:
    broker = Broker()
    relay = OutboxRelay(database, broker.publish, batch_size=2)
    assert await relay.relay_once() == 0
    ids = [await commit(database, relay) for _ in range(3)]
    assert await relay.relay_once() == 2
    assert await relay.relay_once() == 1
    assert await relay.relay_once() == 0
    assert broker.published == ids


async def test_each_row_is_published_in_its_own_trace_and_no_other(database: Database) -> None:
    traced = "0af7651916cd43dd8448eb211c80319c"
    seen: list[int] = []

    async def publish(payload: bytes, subject: str, headers: dict[str, str]) -> None:
        seen.append(trace.get_current_span().get_span_context().trace_id)

    relay = OutboxRelay(database, publish)
    await commit(database, relay, traceparent=f"00-{traced}-b7ad6b7169203331-01")
    await commit(database, relay)  # written outside any trace
    assert await relay.relay_once() == 2
    assert seen[0] == int(traced, 16)
    assert seen[1] != int(traced, 16), "the second row was published in the first row's trace"
    assert not trace.get_current_span().get_span_context().is_valid, "the relay left a trace attached"


def test_publish_spans_are_opened_only_when_a_span_processor_collects_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from pulih.kit.outbox import spans_are_collected

    provider = TracerProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    assert not spans_are_collected(), "a span nobody collects costs more than the publish"
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    assert spans_are_collected()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: trace.ProxyTracerProvider())
    assert not spans_are_collected()
