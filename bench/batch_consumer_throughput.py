"""How fast the kit's ordered batch consumer works through a backlog when applying costs nothing:
what the consumer itself (fetch, parse, transaction, inbox rows, acks) costs per event, next to a
raw nats-py pull consumer of the same stream. Prints a table, then one JSON line; not a test.

    .venv/bin/python bench/batch_consumer_throughput.py [--events 50000] [--batch-size 500]
        [--database-url postgresql+asyncpg://…]

Each run reads the whole backlog with a durable of its own, from a fresh store; it ends when the
durable's ack floor reaches the last message (everything applied, committed and acknowledged).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import nats
import nats.aio.msg
from limits import client_events, fetch_and_ack
from nats.js.api import AckPolicy, ConsumerConfig

from pulih.contracts import new_event, stream_name, subject_for
from pulih.kit.batch_consumer import Received, subscribe_batches
from pulih.kit.database import Database, kit_metadata
from pulih.kit.emitter import Emitter
from pulih.kit.messaging import make_broker, regency_stream_config
from pulih.kit.nats_server import NatsServer
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.settings import Settings
from pulih.kit.unit_of_work import UnitOfWork

REGENCY = "3301"
STREAM = stream_name(REGENCY)


async def publish_backlog(nats_url: str, count: int) -> int:
    """Publish ``count`` valid events (256 in flight); the last stream sequence."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(regency_stream_config(REGENCY))
        unit_id, agent_id = uuid.uuid4(), uuid.uuid4()
        pending: list[Awaitable[object]] = []
        published = 0
        while published < count:
            for data in client_events(unit_id, agent_id)[: count - published]:
                event = new_event(data, regency=REGENCY)
                headers = {"Nats-Msg-Id": str(event.id)}
                pending.append(js.publish(subject_for(event, REGENCY), event.to_json(), headers=headers))
                published += 1
            if len(pending) >= 256:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
        info = await js.stream_info(STREAM)
        return int(info.state.last_seq)
    finally:
        await nc.close()


async def acked_through(nats_url: str, durable: str, last_seq: int) -> float:
    """Wait until ``durable`` has acknowledged everything up to ``last_seq``; when it had."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        while True:
            try:
                info = await js.consumer_info(STREAM, durable)
            except nats.js.errors.NotFoundError:
                info = None
            if info is not None and info.ack_floor.stream_seq >= last_seq and info.num_ack_pending == 0:
                return time.perf_counter()
            await asyncio.sleep(0.02)
    finally:
        await nc.close()


@dataclass
class Figure:
    """One run's result: wall-clock seconds, and this process's CPU seconds (steadier than the
    wall clock on a machine shared with other work)."""

    run: str
    events: int
    seconds: float
    cpu_seconds: float
    batches: int | None = None

    @property
    def per_second(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_seconds / self.events * 1e6


async def raw_pull(nats_url: str, count: int, last_seq: int, batch_size: int) -> Figure:
    """A bare nats-py pull consumer: fetch, ack each message, nothing else."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=batch_size)
        started, cpu = time.perf_counter(), time.process_time()
        subscription = await js.pull_subscribe(f"ibm.{REGENCY}.>", durable="bench-raw", config=config)
        _, batches = await fetch_and_ack(subscription, count, batch_size, timeout=0.2)
        finished = await acked_through(nats_url, "bench-raw", last_seq)
        return Figure(
            "raw nats-py fetch + ack", count, finished - started, time.process_time() - cpu, batches
        )
    finally:
        await nc.close()


async def raw_inbox_pull(nats_url: str, count: int, last_seq: int, batch_size: int) -> Figure:
    """Pull requests answered on an inbox of one's own (as the kit pulls), ack each message."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        config = ConsumerConfig(
            durable_name="bench-inbox", ack_policy=AckPolicy.EXPLICIT, max_ack_pending=batch_size
        )
        started, cpu = time.perf_counter(), time.process_time()
        await js.add_consumer(STREAM, config)
        received: list[nats.aio.msg.Msg] = []
        answered = asyncio.Event()

        async def deliver(message: nats.aio.msg.Msg) -> None:
            if message.headers and "Status" in message.headers:
                answered.set()
                return
            received.append(message)
            if len(received) >= batch_size:
                answered.set()

        inbox = nc.new_inbox()
        await nc.subscribe(inbox, cb=deliver)
        done, batches = 0, 0
        while done < count:
            answered.clear()
            request = json.dumps({"batch": batch_size, "expires": 1_000_000_000}).encode()
            await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.bench-inbox", request, reply=inbox)
            await asyncio.wait_for(answered.wait(), 5)
            messages, received[:] = list(received), []
            for message in messages:
                await message.ack()
            done += len(messages)
            batches += 1
        finished = await acked_through(nats_url, "bench-inbox", last_seq)
        cpu = time.process_time() - cpu
        return Figure("raw pull on an own inbox + ack", count, finished - started, cpu, batches)
    finally:
        await nc.close()


async def kit_batches(
    tmp: Path,
    nats_url: str,
    database_url: str,
    count: int,
    last_seq: int,
    batch_size: int,
    *,
    tracks_itself: bool,
) -> Figure:
    """The kit's batch consumer with an apply that does nothing (the inbox is the kit's, or none)."""
    durable = "noop-tracks-itself" if tracks_itself else "noop-kit-inbox"
    settings = Settings.model_validate(
        {
            "PULIH_REGENCY": REGENCY,
            "PULIH_DATA_DIR": tmp,
            "NATS_URL": nats_url,
            "PULIH_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        }
    )
    database = Database(database_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(kit_metadata.create_all)
    runtime = ServiceRuntime("reporting", settings, database, Emitter(REGENCY))
    batches: list[int] = []

    async def apply(_: UnitOfWork, received: Sequence[Received]) -> None:
        batches.append(len(received))

    broker = make_broker(nats_url, name="bench")
    subscribe_batches(
        runtime,
        broker,
        durable=durable,
        subject=f"ibm.{REGENCY}.>",
        apply=apply,
        batch_size=batch_size,
        tracks_itself=tracks_itself,
    )
    await broker.connect()
    [consumer] = runtime.batch_consumers
    try:
        started, cpu = time.perf_counter(), time.process_time()
        await consumer.start()
        finished = await acked_through(nats_url, consumer.durable, last_seq)
        cpu = time.process_time() - cpu
    finally:
        await consumer.stop()
        await broker.stop()
        await database.dispose()
    assert sum(batches) == count, f"applied {sum(batches)} of {count}"
    inbox = "apply tracks itself" if tracks_itself else "kit inbox"
    store = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
    return Figure(
        f"kit batches, no-op apply, {inbox} ({store})", count, finished - started, cpu, len(batches)
    )


Run = Callable[[], Awaitable[Figure]]


@asynccontextmanager
async def throwaway_schemas(database_url: str | None, runs: Sequence[str]) -> AsyncIterator[str]:
    """On PostgreSQL, an empty schema per run (``<prefix>_<run>``), dropped afterwards."""
    prefix = f"bench_{uuid.uuid4().hex[:8]}"
    if database_url is None:
        yield prefix
        return
    plain = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(plain)
    try:
        for run in runs:
            await conn.execute(f'CREATE SCHEMA "{prefix}_{run}"')
        yield prefix
    finally:
        for run in runs:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{prefix}_{run}" CASCADE')
        await conn.close()


async def main(count: int, batch_size: int, database_url: str | None) -> None:
    async with throwaway_schemas(database_url, ("a", "b")) as schema:
        await measure(count, batch_size, database_url, schema)


async def measure(count: int, batch_size: int, database_url: str | None, schema: str) -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        server = NatsServer(tmp / "nats", domain=f"r{REGENCY}").start()
        try:
            started = time.perf_counter()
            last_seq = await publish_backlog(server.url, count)
            print(f"backlog: {count:,} events in {STREAM} ({time.perf_counter() - started:.1f}s to publish)")

            def store(run: str) -> str:
                if database_url is None:
                    return f"sqlite+aiosqlite:///{tmp / run}.db"
                return f"{database_url}{'&' if '?' in database_url else '?'}search_path={schema}_{run}"

            runs: list[Run] = [
                lambda: raw_pull(server.url, count, last_seq, batch_size),
                lambda: raw_inbox_pull(server.url, count, last_seq, batch_size),
                lambda: kit_batches(
                    tmp, server.url, store("a"), count, last_seq, batch_size, tracks_itself=True
                ),
                lambda: kit_batches(
                    tmp, server.url, store("b"), count, last_seq, batch_size, tracks_itself=False
                ),
            ]
            figures = []
            for run in runs:
                figure = await run()
                figures.append(figure)
                print(f"  {figure.run}: {figure.per_second:,.0f} events/s", flush=True)
        finally:
            server.stop()
    raw = figures[0].per_second
    load = os.getloadavg()[0]
    print()
    print(f"load average {load:.1f} on {os.cpu_count()} cores; 'vs raw' compares with nats-py's fetch")
    columns = (
        ("events", 8),
        ("seconds", 8),
        ("batches", 8),
        ("events/s", 10),
        ("vs raw", 7),
        ("CPU us/event", 13),
    )
    print(f"{'run':<58}", *(f"{name:>{width}}" for name, width in columns))
    for figure in figures:
        print(
            f"{figure.run:<58} {figure.events:>8,} {figure.seconds:>8.2f} {figure.batches or 0:>8} "
            f"{figure.per_second:>10,.0f} {figure.per_second / raw:>7.2f} {figure.cpu_us_per_event:>13.0f}"
        )
    print(
        json.dumps(
            {
                "bench": "batch_consumer_throughput",
                "events": count,
                "batch_size": batch_size,
                "load_average": round(load, 1),
                "cores": os.cpu_count(),
                "runs": [
                    {
                        "run": f.run,
                        "seconds": round(f.seconds, 3),
                        "batches": f.batches,
                        "events_per_second": round(f.per_second),
                        "cpu_us_per_event": round(f.cpu_us_per_event, 1),
                        "ratio_to_raw": round(f.per_second / raw, 3),
                    }
                    for f in figures
                ],
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument(
        "--database-url",
        help="PostgreSQL for the consumers' stores (postgresql+asyncpg://…; a schema per run, dropped "
        "afterwards); default: a fresh SQLite file per run",
    )
    args = parser.parse_args()
    asyncio.run(main(args.events, args.batch_size, args.database_url))
