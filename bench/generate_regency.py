"""Make a realistic regency's history: N valid, causally consistent events, straight into its
stream (``IBM_<regency>``) or into a JSON-lines file. Not a test; the reporting benchmarks and
tests replay what it makes.

    .venv/bin/python bench/generate_regency.py --events 1000000 --regency 3301 --nats nats://127.0.0.1:4222
    .venv/bin/python bench/generate_regency.py --events 10000 --out /tmp/regency.jsonl --seed 2

Other options: ``--units N``, ``--months M`` (36), ``--end YYYY-MM-DD`` (yesterday).

The regency is told as stories (``regency_stories``, ``regency_care``): units of 5 agents with
weekly outreach, about 8 clients per unit per 16-week cohort, screenings mostly low or moderate
risk, weekly sessions, dropouts (some reversed by a session that synced late), referrals that
clinics mostly answer in time, back-referrals, follow-ups. Without ``--units`` it takes as many
units as the count needs over ``--months`` (36) ending yesterday, the regency's last day told.

Every event is built by its contract model and wrapped by ``new_event`` (both validate), gets
a UUIDv7 id (from its time and the seed: the same seed makes the same ids, which JetStream
deduplicates) and is published with ``Nats-Msg-Id`` = id, 256 publishes in flight.

A JSON-lines file holds one ``{"subject": …, "event": {…}}`` per line, in stream order;
:func:`read_lines` reads it back and :func:`publish` writes any such sequence to a stream.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import json
import math
import multiprocessing
import random
import sys
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nats
from nats.js.errors import NotFoundError
from regency_stories import unit_story
from regency_world import Planned, Spawn, Story, Unit, World

from pulih.contracts import CloudEvent, Event, new_event, stream_name, subject_for
from pulih.kit.messaging import StreamLimits, regency_stream_config
from pulih.reporting.cli import EventProgress

IN_FLIGHT = 256
"""Publishes awaiting their ack at once (NATS-NOTES: about 30,000/s on this kind of machine)."""
CHUNK = 1000
"""Messages handed over at a time."""
PROBE_UNITS = 48
"""Units of the probe that says how many units a count needs."""
DISTRICTS = 24
"""Kecamatan per regency (Cilacap has 24)."""
PILOT_VILLAGES = ("Slarang", "Bulupayung", "Planjan")
"""Cilacap's first IBM villages (SEED-FACTS.md); later units are named after their village code."""
BENCH_STREAM_BYTES = 8 * 1024**3
"""A stream this generator creates may hold this much (the default 1 GiB is tight for 10^6)."""
_DAY_OPENS = timedelta(hours=1)
"""08:00 in Asia/Jakarta: a day's events are stamped from then on, one second apart."""


@dataclass(frozen=True)
class RegencyPlan:
    """What to simulate: ``units`` units over the ``months`` up to ``end``, at most ``events``."""

    regency: str
    events: int
    units: int
    months: int
    seed: int
    end: date

    @property
    def start(self) -> date:
        """The first day told: ``months`` before ``end``."""
        return self.end - timedelta(days=round(self.months * 30.44))


def yesterday(timezone: str = "Asia/Jakarta") -> date:
    """The regency's yesterday: the last whole day no event of it can be in the future of."""
    return datetime.now(ZoneInfo(timezone)).date() - timedelta(days=1)


def plan_for(
    regency: str,
    events: int,
    *,
    months: int = 36,
    seed: int = 1,
    units: int | None = None,
    end: date | None = None,
) -> RegencyPlan:
    """A plan that reaches ``events``: the given ``units``, or as many as a probe of the same
    story (another seed, 48 units) says it takes, with 6% to spare (the plan stops at
    ``events``; the last days told are then a little short of ``end``)."""
    end = end or yesterday()
    if units is None:
        probe = RegencyPlan(regency, sys.maxsize, PROBE_UNITS, months, seed + 7919, end)
        told = sum(1 for _ in planned(probe))
        units = max(1, math.ceil(events * 1.06 * probe.units / max(told, 1)))
    return RegencyPlan(regency, events, units, months, seed, end)


def planned(plan: RegencyPlan) -> Iterator[tuple[date, Planned]]:
    """Every story's events interleaved by the day they are published, up to ``plan.end``.

    A heap holds the next step of each story; a story's steps never overtake each other (a
    step waits for the one before it), so each event comes after what it builds on.
    """
    world = World(random.Random(plan.seed), plan.end)
    heap: list[tuple[date, int, Planned | Spawn, Story]] = []
    order = itertools.count()

    def push(story: Story, not_before: date) -> None:
        for step in story:
            heapq.heappush(heap, (max(step.publish_on, not_before), next(order), step, story))
            return

    setup_days = max(1, min(183, (plan.end - plan.start).days // 4))
    for index in range(plan.units):
        unit = Unit(world.uuid(), _village_code(plan.regency, index))
        name = (
            f"IBM Desa {PILOT_VILLAGES[index]}" if index < len(PILOT_VILLAGES) else f"IBM {unit.village_code}"
        )
        push(unit_story(world, unit, name, plan.start + world.days(0, setup_days)), plan.start)
    while heap:
        day, _, step, story = heapq.heappop(heap)
        if day > plan.end:
            continue  # that story goes on after the regency's yesterday: not told
        push(story, day)
        if isinstance(step, Spawn):
            push(step.story, day)
        else:
            yield day, step


def _village_code(regency: str, index: int) -> str:
    district = index % DISTRICTS + 1
    return f"{regency}{district:02d}{2001 + index // DISTRICTS:04d}"


def generate(plan: RegencyPlan) -> Iterator[tuple[str, CloudEvent[Event]]]:
    """The plan's events as (subject, envelope), in stream order, at most ``plan.events``.

    Each is stamped on its publish day from 08:00 local, one second apart, and gets a UUIDv7
    id made of that time and the seed.
    """
    ids = random.Random(plan.seed ^ 0x5EED)
    today, second = date.min, 0
    for count, (day, step) in enumerate(planned(plan)):
        if count >= plan.events:
            return
        if day != today:
            today, second = day, 0
        second += 1
        when = (
            datetime(day.year, day.month, day.day, tzinfo=UTC)
            + _DAY_OPENS
            + timedelta(seconds=min(second, 50_000))
        )
        event = new_event(step.data, regency=plan.regency, id=_uuid7(ids, when), time=when)
        yield subject_for(event, plan.regency, clinic_id=step.clinic_id), event


def _uuid7(rng: random.Random, when: datetime) -> uuid.UUID:
    millis = int(when.timestamp() * 1000)
    rand_a, rand_b = rng.getrandbits(12), rng.getrandbits(62)
    return uuid.UUID(int=(millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b)


Message = tuple[str, str, bytes]
"""What is published: subject, event id (the ``Nats-Msg-Id``) and body."""


def write_lines(
    events: Iterable[tuple[str, CloudEvent[Event]]], path: Path, *, progress: EventProgress | None = None
) -> int:
    """Write ``{"subject": …, "event": …}`` lines to ``path``; how many were written."""
    written = 0
    with path.open("wb") as out:
        for subject, event in events:
            out.write(b'{"subject":"%s","event":%s}\n' % (subject.encode(), event.to_json()))
            written += 1
            if progress is not None and written % 1000 == 0:
                progress.advance(1000)
    if progress is not None:
        progress.advance(written % 1000)
    return written


def read_lines(path: Path) -> Iterator[Message]:
    """The messages of a file :func:`write_lines` wrote, in order."""
    with path.open("rb") as lines:
        for line in lines:
            record = json.loads(line)
            body = json.dumps(record["event"], separators=(",", ":"), ensure_ascii=False).encode()
            yield record["subject"], record["event"]["id"], body


def messages(events: Iterable[tuple[str, CloudEvent[Event]]]) -> Iterator[Message]:
    """The message of each generated event."""
    for subject, event in events:
        yield subject, str(event.id), event.to_json()


async def publish(
    nats_url: str,
    regency: str,
    chunks: AsyncIterable[Sequence[Message]],
    *,
    progress: EventProgress | None = None,
    in_flight: int = IN_FLIGHT,
) -> int:
    """Publish chunks of messages to the regency's stream, creating it if it is missing, with
    ``Nats-Msg-Id`` = the event's id and ``in_flight`` acks awaited at once. Returns how
    many were stored (JetStream drops the duplicates of ids it saw in its window)."""
    nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=3)
    try:
        js = nc.jetstream(publish_async_max_pending=in_flight)
        await _ensure_stream(js, regency)
        failures: list[BaseException] = []
        stored = 0

        def acked(future: asyncio.Future[object]) -> None:
            nonlocal stored
            if future.cancelled() or future.exception() is not None:
                failures.append(future.exception() or asyncio.CancelledError())
            elif not getattr(future.result(), "duplicate", False):
                stored += 1

        async for chunk in chunks:
            for subject, event_id, body in chunk:
                future = await js.publish_async(subject, body, headers={"Nats-Msg-Id": event_id})
                future.add_done_callback(acked)
            if failures:
                raise RuntimeError(f"publish to {stream_name(regency)} failed: {failures[0]!r}")
            if progress is not None:
                progress.advance(len(chunk))
        await asyncio.wait_for(js.publish_async_completed(), timeout=60)
        if failures:
            raise RuntimeError(f"publish to {stream_name(regency)} failed: {failures[0]!r}")
        return stored
    finally:
        await nc.close()


async def chunked(outgoing: Iterable[Message], size: int = CHUNK) -> AsyncIterator[list[Message]]:
    """``outgoing`` in chunks of ``size``, made in this process."""
    chunk: list[Message] = []
    for message in outgoing:
        chunk.append(message)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def made_elsewhere(plan: RegencyPlan) -> AsyncIterator[list[Message]]:
    """The plan's messages in chunks, made by a child process while this one publishes (each
    side takes about one core at 10^6 events)."""
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[list[Message] | None] = context.Queue(maxsize=32)
    maker = context.Process(target=_make, args=(plan, queue), daemon=True)
    maker.start()
    loop = asyncio.get_running_loop()
    try:
        while (chunk := await loop.run_in_executor(None, queue.get)) is not None:
            yield chunk
    finally:
        maker.join(timeout=5)
        if maker.is_alive():
            maker.terminate()
    if maker.exitcode not in (0, None):
        raise RuntimeError(f"the generating process failed (exit code {maker.exitcode})")


def _make(plan: RegencyPlan, queue: multiprocessing.Queue[list[Message] | None]) -> None:
    chunk: list[Message] = []
    for message in messages(generate(plan)):
        chunk.append(message)
        if len(chunk) == CHUNK:
            queue.put(chunk)
            chunk = []
    queue.put(chunk)
    queue.put(None)


async def _ensure_stream(js: nats.js.JetStreamContext, regency: str) -> None:
    try:
        await js.stream_info(stream_name(regency))
    except NotFoundError:
        await js.add_stream(regency_stream_config(regency, StreamLimits(max_bytes=BENCH_STREAM_BYTES)))


def main(argv: list[str] | None = None) -> int:
    """Generate; print what was made as a table line and a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--regency", default="3301")
    parser.add_argument("--nats", help="publish into the regency's stream on this server")
    parser.add_argument("--out", type=Path, help="write JSON lines to this file instead")
    parser.add_argument("--units", type=int, help="how many units (default: as many as --events needs)")
    parser.add_argument("--months", type=int, default=36, help="how many months of history (default 36)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--end", type=date.fromisoformat, help="the last day told (default: yesterday)")
    args = parser.parse_args(argv)
    if (args.nats is None) == (args.out is None):
        parser.error("say where the events go: --nats URL or --out FILE")
    plan = plan_for(
        args.regency, args.events, months=args.months, seed=args.seed, units=args.units, end=args.end
    )
    print(
        f"regency {plan.regency}: {plan.units} units, {plan.start} to {plan.end}, seed {plan.seed}",
        file=sys.stderr,
    )
    started = time.perf_counter()
    with EventProgress("generate", plan.events) as progress:
        if args.out is not None:
            stored = write_lines(generate(plan), args.out, progress=progress)
        else:
            stored = asyncio.run(publish(args.nats, plan.regency, made_elsewhere(plan), progress=progress))
    elapsed = time.perf_counter() - started
    target = str(args.out) if args.out else f"{args.nats} {stream_name(plan.regency)}"
    print(f"{'events':>10} {'units':>6} {'seconds':>8} {'events/s':>9}  into")
    print(f"{stored:>10,} {plan.units:>6} {elapsed:>8.1f} {stored / elapsed:>9,.0f}  {target}")
    print(
        json.dumps(
            {
                "bench": "generate_regency",
                "events": stored,
                "units": plan.units,
                "months": plan.months,
                "seed": plan.seed,
                "seconds": round(elapsed, 2),
                "events_per_s": round(stored / elapsed),
                "into": target,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
