"""End-to-end latency: from a field device's HTTP request to the commit of the consumer that
applies its event, at a fixed offered load of events, on a whole regency (``pulih up``:
nats-server and every service as real processes, SQLite stores).

The load is **open loop**: requests are started at ``t0 + i/rate`` whether or not the earlier
ones have been answered, and an event's latency counts from the moment its request was due (one
machine, one clock), so a stall anywhere (client, API, outbox relay, stream, consumer) counts.

- **single requests** (``e2e.single.*``): client registrations (``POST /v1/clients`` on outreach,
  one ``ClientRegistered`` each) at 200 a second; the commit is the ``applied_at`` that rehab's
  consumer writes in its inbox in the transaction that applies the event.
- **/v1/sync batches** (``e2e.sync.*``): ``POST /v1/sync`` on rehab with 10 sessions each (one
  ``SessionHeld`` per item), 20 a second (200 events a second); the commit is the moment the event
  appears in reporting's projection (``applied_events``, polled every 10 ms).

The limit is raw nats-py on the regency's own nats-server at the same rate: from the moment a
publish is due to the moment a pull consumer holds the message (``bench/limits.py``). The CPU
each process spent per event (``e2e.*.cpu_ms_per_event``: the regency's total; the note breaks
it down, load generator included) says what the latency is made of on a busy machine. The load
generator encodes its requests before the clock starts and sends them with a light keep-alive
client (``bench/light_http.py``): a field device is not on the regency box, so the less of the
box's CPU it takes, the more the figures are the regency's.

    .venv/bin/python bench/latency_e2e.py [--rate 200] [--seconds 10] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from field_device import SYNC_PATH, Answer, FieldDevice, Refused, synced
from figures import Figure, figure, percentile, print_figures, unavailable
from light_http import HttpError, LightHttp
from limits import raw_latency
from running_regency import AppliedEvents, CpuMeter, RunningRegency, budget, cpu_note, until_applied

WARM_UP = 20
"""Requests before the measured ones (connections opened, caches and consumers warm)."""
SYNC_ITEMS = 10
"""Sessions per ``/v1/sync`` request in the sync variant."""


@dataclass
class Load:
    """What an open-loop run sent: the answers, and the errors."""

    answers: list[Answer]
    errors: list[str]


async def open_loop(send: Callable[[int, float], Awaitable[Answer]], rate: float, count: int) -> Load:
    """Call ``send(i, due)`` for ``count`` requests, one due every ``1/rate`` s (epoch ``due``)."""
    load = Load([], [])

    async def one(i: int, due: float) -> None:
        try:
            load.answers.append(await send(i, due))
        except Exception as exc:  # counted and reported, the load goes on
            load.errors.append(f"{type(exc).__name__}: {exc}"[:300])

    tasks: list[asyncio.Task[None]] = []
    started, wall = time.perf_counter(), time.time()
    for i in range(count):
        offset = i / rate
        await asyncio.sleep(max(0.0, started + offset - time.perf_counter()))
        tasks.append(asyncio.create_task(one(i, wall + offset)))
    await asyncio.gather(*tasks)
    return load


def latency_rows(
    name: str,
    load: Load,
    done: dict[uuid.UUID, float],
    raw: list[float],
    cpu: tuple[float, str],
    *,
    rate: float,
    requests: float,
    what: str,
) -> list[Figure]:
    """The figures of one variant: ``done`` is when each event was committed."""
    sent = {e: a.sent for a in load.answers for e in a.events}
    end_to_end = [(done[e] - due) * 1000 for e, due in sent.items()]
    http_ms = [(a.answered - a.sent) * 1000 for a in load.answers]
    span = max(a.answered for a in load.answers) - min(a.sent for a in load.answers)
    failed = f"; {len(load.errors)} requests failed, e.g. {load.errors[0]}" if load.errors else ""
    at = f"{rate:g} events/s"
    return [
        figure(f"e2e.{name}.p50_ms", percentile(end_to_end, 0.5), "ms", percentile(raw, 0.5), digits=2,
               note=f"{what} at {at}: request due → consumer's commit; limit: raw publish → pull consumer"),
        figure(f"e2e.{name}.p99_ms", percentile(end_to_end, 0.99), "ms", percentile(raw, 0.99), digits=2,
               note=f"{len(end_to_end)} events{failed}"),
        figure(f"e2e.{name}.max_ms", max(end_to_end), "ms", max(raw), digits=2),
        figure(f"e2e.{name}.http_p99_ms", percentile(http_ms, 0.99), "ms", digits=2,
               note=f"the API's answer (p50 {percentile(http_ms, 0.5):.1f} ms)"),
        figure(f"e2e.{name}.answered_per_s", len(load.answers) / span, "req/s", requests,
               note="limit: the offered rate"),
        figure(f"e2e.{name}.cpu_ms_per_event", cpu[0], "ms", budget(rate),
               note=f"the regency's; limit: the CPU budget at {at} on {os.cpu_count()} cores; {cpu[1]}"),
    ]  # fmt: skip


async def single_requests(
    regency: RunningRegency, http: LightHttp, rate: float, seconds: float
) -> list[Figure]:
    """Registrations at ``rate`` for ``seconds``, followed to rehab's inbox."""
    count = max(1, round(rate * seconds))
    device = FieldDevice(regency, http)
    serials = uuid.uuid4().int % 1_000_000
    applied = AppliedEvents(regency.store("rehab"))
    try:
        unit_id, _, _ = await device.establish_unit()
        warm = await asyncio.gather(*(device.register(unit_id, serials + i) for i in range(WARM_UP)))
        await until_applied(applied, [e for a in warm for e in a.events], timeout=120)
        requests = [
            device.prepared("outreach", "/v1/clients", device.registration(unit_id, serials + WARM_UP + i))
            for i in range(count)
        ]
        meter = CpuMeter(regency)

        def register(i: int, due: float) -> Awaitable[Answer]:
            return device.send_prepared(requests[i], sent=due)

        load = await open_loop(register, rate, count)
        done = await until_applied(applied, [e for a in load.answers for e in a.events], timeout=300)
        await meter.quiet()
        cpu = cpu_note(meter.used(), len(done))
    finally:
        applied.close()
    raw = await raw_latency(regency.nats_url, rate, seconds)
    return latency_rows("single", load, done, raw, cpu, rate=rate, requests=rate, what="registrations")


async def sync_batches(regency: RunningRegency, http: LightHttp, rate: float, seconds: float) -> list[Figure]:
    """``/v1/sync`` batches of :data:`SYNC_ITEMS` sessions, ``rate`` sessions a second for
    ``seconds``, followed to reporting's projection."""
    requests = rate / SYNC_ITEMS
    count = max(1, round(requests * seconds))
    device = FieldDevice(regency, http)
    if not await device.has_sync():
        return [unavailable("e2e.sync.p99_ms", "rehab has no POST /v1/sync yet")]
    unit_id, agent_id, enrolments = await device.enrolled_clients(
        10, uuid.uuid4().int % 1_000_000 + 3_000_000
    )
    applied = AppliedEvents(regency.store("reporting"), table="applied_events")
    try:
        warm = [
            await device.sync(device.sync_body(unit_id, agent_id, enrolments, SYNC_ITEMS)) for _ in range(3)
        ]
        await until_applied(applied, [e for a in warm for e in a.events], timeout=120, every=0.01)
        bodies = [
            device.prepared("rehab", SYNC_PATH, device.sync_body(unit_id, agent_id, enrolments, SYNC_ITEMS))
            for _ in range(count)
        ]
        meter = CpuMeter(regency)

        async def sync(i: int, due: float) -> Answer:
            return synced(await device.send_prepared(bodies[i], sent=due))

        watcher = asyncio.create_task(_watch(applied))
        try:
            load = await open_loop(sync, requests, count)
            done = await until_applied(
                applied, [e for a in load.answers for e in a.events], timeout=300, every=0.01
            )
        finally:
            watcher.cancel()
        await meter.quiet()
        cpu = cpu_note(meter.used(), len(done))
    finally:
        applied.close()
    raw = await raw_latency(regency.nats_url, rate, seconds)
    what = f"/v1/sync, {SYNC_ITEMS} sessions each"
    return latency_rows("sync", load, done, raw, cpu, rate=rate, requests=requests, what=what)


async def _watch(applied: AppliedEvents) -> None:
    """Poll the projection every 10 ms while the load runs (its rows carry no time of their own)."""
    while True:
        applied.poll()
        await asyncio.sleep(0.01)


async def latency_figures(regency: RunningRegency, rate: float, seconds: float) -> list[Figure]:
    """Both variants on ``regency``."""
    rows: list[Figure] = []
    async with LightHttp(max_connections=128, timeout=120) as http:
        for name, variant in (("single", single_requests), ("sync", sync_batches)):
            try:
                rows += await variant(regency, http, rate, seconds)
            except (Refused, TimeoutError, HttpError) as exc:
                rows.append(unavailable(f"e2e.{name}.p99_ms", f"{type(exc).__name__}: {exc}"[:500]))
    return rows


async def measure(
    quick: bool = False,
    regency: RunningRegency | None = None,
    rate: float = 200.0,
    seconds: float = 10.0,
) -> list[Figure]:
    """The end-to-end latency figures on ``regency``, or on one started (and stopped) for it."""
    if quick:
        rate, seconds = min(rate, 50.0), min(seconds, 1.0)
    if regency is not None:
        return await latency_figures(regency, rate, seconds)
    with tempfile.TemporaryDirectory(prefix="pulih-bench-") as tmp, RunningRegency(Path(tmp) / "r") as up:
        return await latency_figures(up, rate, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="offered events a second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the load is offered")
    parser.add_argument("--quick", action="store_true", help="one second of load (a smoke test)")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    args = parser.parse_args()
    print_figures(asyncio.run(measure(args.quick, rate=args.rate, seconds=args.seconds)), as_json=args.json)


if __name__ == "__main__":
    main()
