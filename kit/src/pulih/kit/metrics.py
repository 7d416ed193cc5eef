"""``/metrics``: what a Pulih service is doing, in Prometheus's text format (prometheus-client).

Every service answers ``GET /metrics`` without a token. It names routes by their template
(``/v1/clients/{client_id}``), consumers by their durable and outcomes by a word: no identity,
no id and no query string is ever a label. Families:

- ``pulih_http_requests_total{method,route,status}`` and
  ``pulih_http_request_duration_seconds{method,route}``: request rate, errors (``status`` 4xx and
  5xx) and latency by route; a path no route matches is ``route="unmatched"``.
- ``pulih_outbox_backlog``: outbox rows waiting to be published; ``pulih_outbox_published_total``
  and ``pulih_outbox_relay_failures_total`` since the process started (read from the relay).
- ``pulih_consumer_pending{consumer}``: events of the stream the durable has not had yet, and
  ``pulih_consumer_ack_pending{consumer}`` those delivered and not yet acknowledged (JetStream's
  consumer info, asked at each scrape); ``pulih_consumer_paused{consumer}``: 1 while a consumer
  waits for its failing store.
- ``pulih_consumer_events_total{consumer,outcome}``: events ``applied`` or ``dead_lettered``
  since the process started. A consumer is named ``<service>.<durable>`` (``rehab.outreach-events``)
  in every family.
- ``pulih_identity_reads_total{outcome}``: attempts to read an identity, ``granted``, ``denied``,
  ``erased`` or ``unavailable`` (outreach and referral audit every one).
- ``pulih_service_info{service,regency,version}``.

One process per service, one worker each: the relay, the consumers and the periodic jobs run once
per process, and a service scales by running more processes (each scraped on its own address),
so prometheus-client's multiprocess mode is not needed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pulih.contracts import stream_name

if TYPE_CHECKING:
    from pulih.kit.runtime import ServiceRuntime

log = logging.getLogger("pulih.metrics")
access_log = logging.getLogger("pulih.access")

METRICS_PATH = "/metrics"
QUIET_PATHS = frozenset({"/healthz", "/readyz", METRICS_PATH})
"""Probes and scrapes: counted, but their access lines are DEBUG (they come every few seconds)."""
UNMATCHED = "unmatched"
READ_TIMEOUT = 2.0
"""The longest a scrape waits for the store or JetStream before leaving a family out."""

IDENTITY_READS = Counter(
    "pulih_identity_reads",
    "Attempts to read a client's identity, by outcome (granted, denied, erased, unavailable)",
    ["outcome"],
    registry=None,
)
"""Counted by :func:`pulih.kit.audit.audit`, which writes every attempt."""

CONSUMED = Counter(
    "pulih_consumer_events",
    "Events a consumer applied or dead-lettered, by consumer and outcome",
    ["consumer", "outcome"],
    registry=None,
)
"""Counted by the consumers (:mod:`pulih.kit.batch_consumer`, :mod:`pulih.kit.consumers`)."""

IDENTITY_OUTCOMES = ("granted", "denied", "erased", "unavailable")
CONSUMER_OUTCOMES = ("applied", "dead_lettered")
"""Every label value the two counters above take, each shown from 0 before its first count: a
series that appears at 1 is missed by ``increase()``, and so would be the first dead letter."""

PROCESS_METRICS = (IDENTITY_READS, CONSUMED)
"""Metrics of the whole process, counted where it happens; every app's registry shows them."""


def route_of(scope: Scope) -> str:
    """The template of the route that answered (``/v1/clients/{client_id}``), never a raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class HttpMetrics:
    """An ASGI middleware that counts and times every request by route and writes its access line:
    method, route template, status and duration (never the query string)."""

    def __init__(self, app: ASGIApp, requests: Counter, durations: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.durations = durations
        # The children of each label set, looked up once: ``labels()`` checks and joins the
        # values and takes the family's lock on every call. Routes and statuses are few.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; count it once the answer is sent or the app has raised."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        method = str(scope.get("method", ""))
        route = route_of(scope)
        children = self._children.get((method, route, status))
        if children is None:
            counted = self.requests.labels(method, route, str(status))
            children = self._children[method, route, status] = (counted, self.durations.labels(method, route))
        children[0].inc()
        children[1].observe(seconds)
        level = logging.DEBUG if scope.get("path") in QUIET_PATHS else logging.INFO
        duration_ms = round(seconds * 1000, 1)
        access_log.log(
            level,
            "%s %s %d %.1fms",
            method,
            route,
            status,
            duration_ms,
            extra={"method": method, "route": route, "status": status, "duration_ms": duration_ms},
        )


class RuntimeReadings(Collector):
    """The families read from the running service at each scrape (outbox, consumers): gathered
    by :meth:`read` (they need the store and JetStream), then given to the registry."""

    def __init__(self) -> None:
        self.families: list[Metric] = []

    def collect(self) -> Iterable[Metric]:
        """The families of the last :meth:`read`."""
        return list(self.families)

    async def read(self, runtime: ServiceRuntime | None) -> None:
        """Read the outbox and the consumers of ``runtime`` (nothing before the service started)."""
        families: list[Metric] = []
        if runtime is not None:
            families.extend(await _outbox_families(runtime))
            families.extend(await _consumer_families(runtime))
        self.families = families


async def _outbox_families(runtime: ServiceRuntime) -> list[Metric]:
    relay = runtime.relay
    if relay is None:
        return []
    published = CounterMetricFamily(
        "pulih_outbox_published", "Outbox rows the relay published since the process started"
    )
    published.add_metric([], relay.stats.published)
    failures = CounterMetricFamily(
        "pulih_outbox_relay_failures", "Relay rounds that failed since the process started"
    )
    failures.add_metric([], relay.stats.failures)
    families: list[Metric] = [published, failures]
    try:
        waiting = await asyncio.wait_for(relay.backlog(), READ_TIMEOUT)
    except Exception as exc:  # a failing store leaves the family out; the scrape still answers
        log.debug("outbox backlog not read: %s", exc)
    else:
        backlog = GaugeMetricFamily("pulih_outbox_backlog", "Outbox rows waiting to be published")
        backlog.add_metric([], waiting)
        families.append(backlog)
    return families


def _durables_of(runtime: ServiceRuntime) -> Iterator[tuple[str, str, str]]:
    """(consumer name, stream, durable) of each durable consumer of ``runtime``: its batch
    consumers by their names (``rehab.outreach-events``, as their counts and dead letters say),
    any other durable of the regency stream by its durable's name."""
    seen: set[str] = set()
    for consumer in runtime.batch_consumers:
        seen.add(consumer.durable)
        yield consumer.name, consumer.stream, consumer.durable
    regency_stream = stream_name(runtime.settings.regency)
    for durable in runtime.durables:
        if durable not in seen:
            seen.add(durable)
            yield durable, regency_stream, durable


async def _consumer_families(runtime: ServiceRuntime) -> list[Metric]:
    durables = list(_durables_of(runtime))
    paused = GaugeMetricFamily(
        "pulih_consumer_paused", "1 while a consumer waits for its failing store", labels=["consumer"]
    )
    for name in sorted({name for name, _, _ in durables} | set(runtime.paused_consumers)):
        paused.add_metric([name], 1 if name in runtime.paused_consumers else 0)
        for outcome in CONSUMER_OUTCOMES:  # a series from 0, so that the first one counts in increase()
            CONSUMED.labels(name, outcome)
    families: list[Metric] = [paused]
    broker = runtime.broker
    if broker is None:
        return families
    try:
        js = broker.connection.jetstream()
    except Exception:  # not connected yet
        return families

    async def info(stream: str, durable: str) -> Any:
        return await asyncio.wait_for(js.consumer_info(stream, durable), READ_TIMEOUT)

    answers = await asyncio.gather(*(info(s, d) for _, s, d in durables), return_exceptions=True)
    pending = GaugeMetricFamily(
        "pulih_consumer_pending",
        "Events in the stream the durable consumer has not been given yet (its lag)",
        labels=["consumer"],
    )
    ack_pending = GaugeMetricFamily(
        "pulih_consumer_ack_pending",
        "Events given to the durable consumer and not yet acknowledged",
        labels=["consumer"],
    )
    for (name, _, _), answer in zip(durables, answers, strict=True):
        if isinstance(answer, BaseException):
            log.debug("consumer %s not read: %s", name, answer)
            continue
        pending.add_metric([name], answer.num_pending or 0)
        ack_pending.add_metric([name], answer.num_ack_pending or 0)
    return [*families, pending, ack_pending]


def install_metrics(app: FastAPI, service: str, regency: str, version: str) -> CollectorRegistry:
    """Count ``app``'s requests and answer ``GET /metrics`` (outside the API's schema, no token)."""
    registry = CollectorRegistry(auto_describe=True)
    requests = Counter(
        "pulih_http_requests",
        "HTTP requests answered, by method, route template and status",
        ["method", "route", "status"],
        registry=registry,
    )
    durations = Histogram(
        "pulih_http_request_duration_seconds",
        "Time to answer an HTTP request, by method and route template",
        ["method", "route"],
        registry=registry,
    )
    Info("pulih_service", "The service and the regency it serves", registry=registry).info(
        {"service": service, "regency": regency, "version": version}
    )
    for metric in PROCESS_METRICS:
        registry.register(metric)
    for outcome in IDENTITY_OUTCOMES:
        IDENTITY_READS.labels(outcome)
    readings = RuntimeReadings()
    registry.register(readings)

    async def metrics(request: Request) -> Response:
        await readings.read(getattr(request.app.state, "runtime", None))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_route(METRICS_PATH, metrics, methods=["GET"], include_in_schema=False)
    app.add_middleware(HttpMetrics, requests=requests, durations=durations)
    app.state.metrics = registry
    return registry
