"""How fast rehab's consumer applies a backlog, next to raw nats-py pull-consume with acks on the
same nats-server in the same run. Prints a table (or JSON lines with ``--json``); not a test.

    .venv/bin/python bench/consumer_throughput.py [--events 30000] [--quick] [--json]
        [--batch-size 500] [--database-url postgresql+asyncpg://…] [--nats-url nats://…]

- **raw**: a durable pull consumer of nats-py on the same subjects, ``fetch`` of a batch and an
  ack for each message, nothing else: what consuming costs before anything is applied;
- **rehab**: the rehab service itself (its app, lifespan and migrations, on a fresh SQLite file or
  ``--database-url``) applies outreach's events (a registration, a consent and a screening per
  client, in a row) through its real consumer: ordered batches, the kit's read-model handlers,
  inbox rows, one commit a batch, acks after it. The clock runs from the first delivery (the
  service's start-up is not counted) until the durable's ack floor reaches the last event.

Both read the same backlog, published beforehand. Another bench (``./dev bench``) calls
:func:`measure`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import secrets
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import nats
from asgi_lifespan import LifespanManager
from figures import figure, print_figures
from limits import client_events, fetch_and_ack, nats_server_at
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError
from sqlalchemy import func, select

from pulih.contracts import new_event, stream_name, subject_for
from pulih.kit.messaging import regency_stream_config
from pulih.kit.settings import Settings
from pulih.rehab.app import build
from pulih.rehab.store import KnownScreening

REGENCY = "3301"
STREAM = stream_name(REGENCY)
SUBJECT = f"ibm.{REGENCY}.outreach.>"
DURABLE = "rehab-outreach-events"
"""Rehab's durable of outreach's events (``<service>-<durable>``)."""


async def publish_backlog(nats_url: str, clients: int) -> int:
    """A fresh regency stream holding three events per client (256 in flight); its last sequence."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        with suppress(NotFoundError):
            await js.delete_stream(STREAM)
        await js.add_stream(regency_stream_config(REGENCY))
        unit_id, agent_id = uuid.uuid4(), uuid.uuid4()
        pending: list[Awaitable[object]] = []
        for _ in range(clients):
            for data in client_events(unit_id, agent_id):
                event = new_event(data, regency=REGENCY)
                headers = {"Nats-Msg-Id": str(event.id)}
                pending.append(js.publish(subject_for(event, REGENCY), event.to_json(), headers=headers))
            if len(pending) >= 256:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
        return int((await js.stream_info(STREAM)).state.last_seq)
    finally:
        await nc.close()


async def raw_pull_rate(nats_url: str, count: int, batch_size: int) -> tuple[float, float]:
    """Events/s of a bare nats-py pull consumer (``fetch(batch_size)``, ack each message), and
    this process's CPU µs per event."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=batch_size)
        subscription = await js.pull_subscribe(SUBJECT, durable="bench-raw", stream=STREAM, config=config)
        started, cpu = time.perf_counter(), time.process_time()
        await fetch_and_ack(subscription, count, batch_size, timeout=0.5)
        await nc.flush()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        await js.delete_consumer(STREAM, "bench-raw")
        return count / elapsed, cpu / count * 1e6
    finally:
        await nc.close()


async def rehab_rate(nats_url: str, database_url: str, data_dir: Path, last_seq: int) -> tuple[float, float]:
    """Events/s of rehab's own consumer through the backlog, from its first delivery until every
    event is applied, committed and acknowledged; and this process's CPU µs per event meanwhile
    (the service's, and this bench's polling of the durable every 50 ms)."""
    settings = Settings.model_validate(
        {
            "PULIH_REGENCY": REGENCY,
            "PULIH_DATA_DIR": data_dir,
            "NATS_URL": nats_url,
            "DATABASE_URL": database_url,
            "PULIH_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        }
    )
    app = build(settings)
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
            started = finished = None
            cpu = 0.0
            while finished is None:
                try:
                    info = await js.consumer_info(STREAM, DURABLE)
                except NotFoundError:
                    info = None
                now = time.perf_counter()
                if info is not None:
                    if started is None and info.delivered.stream_seq > 0:
                        started, cpu = now, time.process_time()
                    if info.ack_floor.stream_seq >= last_seq and info.num_ack_pending == 0:
                        finished, cpu = now, time.process_time() - cpu
                await asyncio.sleep(0.05)
            async with app.state.runtime.database.sessions() as session:
                screened = int(await session.scalar(select(func.count()).select_from(KnownScreening)) or 0)
        assert started is not None
        if screened != last_seq // 3:
            raise RuntimeError(f"rehab applied {screened} screenings of {last_seq // 3}")
        return last_seq / (finished - started), cpu / last_seq * 1e6
    finally:
        await nc.close()


async def measure(
    events: int = 30_000,
    *,
    quick: bool = False,
    batch_size: int = 500,
    nats_url: str | None = None,
    database_url: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Rehab's consumer apply rate, with raw pull-consume with acks measured just before as its
    limit.

    On a nats-server of its own unless ``nats_url`` is given (its stream ``IBM_3301`` is deleted
    and made again there: give the URL of a server without a regency), and a fresh SQLite file
    unless ``database_url`` is given (an empty database or schema, which rehab migrates).
    ``progress`` hears what it is doing.
    """
    say = progress or (lambda _: None)
    if quick:
        events = min(events, 600)
    clients = max(1, events // 3)
    with (
        nats_server_at(nats_url, "pulih-bench-consumer-") as url,
        tempfile.TemporaryDirectory(prefix="pulih-bench-rehab-") as tmp,
    ):
        store = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'rehab.db'}"
        backend = "SQLite" if store.startswith("sqlite") else "PostgreSQL"
        say(f"consumer: publishing a backlog of {clients * 3:,} events")
        last_seq = await publish_backlog(url, clients)
        say("consumer: raw nats-py pull-consume with acks")
        raw, raw_cpu = await raw_pull_rate(url, last_seq, batch_size)
        say(f"consumer: rehab applying {last_seq:,} events ({backend})")
        applied, applied_cpu = await rehab_rate(url, store, Path(tmp), last_seq)
    return [
        figure(
            "consumer.raw: nats-py pull-consume with acks (the limit)",
            raw,
            "events/s",
            note=f"{raw_cpu:,.0f} µs CPU an event",
            digits=0,
        ),
        figure(
            f"consumer apply: rehab's outreach events, ordered batches, {backend}",
            applied,
            "events/s",
            raw,
            note=f"{last_seq:,} events, {applied_cpu:,.0f} µs CPU an event (raw: {raw_cpu:,.0f})",
            digits=0,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=30_000, help="events in the backlog (30000)")
    parser.add_argument("--quick", action="store_true", help="at most 600 events (a smoke test)")
    parser.add_argument("--batch-size", type=int, default=500, help="the raw consumer's fetch (500)")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    parser.add_argument("--nats-url", help="a running nats-server (default: one of our own)")
    parser.add_argument("--database-url", help="rehab's store (default: a fresh SQLite file)")
    args = parser.parse_args()
    rows = asyncio.run(
        measure(
            args.events,
            quick=args.quick,
            batch_size=args.batch_size,
            nats_url=args.nats_url,
            database_url=args.database_url,
        )
    )
    print_figures(rows, as_json=args.json)


if __name__ == "__main__":
    main()
