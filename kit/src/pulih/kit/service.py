"""Building a Pulih service: one FastAPI app with its store, broker, relay and consumers.

A service describes itself with a :class:`ServiceSpec`; :func:`create_app` wires the rest. Its
own dependencies (programme, vault, HTTP clients) are built first, so a bad programme file stops
the service at start with a message that names it, not at the first request. The
API starts even when NATS is down: commands keep landing in the outbox, and the broker, the
stream, the consumers and the relay come up as soon as NATS answers.

A service outside a regency (the national view, on the hub) declares or waits for its own
streams (``ServiceSpec.streams``) instead of the regency's, and one that publishes nothing
through an outbox (``publishes=False``) runs no relay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from faststream.nats import NatsBroker

from pulih.kit import idempotency
from pulih.kit.api_docs import install_docs
from pulih.kit.auth import scope_of
from pulih.kit.clock import clock_from
from pulih.kit.clock_api import router as clock_router
from pulih.kit.consumers import refresh_durables
from pulih.kit.database import Database
from pulih.kit.emitter import Emitter
from pulih.kit.errors import install_error_handlers
from pulih.kit.health import router as health_router
from pulih.kit.heap import settle_heap
from pulih.kit.limits import BodyLimit
from pulih.kit.messaging import (
    StreamLimits,
    ensure_regency_stream,
    make_broker,
    nats_tls,
    stream_publisher,
    without_password,
)
from pulih.kit.metrics import install_metrics
from pulih.kit.migrations import upgrade_to_head
from pulih.kit.openapi import install_openapi, operation_id
from pulih.kit.outbox import OutboxRelay
from pulih.kit.relay_lease import relay_lease_for
from pulih.kit.request_trace import spans_only_when_collected
from pulih.kit.runtime import NoDeps, ServiceDeps, ServiceRuntime
from pulih.kit.settings import Settings
from pulih.kit.telemetry import instrument_app, setup_logging, setup_tracing

log = logging.getLogger("pulih.service")

Subscribe = Callable[[ServiceRuntime, NatsBroker], None]
Background = Callable[[ServiceRuntime], "asyncio.Task[None]"]
Dependencies = Callable[[Settings], ServiceDeps]
Streams = Callable[[NatsBroker, ServiceRuntime], Awaitable[None]]
"""Declares, or checks, the streams a service uses once connected; raising retries the connection."""


class StartupError(RuntimeError):
    """The service cannot start with its configuration (the message says what to fix)."""


def _no_deps(_: Settings) -> ServiceDeps:
    return NoDeps()


@dataclass(frozen=True)
class ServiceSpec:
    """What makes one service: its name, port, routes, migrations, dependencies and consumers."""

    name: str
    port: int
    title: str
    description: str
    migrations: Path
    routers: Sequence[APIRouter]
    dependencies: Dependencies = _no_deps
    subscribe: Subscribe | None = None
    background: Sequence[Background] = field(default_factory=tuple)
    version: str = "1.0.0"
    streams: Streams | None = None
    """Instead of the regency's stream: what the service declares or waits for on connecting
    (its consumers' durables then refresh themselves: none is on the regency stream)."""
    publishes: bool = True
    """False: the service emits nothing through an outbox, and runs no relay."""


async def _connect_when_possible(
    runtime: ServiceRuntime, broker: NatsBroker, streams: Streams | None = None
) -> None:
    delay = 0.5
    while True:
        try:
            await broker.connect()
            if streams is None:
                await ensure_regency_stream(
                    broker, runtime.settings.regency, StreamLimits.from_settings(runtime.settings)
                )
                await refresh_durables(broker, runtime)
            else:
                await streams(broker, runtime)
            await broker.start()
            for consumer in runtime.batch_consumers:
                await consumer.start()
            break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "NATS at %s not ready (%s); retrying in %.1fs",
                without_password(runtime.settings.nats_url),
                exc,
                delay,
            )
            for consumer in runtime.batch_consumers:
                await consumer.stop()
            with suppress(Exception):
                await broker.stop()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    log.info("connected to NATS at %s", without_password(runtime.settings.nats_url))
    runtime.broker = broker
    if runtime.relay is not None:
        runtime.relay.start()


def _connected(broker: NatsBroker) -> bool:
    """Whether the broker holds a live connection (the relay's backoff ends when it does)."""
    try:
        return bool(broker.connection.is_connected)
    except Exception:
        return False


async def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait until it has ended. nats-py can swallow a cancel that lands while
    it opens its first connection, so the cancel is repeated until the task really stops."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
    with suppress(asyncio.CancelledError, Exception):
        task.result()


def create_app(spec: ServiceSpec, settings: Settings | None = None) -> FastAPI:
    """The service's ASGI app; its lifespan migrates the store and starts messaging."""
    settings = settings or Settings()
    setup_logging(spec.name, scope_of(settings))
    setup_tracing(spec.name, scope_of(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            deps = spec.dependencies(settings)
        except (ValueError, OSError) as exc:
            log.error("%s cannot start: %s", spec.name, exc)
            raise StartupError(f"{spec.name} cannot start: {exc}") from exc
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        database = Database(settings.database_url_for(spec.name))
        await upgrade_to_head(database, spec.migrations)
        broker = make_broker(
            settings.nats_url, name=f"pulih-{settings.regency}-{spec.name}", tls=nats_tls(settings)
        )
        runtime = ServiceRuntime(
            spec.name,
            settings,
            database,
            Emitter(settings.regency),
            deps=deps,
            clock=clock_from(settings.clock, settings.timezone, settings.clock_start),
        )
        relay: OutboxRelay | None = None
        if spec.publishes:
            relay = OutboxRelay(
                database,
                stream_publisher(broker, settings.regency),
                batch_size=settings.relay_batch_size,
                poll_seconds=settings.relay_poll_seconds,
                ready=lambda: _connected(broker),
                lease=relay_lease_for(database, spec.name),  # one publishing replica per store
            )
            runtime.relay = relay
            runtime.emitter = Emitter(settings.regency, wake=relay.wake)
        if spec.subscribe is not None:
            spec.subscribe(runtime, broker)
        app.state.runtime = runtime
        connecting = asyncio.create_task(_connect_when_possible(runtime, broker, spec.streams))
        tasks = [make(runtime) for make in spec.background]
        settle_heap()
        try:
            yield
        finally:
            for task in [connecting, *tasks]:
                await _cancel(task)
            if relay is not None:
                await relay.stop()
            for consumer in runtime.batch_consumers:
                await consumer.stop()
            with suppress(Exception):
                await broker.stop()
            await deps.aclose()
            await database.dispose()

    app = FastAPI(
        title=spec.title,
        description=spec.description,
        version=spec.version,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        docs_url=None,  # FastAPI's page loads Swagger UI from a CDN; install_docs serves it here
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_openapi(app)
    install_docs(app)
    app.add_middleware(BodyLimit, max_bytes=int(settings.max_body_bytes))

    async def _replay(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, idempotency.Replay)
        return JSONResponse(
            exc.answer.body,
            status_code=exc.answer.status_code,
            headers={"Idempotent-Replayed": "true"},
        )

    app.add_exception_handler(idempotency.Replay, _replay)
    app.include_router(health_router)
    app.include_router(clock_router)
    for router in spec.routers:
        app.include_router(router)
    install_metrics(app, spec.name, scope_of(settings), spec.version)
    instrument_app(app)
    spans_only_when_collected(app)  # no span built per request when none is collected
    return app
