"""514 regencies report a year of aggregates to the national hub: how long the national view
takes to catch up, the hub's memory, and how fast the national API answers. Prints tables, then
one JSON line; not a test.

    .venv/bin/python bench/national_federation.py [--regencies 514] [--months 12] [--per-server 32]
        [--cluster] [--requests 100]

What is real, all on this machine: the hub, rendered by ``pulih.kit.federation.render`` (one
server, or with ``--cluster`` three nodes and ``NATIONAL`` at R3), with one account ``R<code>`` and
one leaf connection per regency, each logging in with that regency's own credentials, and one
``NATIONAL`` source per regency; the regencies' streams ``IBM_<code>`` and their ``LINK`` accounts
as rendered; the national reporting (its real app and consumer). What is simulated: the
regencies' servers are shared, ``--per-server`` regencies to a ``nats-server`` (each regency in
accounts of its own there, ``PULIH_<code>`` and ``LINK_<code>``, with its own leaf remote: see
``federation_world``), because 514 processes on a laptop measure the laptop, not the hub
(``--per-server 1`` runs one rendered server per regency); and the regencies' services: each
regency's ``AggregateReported`` events are published straight into its ``IBM_<code>`` stream, as
its reporting service's outbox relay would publish them, while the link is already up but
``NATIONAL`` not yet declared: the hub then catches up with every regency's year at once, the
worst case (a hub back after a long outage, or a first deployment).

The steps, each timed:
1. the hub starts; every regency (or simulation) server starts and links (the hub's ``/varz``
   counts the leafs);
2. each regency publishes ``--months`` aggregates;
3. ``NATIONAL`` is declared with a source per regency; the hub sources every aggregate;
4. the reporting service in national mode (this process, its real lifespan, a fresh SQLite
   store) consumes ``NATIONAL`` until its durable has acknowledged the last message;
5. ``GET /v1/national/indicators?level=province`` and ``GET /v1/national/regencies``, each
   ``--requests`` times after a warm-up, through the app's ASGI interface.
The hub's resident memory (VmRSS, and its peak VmHWM) and CPU time are read from /proc after each
step; its log's warnings (stalled readloops, slow consumers, closed leaf connections) are counted
at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import nats
from asgi_lifespan import LifespanManager
from federation_world import World, regency_codes, start_hub, start_regencies, year_of_aggregates
from nats.js.errors import NotFoundError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pulih.kit.auth import NATIONAL_SCOPE, issue_token
from pulih.kit.federation import names
from pulih.kit.federation.national_stream import declare_national_streams
from pulih.kit.messaging import regency_stream_config
from pulih.kit.settings import Settings
from pulih.reporting.app import build

console = Console(stderr=True)
JWT_SECRET = "bench-national-federation-secret-of-32-bytes"


class HubDied(RuntimeError):
    """A hub server exited during the run."""


@dataclass
class Figures:
    """What the run measured."""

    regencies: int
    months: int
    cluster: bool
    per_server: int = 1
    regency_servers: int = 0
    steps: dict[str, float] = field(default_factory=dict)
    """Step name → seconds."""
    hub_rss_mib: dict[str, float] = field(default_factory=dict)
    """Moment → the hub's VmRSS (the sum over its nodes), MiB."""
    hub_peak_mib: float = 0.0
    hub_cpu_seconds: float = 0.0
    hub_cpu_by_step: dict[str, float] = field(default_factory=dict)
    """Moment → the hub's CPU seconds (user + system, all nodes) so far."""
    hub_warnings: dict[str, int] = field(default_factory=dict)
    regency_rss_mib: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    failure: str | None = None

    @property
    def aggregates(self) -> int:
        return self.regencies * self.months


def progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def note_rss(world: World, figures: Figures, moment: str) -> None:
    figures.hub_rss_mib[moment] = sum(s.rss_kib() for s in world.hub) / 1024
    figures.hub_peak_mib = sum(s.rss_kib("VmHWM") for s in world.hub) / 1024
    figures.hub_cpu_seconds = sum(s.cpu_seconds() for s in world.hub)
    figures.hub_cpu_by_step[moment] = figures.hub_cpu_seconds
    console.print(
        f"  hub RSS {moment}: {figures.hub_rss_mib[moment]:,.0f} MiB, "
        f"CPU so far {figures.hub_cpu_seconds:.1f} s"
    )


WARNINGS = {
    "readloop stalled": "Readloop processing time",
    "slow consumer": "Slow Consumer",
    "leaf connection closed": "Leafnode connection closed",
    "stale connection": "Stale Client Connection",
    "error": "[ERR]",
}


def count_warnings(world: World, figures: Figures) -> None:
    """How often the hub's log says each of :data:`WARNINGS` (every node)."""
    text = "".join(s.log_file.read_text(errors="replace") for s in world.hub)
    figures.hub_warnings = {name: text.count(mark) for name, mark in WARNINGS.items()}


async def watch(
    world: World,
    description: str,
    total: int,
    probe: Callable[[], Awaitable[int]],
    timeout: float,
) -> float:
    """Poll ``probe`` (how far) until it reaches ``total``, with a progress bar; seconds taken.
    Raises :class:`HubDied` if a hub server dies, ``TimeoutError`` after ``timeout``."""
    started = time.perf_counter()
    with progress() as bar:
        task = bar.add_task(description, total=total)
        while True:
            died = world.hub_died()
            if died:
                raise HubDied(died)
            try:
                done = await probe()
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError, NotFoundError):
                done = -1  # the hub too busy to answer: try again
            if done >= 0:
                bar.update(task, completed=done)
            if done >= total:
                return time.perf_counter() - started
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"{description}: {done} of {total} after {timeout:.0f} s")
            await asyncio.sleep(0.25)


async def leaf_count(world: World) -> int:
    """Leaf connections the hub's servers hold (its ``/varz``)."""
    async with httpx.AsyncClient(timeout=5) as http:
        total = 0
        for server in world.hub:
            total += int((await http.get(f"http://127.0.0.1:{server.monitor_port}/varz")).json()["leafnodes"])
        return total


async def publish_regencies(world: World, codes: list[str], months: int) -> None:
    """Each regency declares ``IBM_<code>`` and publishes its aggregates (``Nats-Msg-Id`` = the
    event id, as the outbox relay does), 32 regencies at a time."""
    gate = asyncio.Semaphore(32)
    with progress() as bar:
        task = bar.add_task("regencies publish their year", total=len(codes) * months)

        async def one(code: str) -> None:
            async with gate:
                nc = await nats.connect(world.service_url(code), connect_timeout=5)
                try:
                    js = nc.jetstream()
                    await js.add_stream(regency_stream_config(code))
                    events = year_of_aggregates(code, months, seed=1)
                    await asyncio.gather(
                        *(
                            js.publish(
                                names.aggregate_subject(code), e.to_json(), headers={"Nats-Msg-Id": str(e.id)}
                            )
                            for e in events
                        )
                    )
                    bar.advance(task, len(events))
                finally:
                    await nc.close()

        await asyncio.gather(*(one(code) for code in codes))


async def national_count(world: World) -> int:
    nc = await nats.connect(world.hub_admin(), connect_timeout=5)
    try:
        return int((await nc.jetstream(timeout=10).stream_info(names.NATIONAL_STREAM)).state.messages)
    finally:
        await nc.close()


async def acknowledged(world: World) -> int:
    """How far the national view's durable has acknowledged ``NATIONAL`` (its ack floor)."""
    nc = await nats.connect(world.hub_admin(), connect_timeout=5)
    try:
        info = await nc.jetstream(timeout=10).consumer_info(names.NATIONAL_STREAM, names.NATIONAL_DURABLE)
        return int(info.ack_floor.stream_seq)
    finally:
        await nc.close()


async def time_requests(app: Any, requests: int) -> dict[str, list[float]]:
    token = issue_token(JWT_SECRET, sub="bench", role="national", regency=NATIONAL_SCOPE)
    headers = {"Authorization": f"Bearer {token}"}
    routes = {
        "/v1/national/indicators?level=province": (
            "/v1/national/indicators",
            {"level": "province", "from": "2025-01", "to": "2025-12"},
        ),
        "/v1/national/regencies": ("/v1/national/regencies", {}),
    }
    found: dict[str, list[float]] = {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://reporting") as http:
        with progress() as bar:
            for name, (path, params) in routes.items():
                task = bar.add_task(name, total=requests)
                timings = []
                for attempt in range(requests + 5):
                    started = time.perf_counter()
                    answer = await http.get(path, params=params, headers=headers)
                    elapsed = 1000 * (time.perf_counter() - started)
                    if answer.status_code != 200:
                        raise SystemExit(f"{name}: {answer.status_code} {answer.text[:300]}")
                    if attempt >= 5:  # after the warm-up
                        timings.append(elapsed)
                        bar.advance(task)
                found[name] = timings
    return found


async def national_view(world: World, figures: Figures, directory: Path, requests: int) -> None:
    settings = Settings.model_validate(
        {
            "PULIH_ENV": "development",
            "PULIH_REPORTING_MODE": "national",
            "PULIH_DATA_DIR": str(directory),
            # one node: kit's make_broker does not split a comma-separated NATS_URL (nats-py then
            # refuses it, "invalid connect url option"); the client learns the other nodes from
            # the cluster itself
            "NATS_URL": world.national()[0],
            "DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'reporting.db'}",
            "PULIH_JWT_SECRET": JWT_SECRET,
            "PULIH_PROGRAMME_FILE": None,
        }
    )
    app = build(settings)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60):
        figures.steps["national view catches up"] = await watch(
            world,
            "national view consumes NATIONAL",
            figures.aggregates,
            lambda: acknowledged(world),
            timeout=600,
        )
        note_rss(world, figures, "after the national view caught up")
        figures.latencies = await time_requests(app, requests)


async def measure(
    directory: Path, regencies: int, months: int, cluster: bool, requests: int, per_server: int
) -> Figures:
    figures = Figures(regencies, months, cluster, per_server)
    codes = regency_codes(regencies)
    started = time.perf_counter()
    world = start_hub(directory, codes, cluster=cluster)
    try:
        note_rss(world, figures, "idle")
        started = time.perf_counter()
        start_regencies(world, directory, codes, per_server)
        figures.regency_servers = len(world.regency_servers())
        figures.steps["regency servers listen"] = time.perf_counter() - started
        figures.steps["every link up"] = await watch(
            world, "leaf links up", len(codes), lambda: leaf_count(world), timeout=300
        )
        note_rss(world, figures, f"with {len(codes)} links")
        started = time.perf_counter()
        await publish_regencies(world, codes, months)
        figures.steps["regencies publish"] = time.perf_counter() - started
        figures.regency_rss_mib = sum(s.rss_kib() for s in world.regency_servers()) / 1024

        started = time.perf_counter()
        nc = await nats.connect(world.hub_admin(), connect_timeout=5)
        try:
            await declare_national_streams(nc.jetstream(timeout=60), codes, world.fed.hub.replicas)
        finally:
            await nc.close()
        figures.steps["NATIONAL declared"] = time.perf_counter() - started
        figures.steps["NATIONAL sources everything"] = figures.steps["NATIONAL declared"] + await watch(
            world, "NATIONAL sources", figures.aggregates, lambda: national_count(world), timeout=600
        )
        note_rss(world, figures, "after NATIONAL caught up")
        await national_view(world, figures, directory / "national", requests)
    except (HubDied, TimeoutError) as failure:
        figures.failure = str(failure)
        console.print(f"[bold red]stopped: {failure}")
    finally:
        count_warnings(world, figures)
        world.stop()
    return figures


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(figures: Figures) -> None:
    load = os.getloadavg()[0]
    hub = "a 3-node cluster, NATIONAL at R3" if figures.cluster else "one server"
    if figures.per_server <= 1:
        servers = f"a real, rendered nats-server per regency ({figures.regency_servers})"
    else:
        servers = (
            f"{figures.regency_servers} simulation nats-servers carrying {figures.per_server} regencies each "
            "(accounts PULIH_<code> and LINK_<code>, one leaf remote per regency)"
        )
    print()
    print(
        f"real: the hub ({hub}, rendered), with {figures.regencies} leaf connections, each logging in as "
        f"its regency's r<code> into its own account R<code>, and {figures.regencies} NATIONAL sources; "
        "the national reporting (its app and consumer, SQLite)"
    )
    print(
        f"simulated: {figures.regencies} regencies x {figures.months} months = {figures.aggregates:,} "
        f"aggregates, on {servers}; the regencies' services not run: their aggregates published "
        "straight into each IBM_<code> (as the outbox relay would), before NATIONAL was declared"
    )
    print(f"load average {load:.1f} on {os.cpu_count()} cores; national view on SQLite, in this process")
    if figures.failure:
        print(f"STOPPED: {figures.failure}")
    print(f"{'step':<34} {'seconds':>8} {'aggregates/s':>13}")
    for name, seconds in figures.steps.items():
        rate = (
            f"{figures.aggregates / seconds:>13,.0f}"
            if name in ("NATIONAL sources everything", "national view catches up", "regencies publish")
            else ""
        )
        print(f"{name:<34} {seconds:>8.1f} {rate}")
    print()
    for moment, mib in figures.hub_rss_mib.items():
        print(f"hub RSS {moment:<40} {mib:>8,.0f} MiB")
    print(f"hub peak RSS (VmHWM){'':<28} {figures.hub_peak_mib:>8,.0f} MiB")
    print(f"hub CPU time{'':<36} {figures.hub_cpu_seconds:>8.1f} s")
    previous = 0.0
    for moment, cpu in figures.hub_cpu_by_step.items():
        print(f"  hub CPU until {moment:<33} {cpu - previous:>8.1f} s")
        previous = cpu
    if figures.hub_warnings:
        said = ", ".join(f"{name} {n}" for name, n in figures.hub_warnings.items())
        print(f"hub log: {said}")
    if figures.regency_rss_mib:
        per = figures.regency_rss_mib / figures.regencies
        print(
            f"regency servers' RSS, all{'':<23} {figures.regency_rss_mib:>8,.0f} MiB "
            f"({per:.1f} MiB per regency, {figures.regency_servers} servers)"
        )
    if figures.latencies:
        print()
        print(f"{'GET':<42} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
        for name, ms in figures.latencies.items():
            print(f"{name:<42} {statistics.median(ms):>7.1f} {percentile(ms, 99):>7.1f} {max(ms):>7.1f}")
    print(
        json.dumps(
            {
                "bench": "national_federation",
                "regencies": figures.regencies,
                "months": figures.months,
                "aggregates": figures.aggregates,
                "hub": "cluster" if figures.cluster else "single",
                "regencies_per_server": figures.per_server,
                "regency_servers": figures.regency_servers,
                "load_average": round(load, 1),
                "cores": os.cpu_count(),
                "failure": figures.failure,
                "seconds": {k: round(v, 2) for k, v in figures.steps.items()},
                "hub_rss_mib": {k: round(v) for k, v in figures.hub_rss_mib.items()},
                "hub_peak_rss_mib": round(figures.hub_peak_mib),
                "hub_cpu_seconds": round(figures.hub_cpu_seconds, 1),
                "hub_cpu_seconds_by_moment": {k: round(v, 1) for k, v in figures.hub_cpu_by_step.items()},
                "hub_log": figures.hub_warnings,
                "regency_servers_rss_mib": round(figures.regency_rss_mib),
                "requests": {
                    name: {
                        "p50_ms": round(statistics.median(ms), 1),
                        "p99_ms": round(percentile(ms, 99), 1),
                        "max_ms": round(max(ms), 1),
                    }
                    for name, ms in figures.latencies.items()
                },
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--regencies", type=int, default=514)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument(
        "--per-server",
        type=int,
        default=32,
        help="regencies per simulation nats-server (1: a rendered server per regency)",
    )
    parser.add_argument("--cluster", action="store_true", help="a 3-node hub, NATIONAL at R3")
    parser.add_argument("--requests", type=int, default=100, help="timed requests per route")
    parser.add_argument("--keep", type=Path, help="run in this directory and keep it (logs, stores)")
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        report(
            asyncio.run(
                measure(args.keep, args.regencies, args.months, args.cluster, args.requests, args.per_server)
            )
        )
        return
    with tempfile.TemporaryDirectory() as name:
        report(
            asyncio.run(
                measure(Path(name), args.regencies, args.months, args.cluster, args.requests, args.per_server)
            )
        )


if __name__ == "__main__":
    main()
