"""Fixtures for rehab's API tests: the real app on a real store and a manual clock; NATS is
down, so the events it emits wait in the outbox where the tests read them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from rehab_factories import Rehab

from pulih.kit.nats_server import free_port
from pulih.kit.testing import make_settings
from pulih.rehab.app import build


@pytest.fixture
async def rehab(tmp_path: Path, database_url: str) -> AsyncIterator[Rehab]:
    """Rehab on SQLite and on PostgreSQL, its clock standing on Monday 2 March 2026."""
    settings = make_settings(
        tmp_path,
        nats_url=f"nats://127.0.0.1:{free_port()}",
        database_url=database_url,
        PULIH_CLOCK="manual",
        PULIH_CLOCK_START="2026-03-02",
    )
    app = build(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rehab") as http,
    ):
        yield Rehab(http, app)
