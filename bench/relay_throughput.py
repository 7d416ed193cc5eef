"""How fast the outbox relay empties a backlog, next to raw nats-py pipelined publish on the same
nats-server in the same run. Prints a table (or JSON lines with ``--json``); not a test.

    .venv/bin/python bench/relay_throughput.py [--events 10000] [--rounds 3] [--quick] [--json]
        [--database-url postgresql+asyncpg://…] [--nats-url nats://…]

- **raw, 256 in flight**: ``js.publish`` of the same payloads gathered 256 at a time, each with
  its ``Nats-Msg-Id`` (the limit of issue 13 and of bench/limits.py);
- **raw, sliding window**: ``js.publish_async`` with at most 256 PubAcks pending, refilled as
  each arrives (no task per message, no wait at the end of each 256): the most nats-py gets;
- **relay**: an outbox holding the same number of events (SQLite, or ``--database-url``) is
  emptied by :meth:`pulih.kit.outbox.OutboxRelay.relay_all` through the service's
  :class:`pulih.kit.messaging.StreamPublisher`, as the running relay does: windows of 1,024
  rows, each read and started while the previous one's PubAcks arrive, 256 in flight, each
  client's rows in order, one UPDATE per window. The events come as outreach writes them,
  three about each client in a row (registered, consent, screened), so the per-client order is
  exercised; a second figure has one event per client. Each row carries a ``traceparent`` (as
  rows a request wrote do) and the process has the tracer provider a service installs
  (:func:`pulih.kit.telemetry.setup_tracing`: without ``OTEL_TRACES_EXPORTER`` no span is
  collected, so the relay opens none; see :func:`pulih.kit.outbox.spans_are_collected`).

Each measurement publishes to a stream of its own, configured like a regency's. Writing the
outbox is not timed. ``./dev bench`` calls :func:`measure`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable
from contextlib import suppress
from pathlib import Path
from typing import Any

import nats
from limits import client_events, nats_server_at
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from pulih.contracts import Event, new_event, stream_name, subject_for
from pulih.kit.database import Database, kit_metadata
from pulih.kit.messaging import make_broker, regency_stream_config, stream_publisher
from pulih.kit.outbox import OutboxRelay, add_to_outbox
from pulih.kit.telemetry import setup_tracing

REGENCY = "3301"
IN_FLIGHT = 256
RAW_STREAM = "BENCH_RELAY_RAW"
RAW_SUBJECT = "bench.relay.outreach.client_screened"


def backlog_events(count: int, per_client: int) -> list[Event]:
    """``count`` events, ``per_client`` about each client in a row (1 to 3)."""
    unit_id, agent_id = uuid.uuid4(), uuid.uuid4()
    events: list[Event] = []
    while len(events) < count:
        events.extend(client_events(unit_id, agent_id)[-per_client:])
    return events[:count]


def row(metric: str, value: float, unit: str, limit: float | None = None) -> dict[str, Any]:
    """One figure: ``{metric, value, unit, limit, ratio}`` (``ratio`` is ``value / limit``)."""
    return {
        "metric": metric,
        "value": round(value, 1),
        "unit": unit,
        "limit": None if limit is None else round(limit, 1),
        "ratio": round(value / limit, 3) if limit else None,
    }


async def _fresh_stream(js: JetStreamContext, name: str, subjects: list[str]) -> None:
    with suppress(NotFoundError):
        await js.delete_stream(name)
    await js.add_stream(dataclasses.replace(regency_stream_config(REGENCY), name=name, subjects=subjects))


async def raw_publish_rate(nats_url: str, payloads: list[bytes]) -> float:
    """Events/s of ``js.publish`` gathered ``IN_FLIGHT`` at a time, each with a ``Nats-Msg-Id``."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await _fresh_stream(js, RAW_STREAM, ["bench.relay.>"])
        messages = [(payload, str(uuid.uuid4())) for payload in payloads]
        started = time.perf_counter()
        for start in range(0, len(messages), IN_FLIGHT):
            window: list[Awaitable[object]] = [
                js.publish(RAW_SUBJECT, payload, headers={"Nats-Msg-Id": msg_id})
                for payload, msg_id in messages[start : start + IN_FLIGHT]
            ]
            await asyncio.gather(*window)
        elapsed = time.perf_counter() - started
        await js.delete_stream(RAW_STREAM)
        return len(payloads) / elapsed
    finally:
        await nc.close()


async def raw_sliding_rate(nats_url: str, payloads: list[bytes]) -> float:
    """Events/s of ``js.publish_async`` with at most ``IN_FLIGHT`` PubAcks pending."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream(publish_async_max_pending=IN_FLIGHT)
        await _fresh_stream(js, RAW_STREAM, ["bench.relay.>"])
        messages = [(payload, str(uuid.uuid4())) for payload in payloads]
        started = time.perf_counter()
        answers = [
            await js.publish_async(RAW_SUBJECT, payload, headers={"Nats-Msg-Id": msg_id})
            for payload, msg_id in messages
        ]
        await asyncio.gather(*answers)
        elapsed = time.perf_counter() - started
        await js.delete_stream(RAW_STREAM)
        return len(payloads) / elapsed
    finally:
        await nc.close()


async def relay_rate(nats_url: str, database_url: str, events: list[Event]) -> float:
    """Events/s of an :class:`OutboxRelay` emptying an outbox of ``events`` (written beforehand)."""
    database = Database(database_url)
    broker = make_broker(nats_url, name="pulih-bench-relay")
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(kit_metadata.drop_all)
            await conn.run_sync(kit_metadata.create_all)
        async with database.transaction() as session:
            for event_ in events:
                envelope = new_event(event_, regency=REGENCY, traceparent=_traceparent())
                await add_to_outbox(session, envelope, subject_for(envelope, REGENCY))
        await broker.connect()
        js = broker.connection.jetstream()
        await _fresh_stream(js, stream_name(REGENCY), [f"ibm.{REGENCY}.>"])
        relay = OutboxRelay(database, stream_publisher(broker, REGENCY), max_in_flight=IN_FLIGHT)
        started = time.perf_counter()
        sent = await relay.relay_all()
        elapsed = time.perf_counter() - started
        info = await js.stream_info(stream_name(REGENCY))
        if sent != len(events) or info.state.messages != len(events):
            raise RuntimeError(f"relay sent {sent}, stream holds {info.state.messages}, of {len(events)}")
        await js.delete_stream(stream_name(REGENCY))
        return sent / elapsed
    finally:
        await broker.stop()
        await database.dispose()


def _traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


async def measure(
    events: int = 10_000,
    *,
    rounds: int = 3,
    quick: bool = False,
    nats_url: str | None = None,
    database_url: str | None = None,
) -> list[dict[str, Any]]:
    """The relay's figures, each with raw pipelined publish measured in the same rounds as its
    limit.

    Each of ``rounds`` rounds measures raw publish, then the relay on both backlogs, ``events``
    events each; every figure is the median of its rounds, so a machine busy with other work
    for a moment spoils one round, not the ratio. On a nats-server of its own unless
    ``nats_url`` is given (streams ``BENCH_RELAY_RAW`` and ``IBM_3301`` are created and deleted
    there: give the URL of a server without a regency), and a SQLite outbox in a temporary
    directory unless ``database_url`` is given (its kit tables are dropped and made again).
    """
    if quick:
        events, rounds = min(events, 2_000), 1
    setup_tracing("outreach", REGENCY)  # as in a service: the relay's spans cost what they cost there
    mixed = backlog_events(events, per_client=3)
    single = backlog_events(events, per_client=1)
    payloads = [new_event(event_, regency=REGENCY, traceparent=_traceparent()).to_json() for event_ in mixed]
    raw: list[float] = []
    sliding: list[float] = []
    relay_mixed: list[float] = []
    relay_single: list[float] = []
    with (
        nats_server_at(nats_url, "pulih-bench-relay-") as url,
        tempfile.TemporaryDirectory(prefix="pulih-bench-relay-db-") as tmp,
    ):
        store = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'outbox.db'}"
        backend = "SQLite" if store.startswith("sqlite") else "PostgreSQL"
        for _ in range(rounds):
            raw.append(await raw_publish_rate(url, payloads))
            sliding.append(await raw_sliding_rate(url, payloads))
            relay_mixed.append(await relay_rate(url, store, mixed))
            relay_single.append(await relay_rate(url, store, single))
    limit, best = statistics.median(raw), statistics.median(sliding)
    mixed_rate, single_rate = statistics.median(relay_mixed), statistics.median(relay_single)
    return [
        row(f"raw JetStream publish, {IN_FLIGHT} in flight (relay's limit)", limit, "events/s"),
        row(f"raw JetStream publish_async, sliding window of {IN_FLIGHT}", best, "events/s"),
        row(f"outbox relay, 3 events per client in a row, {backend}", mixed_rate, "events/s", limit),
        row(f"outbox relay, one event per client, {backend}", single_rate, "events/s", limit),
        row(
            f"outbox relay, one event per client, {backend}, vs sliding window", single_rate, "events/s", best
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="events per measurement (10000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each figure is their median (3)")
    parser.add_argument("--quick", action="store_true", help="at most 2,000 events (a smoke test)")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    parser.add_argument("--nats-url", help="a running nats-server (default: one of our own)")
    parser.add_argument("--database-url", help="the outbox's store (default: SQLite in a temp dir)")
    args = parser.parse_args()
    figures = asyncio.run(
        measure(
            args.events,
            rounds=args.rounds,
            quick=args.quick,
            nats_url=args.nats_url,
            database_url=args.database_url,
        )
    )
    for figure in figures:
        if args.json:
            print(json.dumps(figure), flush=True)
        else:
            limit = "" if figure["limit"] is None else f"   limit {figure['limit']:>10,.0f}"
            ratio = "" if figure["ratio"] is None else f"   ratio {figure['ratio']:.2f}"
            print(f"{figure['metric']:<62} {figure['value']:>10,.0f} {figure['unit']}{limit}{ratio}")


if __name__ == "__main__":
    main()
