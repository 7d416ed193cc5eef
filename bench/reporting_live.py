"""Reporting's CPU per event while it keeps up with a live stream (small batches), not a test.

    .venv/bin/python bench/reporting_live.py [--history 20000] [--live 3000] [--rate 200] [--group 1]

A regency's history of some ``--history`` events (``generate_regency``, up to yesterday) goes
into a fresh stream and the reporting service (its real lifespan, in this process, on a fresh
SQLite store) catches up with it. Then a child process publishes the last ``--live`` events of
the same story at ``--rate`` events/s, ``--group`` at a time (a ``/v1/sync`` session publishes
many at once), and this process's CPU time from the first live event to the position reaching
the last one is divided by ``--live``: reporting's CPU per event as the pipeline and e2e
benchmarks load it (the live events are of the story's last days or weeks: a recount covers
more periods than for events of today). Prints one JSON line; ``--pause`` seconds before the
live phase give ``py-spy record --pid`` time to attach.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import json
import multiprocessing
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate_regency
import nats
from asgi_lifespan import LifespanManager
from sqlalchemy import select

from pulih.kit.nats_server import NatsServer
from pulih.kit.settings import Settings
from pulih.reporting.app import build
from pulih.reporting.projection import CONSUMER
from pulih.reporting.store import LIVE

REGENCY = "3301"


def _messages(total: int, seed: int) -> list[generate_regency.Message]:
    """The whole story of as many units as ``total`` events take, up to yesterday (about 6%
    more than ``total``): its last events are of the last days, as live ones are."""
    plan = dataclasses.replace(generate_regency.plan_for(REGENCY, total, seed=seed), events=sys.maxsize)
    return list(generate_regency.messages(generate_regency.generate(plan)))


def _feed(url: str, messages: list[generate_regency.Message], rate: float, group: int) -> None:
    asyncio.run(_feed_async(url, messages, rate, group))


async def _feed_async(url: str, messages: list[generate_regency.Message], rate: float, group: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    started = time.perf_counter()
    for index in range(0, len(messages), group):
        due = started + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        for subject, event_id, body in messages[index : index + group]:
            await js.publish(subject, body, headers={"Nats-Msg-Id": event_id})
    await nc.close()


async def _applied(app: object) -> int:
    """The projection's position (one row by key: polling costs the service next to nothing)."""
    p = LIVE.position
    async with app.state.runtime.database.engine.connect() as conn:  # type: ignore[attr-defined]
        return int(await conn.scalar(select(p.c.stream_seq).where(p.c.consumer == CONSUMER)) or 0)


async def _wait_for(app: object, last: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while await _applied(app) < last:
        if time.monotonic() > deadline:
            raise SystemExit(f"position stuck at {await _applied(app)} < {last}")
        await asyncio.sleep(0.1)


CALLS: dict[str, int] = {}


def _count_calls(module: object, *names: str) -> None:
    """Count the calls of ``module``'s functions ``names`` (how many recounts, batches…)."""
    for name in names:
        original = getattr(module, name)

        def counted(
            *args: object, _original: object = original, _name: str = name, **kwargs: object
        ) -> object:
            CALLS[_name] = CALLS.get(_name, 0) + 1
            return _original(*args, **kwargs)  # type: ignore[operator]

        setattr(module, name, counted)


async def measure(history: int, live: int, rate: float, group: int, pause: float, workdir: Path) -> dict:
    messages = _messages(history + live, seed=1)
    backlog, tail = messages[:-live], messages[-live:]
    server = NatsServer(workdir / "nats", domain=f"r{REGENCY}").start()
    try:
        stored = await generate_regency.publish(server.url, REGENCY, generate_regency.chunked(backlog))
        settings = Settings.model_validate(
            {
                "PULIH_REGENCY": REGENCY,
                "PULIH_DATA_DIR": str(workdir),
                "NATS_URL": server.url,
                "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'reporting.db'}",
                "PULIH_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
                "PULIH_PROGRAMME_FILE": None,
            }
        )
        app = build(settings)
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
            await _wait_for(app, stored, 300)
            await asyncio.sleep(1.0)  # the deferred recount of the catch-up's last batch
            print(f"caught up with {stored} events; pid {os.getpid()}", flush=True)
            if pause:
                await asyncio.sleep(pause)
            feeder = multiprocessing.get_context("spawn").Process(
                target=_feed, args=(server.url, tail, rate, group)
            )
            CALLS.clear()
            cpu, wall = time.process_time(), time.perf_counter()
            feeder.start()
            await _wait_for(app, stored + len(tail), 120 + 2 * live / rate)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            feeder.join(10)
    finally:
        server.stop()
    return {
        "bench": "reporting_live",
        "history": stored,
        "live": len(tail),
        "rate": rate,
        "group": group,
        "seconds": round(wall, 2),
        "cpu_ms_per_event": round(1000 * cpu / len(tail), 3),
        "load_average": round(os.getloadavg()[0], 1),
        "calls": dict(CALLS),
    }


def main() -> None:
    from pulih.reporting import indicators, projection

    _count_calls(indicators, "_recount_flows", "_recount_stocks")
    _count_calls(projection, "apply_batch_sync")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--history", type=int, default=20_000)
    parser.add_argument("--live", type=int, default=3_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--group", type=int, default=1)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--keep", type=Path, help="work (and leave the store and stream) in this directory")
    parser.add_argument("--linger", type=float, help="override handlers.LINGER (0: take events as they come)")
    args = parser.parse_args()
    if args.linger is not None:
        from pulih.reporting import handlers

        handlers.LINGER = args.linger
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(measure(args.history, args.live, args.rate, args.group, args.pause, args.keep))
    else:
        with tempfile.TemporaryDirectory() as name:
            result = asyncio.run(
                measure(args.history, args.live, args.rate, args.group, args.pause, Path(name))
            )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
