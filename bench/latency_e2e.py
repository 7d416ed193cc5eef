"""End-to-end latency: from a field device's HTTP request to the commit of the consumer that
applies its event, at a fixed offered load, on a whole regency (``pulih up``: nats-server and
every service as real processes, SQLite stores).

The load is **open loop**: client registrations (``POST /v1/clients`` on outreach, one
``ClientRegistered`` each) are started at ``t0 + i/rate`` whether or not the earlier ones have been
answered. Each event goes through outreach's outbox, its relay, JetStream, and rehab's durable
consumer, which writes the event's id and ``applied_at`` in its inbox in the transaction that
applies it. The latency of an event is ``applied_at`` minus the moment its request was due (one
machine, one clock), so a stall anywhere (client, API, relay, stream, consumer) counts.

The limit is raw nats-py on the regency's own nats-server at the same rate: from the moment a
publish is due to the moment a pull consumer holds the message (``bench/limits.py``).

    .venv/bin/python bench/latency_e2e.py [--rate 200] [--seconds 10] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from field_device import Answer, FieldDevice
from figures import Figure, figure, percentile, print_figures, unavailable
from limits import raw_latency
from running_regency import AppliedEvents, RunningRegency, until_applied

WARM_UP = 20
"""Registrations before the measured ones (connections opened, caches and the consumer warm)."""


async def open_loop_registrations(
    device: FieldDevice, unit_id: str, rate: float, count: int, first_serial: int
) -> tuple[list[Answer], list[str]]:
    """Register ``count`` clients, one due every ``1/rate`` s; the answers, and the errors."""
    answers: list[Answer] = []
    errors: list[str] = []

    async def one(serial: int, due: float) -> None:
        try:
            answers.append(await device.register(unit_id, serial, sent=due))
        except Exception as exc:  # counted and reported, the load goes on
            errors.append(f"{type(exc).__name__}: {exc}"[:300])

    tasks: list[asyncio.Task[None]] = []
    started, wall = time.perf_counter(), time.time()
    for i in range(count):
        offset = i / rate
        await asyncio.sleep(max(0.0, started + offset - time.perf_counter()))
        tasks.append(asyncio.create_task(one(first_serial + i, wall + offset)))
    await asyncio.gather(*tasks)
    return answers, errors


async def latency_figures(
    regency: RunningRegency, rate: float, seconds: float, *, serials: int = 0
) -> list[Figure]:
    """Offer ``rate`` registrations/s for ``seconds`` to ``regency``; the latency figures.
    ``serials`` is the first client serial to use (unique within the regency)."""
    count = max(1, round(rate * seconds))
    applied = AppliedEvents(regency.store("rehab"))
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    try:
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            device = FieldDevice(regency, http)
            unit_id, _, _ = await device.establish_unit()
            warm = await asyncio.gather(*(device.register(unit_id, serials + i) for i in range(WARM_UP)))
            await until_applied(applied, [e for a in warm for e in a.events], timeout=120)
            answers, errors = await open_loop_registrations(device, unit_id, rate, count, serials + WARM_UP)
        events = {e: a for a in answers for e in a.events}
        done = await until_applied(applied, events, timeout=120)
    finally:
        applied.close()
    end_to_end = [(done[e] - a.sent) * 1000 for e, a in events.items()]
    http_ms = [(a.answered - a.sent) * 1000 for a in answers]
    answered = len(answers) / (max(a.answered for a in answers) - min(a.sent for a in answers))
    raw = await raw_latency(regency.nats_url, rate, seconds)
    note = f"{len(errors)} of {count} requests failed: {errors[0]}" if errors else None
    at = f"at {rate:g}/s"
    return [
        figure("e2e.p50_ms", percentile(end_to_end, 0.5), "ms", percentile(raw, 0.5), digits=2,
               note=f"HTTP request → rehab's commit, {at}; limit: raw publish → pull consumer {at}"),
        figure("e2e.p99_ms", percentile(end_to_end, 0.99), "ms", percentile(raw, 0.99), digits=2, note=note),
        figure("e2e.max_ms", max(end_to_end), "ms", max(raw), digits=2),
        figure("e2e.http_p50_ms", percentile(http_ms, 0.5), "ms", digits=2, note=f"the API's answer, {at}"),
        figure("e2e.http_p99_ms", percentile(http_ms, 0.99), "ms", digits=2),
        figure("e2e.answered_per_s", answered, "req/s", rate, note="limit: the offered rate"),
    ]  # fmt: skip


async def measure(
    quick: bool = False,
    regency: RunningRegency | None = None,
    rate: float = 200.0,
    seconds: float = 10.0,
) -> list[Figure]:
    """The end-to-end latency figures on ``regency``, or on one started (and stopped) for it."""
    if quick:
        rate, seconds = min(rate, 50.0), min(seconds, 1.0)
    serials = uuid.uuid4().int % 1_000_000
    try:
        if regency is not None:
            return await latency_figures(regency, rate, seconds, serials=serials)
        with tempfile.TemporaryDirectory(prefix="pulih-bench-") as tmp, RunningRegency(Path(tmp) / "r") as up:
            return await latency_figures(up, rate, seconds, serials=serials)
    except (TimeoutError, RuntimeError) as exc:
        return [unavailable("e2e.p99_ms", f"{type(exc).__name__}: {exc}")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="offered registrations (events) a second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the load is offered")
    parser.add_argument("--quick", action="store_true", help="one second of load (a smoke test)")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    args = parser.parse_args()
    print_figures(asyncio.run(measure(args.quick, rate=args.rate, seconds=args.seconds)), as_json=args.json)


if __name__ == "__main__":
    main()
