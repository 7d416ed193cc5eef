"""Rehab's consumer CPU per event while it keeps up with a live stream (small batches), not a test.

    .venv/bin/python bench/rehab_live.py [--live 3000] [--rate 200] [--group 1] [--pause 0]

The rehab service (its real lifespan, in this process, on a fresh SQLite store) consumes
outreach's commonest events (a registration, a consent and a screening per client,
``consumer_throughput.client_events``) that a child process publishes at ``--rate`` events/s,
``--group`` at a time. This process's CPU time from the first event to the durable's ack floor
reaching the last one, divided by ``--live``, is rehab's CPU per event as the e2e benchmark loads
it (batches of one or a few events). Prints one JSON line; ``--pause`` seconds before the feed
give ``py-spy record --pid`` time to attach.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nats
from asgi_lifespan import LifespanManager
from consumer_throughput import DURABLE, STREAM, client_events
from nats.js.errors import NotFoundError

from pulih.contracts import new_event, subject_for
from pulih.kit.messaging import regency_stream_config
from pulih.kit.nats_server import NatsServer
from pulih.kit.settings import Settings
from pulih.rehab.app import build

REGENCY = "3301"


def _bodies(count: int) -> list[tuple[str, str, bytes]]:
    unit_id, agent_id = uuid.uuid4(), uuid.uuid4()
    out = []
    while len(out) < count:
        for data in client_events(unit_id, agent_id):
            event = new_event(data, regency=REGENCY)
            out.append((subject_for(event, REGENCY), str(event.id), event.to_json()))
    return out[:count]


def _feed(url: str, messages: list[tuple[str, str, bytes]], rate: float, group: int) -> None:
    asyncio.run(_feed_async(url, messages, rate, group))


async def _feed_async(url: str, messages: list[tuple[str, str, bytes]], rate: float, group: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    started = time.perf_counter()
    for index in range(0, len(messages), group):
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        for subject, event_id, body in messages[index : index + group]:
            await js.publish(subject, body, headers={"Nats-Msg-Id": event_id})
    await nc.close()


async def _acked(js: nats.js.JetStreamContext) -> int:
    try:
        info = await js.consumer_info(STREAM, DURABLE)
    except NotFoundError:
        return 0
    return int(info.ack_floor.stream_seq) if info.num_ack_pending == 0 else 0


async def measure(live: int, rate: float, group: int, pause: float, workdir: Path) -> dict[str, object]:
    server = NatsServer(workdir / "nats", domain=f"r{REGENCY}").start()
    try:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(regency_stream_config(REGENCY))
        settings = Settings.model_validate(
            {
                "PULIH_REGENCY": REGENCY,
                "PULIH_DATA_DIR": str(workdir),
                "NATS_URL": server.url,
                "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'rehab.db'}",
                "PULIH_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            }
        )
        app = build(settings)
        tail = _bodies(live)
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
            await asyncio.sleep(1.0)
            print(f"started; pid {os.getpid()}", flush=True)
            if pause:
                await asyncio.sleep(pause)
            feeder = multiprocessing.get_context("spawn").Process(
                target=_feed, args=(server.url, tail, rate, group)
            )
            cpu, wall = time.process_time(), time.perf_counter()
            feeder.start()
            deadline = time.monotonic() + 120 + 2 * live / rate
            while await _acked(js) < live:
                if time.monotonic() > deadline:
                    raise SystemExit("rehab did not apply every event in time")
                await asyncio.sleep(0.05)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            feeder.join(10)
        await nc.close()
    finally:
        server.stop()
    return {
        "bench": "rehab_live",
        "live": live,
        "rate": rate,
        "group": group,
        "seconds": round(wall, 2),
        "cpu_ms_per_event": round(1000 * cpu / live, 3),
        "load_average": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--live", type=int, default=3_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--group", type=int, default=1)
    parser.add_argument("--pause", type=float, default=0.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        result = asyncio.run(measure(args.live, args.rate, args.group, args.pause, Path(name)))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
