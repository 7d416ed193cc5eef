"""The pipeline: events a second sustained from a regency's public API, through the outbox, its
relay, JetStream and a consumer, to the consumer's committed effect, on a whole regency
(``pulih up``: nats-server and every service as real processes, SQLite stores).

- **single requests**: field devices (16 at once, each waiting for its answer before the next
  request) register a client, record their consent and screen them, one request each
  (``ClientRegistered``, ``ConsentRecorded``, ``ClientScreened``); rehab's consumer applies them.
  The rate is the events over the time from the first request to the last event's commit in
  rehab's inbox (its ``applied_at``).
- **/v1/sync batches**: devices (4 at once) send a day's sessions for their unit in one
  ``POST /v1/sync`` each (``SessionHeld`` per item), for clients enrolled beforehand; reporting's
  projection applies them. The rate is the events over the time from the first batch to the
  moment the last event is in reporting's ``applied_events`` (polled every 50 ms).

The limit is what raw nats-py moves through the regency's own nats-server in the same run: the
slower of publishing with 256 in flight and pull-consuming with acks (``bench/limits.py``).

    .venv/bin/python bench/pipeline.py [--clients 300] [--batches 8] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from field_device import FieldDevice, Refused
from figures import Figure, figure, print_figures, unavailable
from light_http import HttpError, LightHttp
from limits import raw_pipeline_limit
from running_regency import AppliedEvents, CpuMeter, RunningRegency, budget, cpu_note, until_applied

TARGET = 2_000
"""Events a second the pipeline should sustain (issue 13): its CPU budget per event."""


@dataclass(frozen=True)
class Sizes:
    """How much work each part sends."""

    clients: int = 300
    """Single requests: clients registered, consented and screened (three events each)."""
    concurrency: int = 16
    """Single requests: devices at work at once."""
    enrolled: int = 40
    """/v1/sync: clients enrolled beforehand, whose sessions the batches carry."""
    batches: int = 8
    """/v1/sync: requests sent."""
    items: int = 250
    """/v1/sync: sessions per request."""
    sync_concurrency: int = 4
    """/v1/sync: devices at work at once."""


FULL = Sizes()
QUICK = Sizes(clients=6, concurrency=3, enrolled=2, batches=2, items=5, sync_concurrency=2)


async def single_requests(
    device: FieldDevice, regency: RunningRegency, sizes: Sizes, serials: int
) -> tuple[float, float, tuple[float, str]]:
    """(events/s to rehab's commits, events/s answered by the API, CPU per event) for the single
    requests."""
    unit_id, agent_id, _ = await device.establish_unit()
    queue = list(range(serials, serials + sizes.clients))
    sent: list[uuid.UUID] = []
    answered: list[float] = []

    async def worker() -> None:
        while queue:
            serial = queue.pop()
            registered = await device.register(unit_id, serial)
            client_id = str(registered.body["client_id"])
            consented = await device.consent(client_id)
            screened = await device.screen(client_id, agent_id)
            sent.extend(registered.events + consented.events + screened.events)
            answered.append(screened.answered)

    applied = AppliedEvents(regency.store("rehab"))
    try:
        meter = CpuMeter(regency)
        started = time.time()
        await asyncio.gather(*(worker() for _ in range(sizes.concurrency)))
        done = await until_applied(applied, sent, timeout=300)
        await meter.quiet()
    finally:
        applied.close()
    cpu = cpu_note(meter.used(), len(sent))
    return len(sent) / (max(done.values()) - started), len(sent) / (max(answered) - started), cpu


async def sync_batches(
    device: FieldDevice, regency: RunningRegency, sizes: Sizes
) -> tuple[float, float, tuple[float, str]]:
    """(events/s to reporting's projection, events/s answered by the API, CPU per event) for
    /v1/sync batches."""
    first = uuid.uuid4().int % 1_000_000 + 2_000_000
    unit_id, agent_id, enrolments = await device.enrolled_clients(sizes.enrolled, first)
    bodies = [device.sync_body(unit_id, agent_id, enrolments, sizes.items) for _ in range(sizes.batches)]
    sent: list[uuid.UUID] = []
    answered: list[float] = []

    async def worker() -> None:
        while bodies:
            answer = await device.sync(bodies.pop())
            sent.extend(answer.events)
            answered.append(answer.answered)

    applied = AppliedEvents(regency.store("reporting"), table="applied_events")
    try:
        applied.poll()
        meter = CpuMeter(regency)
        started = time.time()
        await asyncio.gather(*(worker() for _ in range(sizes.sync_concurrency)))
        done = await until_applied(applied, sent, timeout=300)
        await meter.quiet()
    finally:
        applied.close()
    cpu = cpu_note(meter.used(), len(sent))
    return len(sent) / (max(done.values()) - started), len(sent) / (max(answered) - started), cpu


async def pipeline_figures(regency: RunningRegency, sizes: Sizes, quick: bool) -> list[Figure]:
    """The pipeline figures of ``regency``."""
    published, consumed = await raw_pipeline_limit(regency.nats_url, quick)
    limit = min(published, consumed)
    rows: list[Figure] = []
    async with LightHttp(max_connections=64, timeout=120) as http:
        device = FieldDevice(regency, http)
        serials = uuid.uuid4().int % 1_000_000 + 1_000_000
        try:
            applied, accepted, cpu = await single_requests(device, regency, sizes, serials)
            rows += [
                figure("pipeline.single.events_per_s", applied, "events/s", limit, digits=0,
                       note=f"{sizes.concurrency} devices: register, consent, screen → rehab's commits; "
                       "limit: min(raw publish 256 in flight, raw pull-consume)"),
                figure("pipeline.single.api_events_per_s", accepted, "events/s", limit, digits=0,
                       note="the same events, as the API answered them"),
                figure("pipeline.single.cpu_ms_per_event", cpu[0], "ms", budget(TARGET),
                       note=f"the regency's; limit: the CPU budget per event at {TARGET:,}/s; {cpu[1]}"),
            ]  # fmt: skip
        except (Refused, TimeoutError, HttpError) as exc:
            rows.append(unavailable("pipeline.single.events_per_s", f"{type(exc).__name__}: {exc}"[:500]))
        if not await device.has_sync():
            rows.append(unavailable("pipeline.sync.events_per_s", "rehab has no POST /v1/sync yet"))
            return rows
        try:
            applied, accepted, cpu = await sync_batches(device, regency, sizes)
            rows += [
                figure("pipeline.sync.events_per_s", applied, "events/s", limit, digits=0,
                       note=f"{sizes.sync_concurrency} devices, {sizes.items} sessions per /v1/sync → "
                       "reporting's projection"),
                figure("pipeline.sync.api_events_per_s", accepted, "events/s", limit, digits=0,
                       note="the same events, as the API answered them"),
                figure("pipeline.sync.cpu_ms_per_event", cpu[0], "ms", budget(TARGET),
                       note=f"the regency's; limit: the CPU budget per event at {TARGET:,}/s; {cpu[1]}"),
            ]  # fmt: skip
        except (Refused, TimeoutError, HttpError) as exc:
            rows.append(unavailable("pipeline.sync.events_per_s", f"{type(exc).__name__}: {exc}"[:500]))
    return rows


async def measure(
    quick: bool = False, regency: RunningRegency | None = None, sizes: Sizes | None = None
) -> list[Figure]:
    """The pipeline figures on ``regency``, or on one started (and stopped) for it."""
    sizes = sizes or (QUICK if quick else FULL)
    try:
        if regency is not None:
            return await pipeline_figures(regency, sizes, quick)
        with tempfile.TemporaryDirectory(prefix="pulih-bench-") as tmp, RunningRegency(Path(tmp) / "r") as up:
            return await pipeline_figures(up, sizes, quick)
    except RuntimeError as exc:
        return [unavailable("pipeline.single.events_per_s", f"{type(exc).__name__}: {exc}")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=FULL.clients, help="single requests: clients")
    parser.add_argument("--batches", type=int, default=FULL.batches, help="/v1/sync requests")
    parser.add_argument("--items", type=int, default=FULL.items, help="sessions per /v1/sync request")
    parser.add_argument("--quick", action="store_true", help="a handful of each (a smoke test)")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    args = parser.parse_args()
    sizes = None if args.quick else Sizes(clients=args.clients, batches=args.batches, items=args.items)
    print_figures(asyncio.run(measure(args.quick, sizes=sizes)), as_json=args.json)


if __name__ == "__main__":
    main()
