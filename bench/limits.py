"""The limits: what raw nats-py gets out of the same nats-server, with nothing of Pulih's in the way.

- **publish, sequential**: one ``js.publish`` at a time, each awaiting its PubAck (what the old
  relay did per row);
- **publish, 256 in flight**: publishes gathered 256 at a time (the most a pipelining relay gets);
- **pull-consume with acks**: a durable pull consumer fetching 256 at a time and acking each;
- **publish → consume latency** at a fixed offered load (200 messages/s, open loop): from the
  moment a publish was due to the moment a pull consumer (``fetch(1)``) holds it.

Every message is a real Pulih event (a ``ClientScreened`` in its CloudEvents envelope, about
800 bytes) with a ``Nats-Msg-Id``, on a stream configured like a regency's (file storage, the
same duplicate window and limits) but of its own (``BENCH_LIMITS``, subjects ``bench.limits.>``),
so the limits can be measured on a running regency's server without its consumers seeing them.

    .venv/bin/python bench/limits.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import tempfile
import time
import uuid
from collections.abc import Awaitable, Iterator
from datetime import date
from pathlib import Path

import nats
from figures import Figure, figure, percentile, print_figures
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError

from pulih.contracts import Event, new_event
from pulih.contracts.events.outreach import ClientRegistered, ClientScreened, ConsentRecorded
from pulih.kit.messaging import regency_stream_config
from pulih.kit.nats_server import NatsServer

STREAM = "BENCH_LIMITS"
SUBJECT = "bench.limits.outreach.client_screened"
IN_FLIGHT = 256
FETCH = 256


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How many messages each measurement sends."""

    sequential: int = 3_000
    pipelined: int = 30_000
    latency_seconds: float = 10.0
    latency_rate: float = 200.0


FULL = Sizes()
QUICK = Sizes(sequential=200, pipelined=1_000, latency_seconds=1.0)


def client_events(unit_id: uuid.UUID, agent_id: uuid.UUID) -> list[Event]:
    """A registration, a consent and a screening of one new client: outreach's commonest events
    (the benchmarks' backlogs are made of them)."""
    client_id = uuid.uuid4()
    return [
        ClientRegistered.model_validate(
            {
                "client_id": client_id,
                "unit_id": unit_id,
                "registered_on": "2026-02-01",
                "sex": "f",
                "age_band": "25_34",
                "came_through": "outreach",
            }
        ),
        ConsentRecorded(
            consent_id=uuid.uuid4(), client_id=client_id, scopes=["programme"], given_on=date(2026, 2, 1)
        ),
        ClientScreened.model_validate(
            {
                "screening_id": uuid.uuid4(),
                "client_id": client_id,
                "unit_id": unit_id,
                "agent_id": agent_id,
                "screened_on": "2026-02-02",
                "instrument": "assist_v3",
                "substances": [{"substance": "cannabis", "score": 12, "risk": "moderate"}],
                "injected_last_3_months": False,
                "overall_risk": "moderate",
                "recommendation": "ibm_programme",
            }
        ),
    ]


def event_payload() -> bytes:
    """A ``ClientScreened`` as the relay publishes it (envelope and all)."""
    screened = client_events(uuid.uuid4(), uuid.uuid4())[-1]
    return new_event(screened, regency="3301").to_json()


async def fresh_stream(js: JetStreamContext) -> None:
    """``BENCH_LIMITS``, empty, configured like a regency's stream."""
    with contextlib.suppress(NotFoundError):
        await js.delete_stream(STREAM)
    config = dataclasses.replace(
        regency_stream_config("3301"),
        name=STREAM,
        subjects=["bench.limits.>"],
        description="raw nats-py limits of the benchmarks",
    )
    await js.add_stream(config)


async def publish_rate(js: JetStreamContext, count: int, in_flight: int) -> float:
    """Messages/s published (and PubAcked) with ``in_flight`` publishes outstanding at most."""
    payload = event_payload()
    ids = [str(uuid.uuid4()) for _ in range(count)]
    started = time.perf_counter()
    if in_flight == 1:
        for msg_id in ids:
            await js.publish(SUBJECT, payload, headers={"Nats-Msg-Id": msg_id})
    else:
        for start in range(0, count, in_flight):
            window: list[Awaitable[object]] = [
                js.publish(SUBJECT, payload, headers={"Nats-Msg-Id": msg_id})
                for msg_id in ids[start : start + in_flight]
            ]
            await asyncio.gather(*window)
    return count / (time.perf_counter() - started)


async def fetch_and_ack(
    subscription: JetStreamContext.PullSubscription, count: int, batch: int, *, timeout: float
) -> tuple[int, int]:
    """Fetch ``batch`` messages at a time from ``subscription`` and ack each, nothing else, until
    ``count`` are acked: the raw pull consumer every consumer benchmark measures itself against.
    Returns the messages acked and the fetches that brought any."""
    done, fetches = 0, 0
    while done < count:
        try:
            messages = await subscription.fetch(batch, timeout=timeout)
        except TimeoutError:
            continue
        for message in messages:
            await message.ack()
        done += len(messages)
        fetches += 1
    return done, fetches


async def consume_rate(js: JetStreamContext, count: int) -> float:
    """Messages/s fetched (``FETCH`` at a time) and acked by a new durable, until its ack floor is
    the stream's last message."""
    info = await js.stream_info(STREAM)
    last = info.state.last_seq
    config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=FETCH * 4)
    started = time.perf_counter()
    subscription = await js.pull_subscribe(SUBJECT, durable="bench-raw-pull", stream=STREAM, config=config)
    done, _ = await fetch_and_ack(subscription, count, FETCH, timeout=1)
    while True:  # acks are fire-and-forget: the figure ends when the server has them all
        consumer = await js.consumer_info(STREAM, "bench-raw-pull")
        if consumer.ack_floor.stream_seq >= last:
            break
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    await subscription.unsubscribe()
    return done / elapsed


async def latency_at_rate(js: JetStreamContext, rate: float, seconds: float) -> list[float]:
    """Milliseconds from each publish's due time to its arrival at a pull consumer, with publishes
    started on a fixed schedule (``rate`` a second for ``seconds``)."""
    count = max(1, int(rate * seconds))
    payload = event_payload()
    due: dict[str, float] = {}
    latencies: list[float] = []
    config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT)
    subscription = await js.pull_subscribe(
        "bench.limits.latency", durable="bench-raw-latency", stream=STREAM, config=config
    )

    async def consume() -> None:
        while len(latencies) < count:
            try:
                [message] = await subscription.fetch(1, timeout=1)
            except TimeoutError:
                continue
            arrived = time.perf_counter()
            await message.ack()
            msg_id = (message.headers or {}).get("Nats-Msg-Id", "")
            latencies.append((arrived - due[msg_id]) * 1000)

    async def publish(msg_id: str) -> None:
        await js.publish("bench.limits.latency", payload, headers={"Nats-Msg-Id": msg_id})

    consumer = asyncio.create_task(consume())
    publishes: list[asyncio.Task[None]] = []
    started = time.perf_counter()
    for i in range(count):
        when = started + i / rate
        await asyncio.sleep(max(0.0, when - time.perf_counter()))
        msg_id = str(uuid.uuid4())
        due[msg_id] = when
        publishes.append(asyncio.create_task(publish(msg_id)))
    await asyncio.gather(*publishes)
    await asyncio.wait_for(consumer, 30)
    await subscription.unsubscribe()
    return latencies


@contextlib.contextmanager
def nats_server_at(nats_url: str | None, prefix: str = "pulih-bench-") -> Iterator[str]:
    """The URL of the server at ``nats_url`` or, when that is ``None``, of a fresh one of our own
    (regency 3301's domain, its store in a temporary directory named ``prefix…``), stopped on exit."""
    if nats_url is not None:
        yield nats_url
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        server = NatsServer(Path(tmp) / "nats", domain="r3301").start()
        try:
            yield server.url
        finally:
            server.stop()


async def measure(quick: bool = False, nats_url: str | None = None) -> list[Figure]:
    """The limits, on the server at ``nats_url`` or, by default, on a fresh one of our own."""
    with nats_server_at(nats_url) as url:
        return await _measure(url, QUICK if quick else FULL)


async def raw_pipeline_limit(nats_url: str, quick: bool = False) -> tuple[float, float]:
    """(publish with 256 in flight, pull-consume with acks), messages/s: what a pipeline of
    publish, stream and consumer could at best move, on the server at ``nats_url``."""
    count = (QUICK if quick else FULL).pipelined
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await fresh_stream(js)
        published = await publish_rate(js, count, IN_FLIGHT)
        consumed = await consume_rate(js, count)
        await js.delete_stream(STREAM)
        return published, consumed
    finally:
        await nc.close()


async def raw_latency(nats_url: str, rate: float, seconds: float) -> list[float]:
    """:func:`latency_at_rate` on the server at ``nats_url`` (its own stream, deleted after)."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await fresh_stream(js)
        latencies = await latency_at_rate(js, rate, seconds)
        await js.delete_stream(STREAM)
        return latencies
    finally:
        await nc.close()


async def _measure(nats_url: str, sizes: Sizes) -> list[Figure]:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await fresh_stream(js)
        sequential = await publish_rate(js, sizes.sequential, 1)
        await fresh_stream(js)
        pipelined = await publish_rate(js, sizes.pipelined, IN_FLIGHT)
        consumed = await consume_rate(js, sizes.pipelined)
        await fresh_stream(js)
        latencies = await latency_at_rate(js, sizes.latency_rate, sizes.latency_seconds)
        await js.delete_stream(STREAM)
    finally:
        await nc.close()
    rate = f"{sizes.latency_rate:g}/s"
    return [
        figure("limits.publish_sequential", sequential, "events/s", digits=0,
               note="raw nats-py js.publish, one PubAck awaited at a time"),
        figure(f"limits.publish_{IN_FLIGHT}_in_flight", pipelined, "events/s", digits=0,
               note=f"raw nats-py js.publish, {IN_FLIGHT} gathered at a time"),
        figure("limits.pull_consume_ack", consumed, "events/s", digits=0,
               note=f"raw nats-py pull consumer, fetch {FETCH}, ack each"),
        figure("limits.latency_p50_ms", percentile(latencies, 0.5), "ms", digits=2,
               note=f"raw publish due → pull consumer holds it, at {rate}"),
        figure("limits.latency_p99_ms", percentile(latencies, 0.99), "ms", digits=2),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few hundred messages (a smoke test)")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    args = parser.parse_args()
    print_figures(asyncio.run(measure(args.quick)), as_json=args.json)


if __name__ == "__main__":
    main()
