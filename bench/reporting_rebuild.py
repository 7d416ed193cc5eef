"""How fast ``pulih reporting rebuild`` replays a regency of 10^6 events into a fresh SQLite store,
next to raw nats-py pull-consumes of the same stream in the same run (the ratio is the figure
that counts on a shared machine). Prints a table, then one JSON line; not a test.

    .venv/bin/python bench/reporting_rebuild.py [--events 1000000] [--stream-dir DIR]
        [--database-url postgresql+asyncpg://…]

The stream is made by ``generate_regency.py`` unless ``--stream-dir`` already holds it (it is
kept there for the next run: making 10^6 events takes a minute or two). Runs:

- *raw fetch*: nats-py's ``pull_subscribe`` + ``fetch(1000)``, no acks: what a reader gets from
  the library as it comes;
- *raw pull on an inbox*: the rebuild's own reader (pull requests answered on an inbox of its
  own, one fetch ahead), reading only;
- *reader in its own process*: that reader as the rebuild runs it, handing (sequence, body)
  pairs over a pipe; then the same with the contracts' parsing here, nothing stored;
- *rebuild*: ``pulih reporting rebuild`` in a process of its own (so its peak RSS is its own):
  the replay, then the finish (every indicator cell, every unit's phases) and the swap.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate_regency
import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from pulih.contracts import regency_subjects, stream_name
from pulih.kit.nats_server import NatsServer
from pulih.reporting.cli import EventProgress
from pulih.reporting.rebuild import decode
from pulih.reporting.stream_reader import (
    last_sequence,
    read_ahead,
    read_elsewhere,
    stream_messages,
    stream_seq,
)

REGENCY = "3301"
STREAM = stream_name(REGENCY)
TARGET_EVENTS_PER_SECOND = 20_000
TARGET_PEAK_MB = 300


@dataclass(frozen=True)
class Figure:
    """One run: how many messages in how long, the CPU it took, its peak memory."""

    run: str
    events: int
    seconds: float
    cpu_seconds: float
    peak_mb: float | None = None
    note: str = ""

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_event(self) -> float:
        return 1e6 * self.cpu_seconds / self.events if self.events else 0.0


async def ensure_stream(nats_url: str, events: int, seed: int) -> int:
    """The stream's last sequence, after generating ``events`` into it if it is empty."""
    nc = await nats.connect(nats_url)
    try:
        last = await last_sequence(nc, REGENCY)
    finally:
        await nc.close()
    if last:
        print(f"stream {STREAM} already holds {last:,} messages: reusing them", flush=True)
        return last
    plan = generate_regency.plan_for(REGENCY, events, seed=seed)
    print(f"generating {events:,} events: {plan.units} units, {plan.start} to {plan.end}", flush=True)
    started = time.perf_counter()
    with EventProgress("generate", events) as progress:
        stored = await generate_regency.publish(
            nats_url, REGENCY, generate_regency.made_elsewhere(plan), progress=progress
        )
    print(f"  {stored:,} events in {time.perf_counter() - started:.0f} s", flush=True)
    nc = await nats.connect(nats_url)
    try:
        return await last_sequence(nc, REGENCY)
    finally:
        await nc.close()


async def raw_fetch(nats_url: str, last: int) -> Figure:
    """nats-py's own pull consumer: ``fetch(1000)`` until the last message, nothing acked."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(
            regency_subjects(REGENCY),
            stream=STREAM,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE, mem_storage=True
            ),
        )
        started, cpu = time.perf_counter(), time.process_time()
        count, seq = 0, 0
        while seq < last:
            messages = await sub.fetch(1000, timeout=10)
            count += len(messages)
            seq = messages[-1].metadata.sequence.stream
        figure = Figure(
            "raw fetch (nats-py pull_subscribe, fetch 1000)",
            count,
            time.perf_counter() - started,
            time.process_time() - cpu,
        )
        await sub.unsubscribe()
        return figure
    finally:
        await nc.close()


async def raw_inbox(nats_url: str, last: int) -> Figure:
    """The rebuild's reader in this process, reading only."""
    nc = await nats.connect(nats_url)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        count = 0
        async for messages in read_ahead(stream_messages(nc, REGENCY, 1, last)):
            count += len([(stream_seq(m), m.data) for m in messages])
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        return Figure("raw pull on an inbox (the rebuild's reader)", count, seconds, cpu)
    finally:
        await nc.close()


async def raw_elsewhere(nats_url: str, last: int, *, parse: bool) -> Figure:
    """The rebuild's reader in a process of its own, as the rebuild runs it (and parsing here,
    with ``parse``); the CPU is this process's only."""
    started, cpu = time.perf_counter(), time.process_time()
    count = 0
    async for messages in read_ahead(read_elsewhere(nats_url, None, REGENCY, 1, last)):
        count += len(messages)
        if parse:
            decode(messages)
    name = "reader in its own process" + (" + parse_event here" if parse else ", taken here")
    return Figure(name, count, time.perf_counter() - started, time.process_time() - cpu)


def rebuild(nats_url: str, database_url: str, data_dir: Path) -> tuple[Figure, Figure, dict[str, object]]:
    """``pulih reporting rebuild`` in a process of its own: (replay figure, whole-run figure, report)."""
    env = {
        **os.environ,
        "PULIH_REGENCY": REGENCY,
        "PULIH_DATA_DIR": str(data_dir),
        "NATS_URL": nats_url,
        "DATABASE_URL": database_url,
    }
    env.pop("PULIH_PROGRAMME_FILE", None)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "pulih.kit.cli", "reporting", "rebuild", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines = process.stdout.read().splitlines()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"pulih reporting rebuild failed ({process.returncode}): {lines[-5:]}")
    report = json.loads(lines[-1])
    seconds = report["seconds"]
    cpu = usage.ru_utime + usage.ru_stime
    peak = usage.ru_maxrss / 1024
    read = int(report["read"])
    replay = Figure("rebuild: replay into rebuild_ tables", read, seconds["replay"], 0.0, peak)
    whole = Figure(
        "rebuild: whole command (start, replay, finish, swap)",
        read,
        elapsed,
        cpu,
        peak,
        note=f"finish {seconds['finish']:.1f} s, swap {seconds['swap']:.2f} s",
    )
    return replay, whole, report


async def measure(events: int, stream_dir: Path, database_url: str | None, seed: int) -> None:
    server = NatsServer(stream_dir / "nats", domain=f"r{REGENCY}").start()
    try:
        last = await ensure_stream(server.url, events, seed)
        with tempfile.TemporaryDirectory() as name:
            store = database_url or f"sqlite+aiosqlite:///{Path(name) / 'reporting.db'}"
            figures = []
            for run in (
                lambda: raw_fetch(server.url, last),
                lambda: raw_inbox(server.url, last),
                lambda: raw_elsewhere(server.url, last, parse=False),
                lambda: raw_elsewhere(server.url, last, parse=True),
            ):
                figure = await run()
                figures.append(figure)
                print(f"  {figure.run}: {figure.per_second:,.0f} events/s", flush=True)
            replay, whole, report = rebuild(server.url, store, Path(name))
            figures += [replay, whole]
            print(f"  {whole.run}: {whole.per_second:,.0f} events/s", flush=True)
    finally:
        server.stop()
    report_figures(figures, report, database_url)


def report_figures(figures: list[Figure], report: dict[str, object], database_url: str | None) -> None:
    raw = figures[0].per_second
    load = os.getloadavg()[0]
    store = "PostgreSQL" if database_url else "SQLite"
    print()
    print(f"load average {load:.1f} on {os.cpu_count()} cores; store {store}")
    print("'vs raw' compares with nats-py's fetch")
    columns = (
        ("events", 10),
        ("seconds", 8),
        ("events/s", 10),
        ("vs raw", 7),
        ("CPU us/ev", 10),
        ("peak MB", 8),
    )
    print(f"{'run':<54}", *(f"{name:>{width}}" for name, width in columns))
    for f in figures:
        cpu = f"{f.cpu_us_per_event:>10.0f}" if f.cpu_seconds else f"{'':>10}"
        peak = f"{f.peak_mb:>8.0f}" if f.peak_mb else f"{'':>8}"
        print(
            f"{f.run:<54} {f.events:>10,} {f.seconds:>8.1f} {f.per_second:>10,.0f} "
            f"{f.per_second / raw:>7.2f} {cpu} {peak}  {f.note}"
        )
    whole = figures[-1]
    verdict = (
        f"target ≥ {TARGET_EVENTS_PER_SECOND:,} events/s: {whole.per_second:,.0f} (whole), "
        f"{figures[-2].per_second:,.0f} (replay); peak ≤ {TARGET_PEAK_MB} MB: {whole.peak_mb:.0f} MB"
    )
    print(verdict)
    print(
        json.dumps(
            {
                "bench": "reporting_rebuild",
                "store": store,
                "load_average": round(load, 1),
                "cores": os.cpu_count(),
                "runs": [
                    {
                        "run": f.run,
                        "events": f.events,
                        "seconds": round(f.seconds, 2),
                        "events_per_second": round(f.per_second),
                        "vs_raw_fetch": round(f.per_second / raw, 3),
                        "cpu_us_per_event": round(f.cpu_us_per_event, 1) if f.cpu_seconds else None,
                        "peak_mb": round(f.peak_mb) if f.peak_mb else None,
                    }
                    for f in figures
                ],
                "rebuild_report": report,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--stream-dir", type=Path, help="keep the NATS store here, and reuse it next time")
    parser.add_argument("--database-url", help="the rebuild's store (default: a fresh SQLite file)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.stream_dir is not None:
        args.stream_dir.mkdir(parents=True, exist_ok=True)
        asyncio.run(measure(args.events, args.stream_dir, args.database_url, args.seed))
        return
    with tempfile.TemporaryDirectory() as name:
        asyncio.run(measure(args.events, Path(name), args.database_url, args.seed))


if __name__ == "__main__":
    main()
