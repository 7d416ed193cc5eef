"""Pytest fixtures for Pulih's tests: real ``nats-server`` processes and real databases.

Loaded with ``pytest_plugins = ["pulih.kit.testing"]``. PostgreSQL tests use a fresh schema in
the database named by ``PULIH_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``)
and are skipped, with a message saying so, when it is not reachable.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from pulih.contracts import CloudEvent, Event, new_event, subject_for
from pulih.kit.auth import Role, issue_token
from pulih.kit.consumers import Delivery, EventHandler
from pulih.kit.nats_server import NatsServer, free_port
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.settings import Settings

T = TypeVar("T")

POSTGRES_URL = os.environ.get("PULIH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REGENCY = "3301"
JWT_SECRET = "pulih-test-secret-of-at-least-32-bytes"


async def eventually(
    probe: Callable[[], Awaitable[T]], *, until: Callable[[T], bool] = bool, timeout: float = 10.0
) -> T:
    """Poll ``probe`` until ``until(result)`` holds or the deadline passes (then fail)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout}s; last value: {result!r}")
        await asyncio.sleep(0.05)


def _postgres_reachable() -> str | None:
    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=2)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


_pg_problem: list[str | None] = []


def postgres_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new, empty schema (dropped afterwards)."""
    if not _pg_problem:
        _pg_problem.append(_postgres_reachable())
    if _pg_problem[0] is not None:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL} ({_pg_problem[0]}); set PULIH_TEST_POSTGRES")
    import asyncpg

    schema = f"pulih_test_{uuid.uuid4().hex[:12]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE SCHEMA "{schema}"'))
    base = POSTGRES_URL.replace("postgresql://", "postgresql+asyncpg://", 1)
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}search_path={schema}"
    finally:
        asyncio.run(run(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    else:
        yield from postgres_schema_url()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A fresh ``nats-server`` with JetStream on a free port, its store in the test's tmp dir."""
    server = NatsServer(tmp_path / "nats", server_name="pulih-test", domain=f"r{REGENCY}").start()
    try:
        yield server
    finally:
        server.stop()


def make_settings(
    tmp_path: Path, *, nats_url: str, database_url: str | None = None, **extra: Any
) -> Settings:
    """Settings for one service in a test: its own data dir, NATS and store."""
    values: dict[str, Any] = {
        "PULIH_ENV": "development",
        "PULIH_REGENCY": REGENCY,
        "PULIH_DATA_DIR": tmp_path,
        "NATS_URL": nats_url,
        "DATABASE_URL": database_url,
        "PULIH_JWT_SECRET": JWT_SECRET,
        "PULIH_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "PULIH_RELAY_POLL_SECONDS": 0.2,
        "PULIH_PROGRAMME_FILE": None,
        "PULIH_MAX_DELIVER": 4,
        "PULIH_ACK_WAIT_SECONDS": 2,
    }
    values.update(extra)
    return Settings(**values)


def token(
    role: Role | str,
    *,
    unit_id: uuid.UUID | None = None,
    clinic_id: str | None = None,
    sub: str | None = None,
) -> str:
    """A test token for ``role`` in the test regency."""
    return issue_token(
        JWT_SECRET,
        sub=sub or f"{role}-test",
        role=role,
        regency=REGENCY,
        unit_id=unit_id,
        clinic_id=clinic_id,
    )


def auth(role: Role | str, **claims: Any) -> dict[str, str]:
    """An Authorization header for ``role``."""
    return {"Authorization": f"Bearer {token(role, **claims)}"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def serve(app: FastAPI, base_url: str = "http://service") -> AsyncIterator[httpx.AsyncClient]:
    """Run an app's lifespan (store, broker, relay, consumers, jobs) and talk to its API."""
    from asgi_lifespan import LifespanManager

    async with (
        LifespanManager(app, startup_timeout=30, shutdown_timeout=30),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url) as http,
    ):
        yield http


def kit_app(tmp_path: Path, description: str, *routers: APIRouter, **settings: Any) -> FastAPI:
    """A service of the kit alone (``things``, its ``routers`` and what every service has: errors,
    docs, metrics), for the kit's own tests; not started, NATS not running."""
    from pulih.kit.service import ServiceSpec, create_app

    spec = ServiceSpec(
        name="things",
        port=8199,
        title="Things",
        description=description,
        migrations=tmp_path,
        routers=routers,
    )
    return create_app(spec, make_settings(tmp_path, nats_url="nats://127.0.0.1:1", **settings))


@asynccontextmanager
async def asgi_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that calls ``app`` in this process, without starting it (no lifespan)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://things") as client:
        yield client


@asynccontextmanager
async def service_app(
    build: Callable[[Settings], FastAPI], tmp_path: Path, database_url: str, **settings: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """A service's real app on a real store for its API tests. NATS is not running (a free port
    nobody listens on), so the events it emits wait in the outbox, where tests read them."""
    app = build(
        make_settings(
            tmp_path, nats_url=f"nats://127.0.0.1:{free_port()}", database_url=database_url, **settings
        )
    )
    async with serve(app) as http:
        yield http, app


async def apply_events(
    runtime: ServiceRuntime,
    handlers: Mapping[type[Event], EventHandler],
    *events: Event | CloudEvent[Any],
    clinic_id: str | None = None,
) -> list[CloudEvent[Any]]:
    """Apply events as the service's consumer would (one unit of work each, caused by the event),
    without a broker; returns the envelopes applied. ``clinic_id`` names the clinic that sent
    clinic events (it is part of their subject)."""
    applied: list[CloudEvent[Any]] = []
    for item in events:
        envelope = item if isinstance(item, CloudEvent) else new_event(item, regency=runtime.settings.regency)
        handler = handlers.get(type(envelope.data))
        if handler is None:
            continue
        delivery = Delivery(subject_for(envelope, runtime.settings.regency, clinic_id=clinic_id), 0, 1)
        async with runtime.unit_of_work(caused_by=envelope) as uow:
            await handler(uow, envelope, delivery)
        applied.append(envelope)
    return applied
