"""The outbox relay's cost per event when events come one by one, as a field device's requests
write them, with and without the relay's linger (:data:`pulih.kit.outbox.LINGER_SECONDS`).
Prints a table; not a test, not a section of ``./dev bench``.

Events are written one per transaction (as a request writes its event) at ``--rate`` a second
for ``--seconds``, each commit ringing the relay's doorbell, while the relay runs in the same
process (as in a service). The relay's CPU per event is this process's CPU minus that of the
same writes with no relay running; the latency is each row's ``published_at`` minus ``created_at``
(commit to the PubAck's marking). The events per window is how many rows each marking UPDATE
held on average.

    .venv/bin/python bench/relay_trickle.py [--rate 200] [--seconds 10] [--lingers 0,0.005,0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time
import uuid
from contextlib import suppress
from pathlib import Path

from limits import client_events, nats_server_at
from nats.js.errors import NotFoundError
from sqlalchemy import select

from pulih.contracts import new_event, stream_name, subject_for
from pulih.kit.database import Database, kit_metadata
from pulih.kit.messaging import make_broker, regency_stream_config, stream_publisher
from pulih.kit.outbox import OutboxRelay, add_to_outbox, outbox_table
from pulih.kit.telemetry import setup_tracing

REGENCY = "3301"


@dataclasses.dataclass(frozen=True)
class Trickle:
    """One run: CPU seconds of the process, the relay's windows, and each row's latency (ms)."""

    cpu: float
    windows: int
    latencies: list[float]


async def trickle(nats_url: str, store: str, rate: float, count: int, linger: float | None) -> Trickle:
    """Write ``count`` events at ``rate`` a second, one transaction each; with a relay lingering
    ``linger`` seconds running (``None``: no relay)."""
    database = Database(store)
    broker = make_broker(nats_url, name="pulih-bench-trickle")
    unit_id, agent_id = uuid.uuid4(), uuid.uuid4()
    events = [event_ for _ in range(count // 3 + 1) for event_ in client_events(unit_id, agent_id)][:count]
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(kit_metadata.drop_all)
            await conn.run_sync(kit_metadata.create_all)
        await broker.connect()
        js = broker.connection.jetstream()
        with suppress(NotFoundError):
            await js.delete_stream(stream_name(REGENCY))
        await js.add_stream(regency_stream_config(REGENCY))
        relay = None
        if linger is not None:
            relay = OutboxRelay(database, stream_publisher(broker, REGENCY), linger_seconds=linger)
            relay.start()
        windows = 0
        all_marked = asyncio.Event()
        if relay is not None:
            mark = relay.mark_published

            async def counted(seqs: list[int]) -> None:
                nonlocal windows
                windows += 1
                await mark(seqs)
                if relay.stats.published >= count:
                    all_marked.set()

            relay.mark_published = counted  # type: ignore[method-assign]
        envelopes = [new_event(event_, regency=REGENCY) for event_ in events]
        started, cpu = time.perf_counter(), time.process_time()
        for i, envelope in enumerate(envelopes):
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            async with database.transaction() as session:
                await add_to_outbox(
                    session, envelope, subject_for(envelope, REGENCY), wake=relay.wake if relay else None
                )
        if relay is not None:
            await asyncio.wait_for(all_marked.wait(), timeout=120)
        used = time.process_time() - cpu
        if relay is not None:
            await relay.stop()
        async with database.sessions() as session:
            times = select(outbox_table.c.created_at, outbox_table.c.published_at)
            rows = (await session.execute(times)).all()
        latencies = sorted((p - c).total_seconds() * 1000 for c, p in rows if p is not None)
        await js.delete_stream(stream_name(REGENCY))
        return Trickle(used, windows, latencies)
    finally:
        await broker.stop()
        await database.dispose()


async def measure(rate: float, seconds: float, lingers: list[float], rounds: int) -> None:
    """Print the relay's CPU per event, events per window and latency for each linger."""
    setup_tracing("outreach", REGENCY)
    count = round(rate * seconds)
    with nats_server_at(None, "pulih-bench-trickle-") as url, tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite+aiosqlite:///{Path(tmp) / 'outbox.db'}"
        for _ in range(rounds):
            writes = await trickle(url, store, rate, count, None)
            print(f"writes alone: {writes.cpu * 1000 / count:.3f} ms CPU per event")
            for linger in lingers:
                run = await trickle(url, store, rate, count, linger)
                lat, relay_ms = run.latencies, (run.cpu - writes.cpu) * 1000 / count
                print(
                    f"linger {linger * 1000:4.1f} ms: relay {relay_ms:.3f} ms CPU"
                    f" per event, {count / max(run.windows, 1):.2f} events per window, commit→marked"
                    f" p50 {lat[len(lat) // 2]:.1f} ms p99 {lat[int(len(lat) * 0.99) - 1]:.1f} ms",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="events written a second (200)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long (10 s)")
    parser.add_argument("--lingers", default="0,0.005,0.01", help="the relay's lingers to compare (s)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds (2)")
    args = parser.parse_args()
    lingers = [float(x) for x in args.lingers.split(",")]
    asyncio.run(measure(args.rate, args.seconds, lingers, args.rounds))


if __name__ == "__main__":
    main()
