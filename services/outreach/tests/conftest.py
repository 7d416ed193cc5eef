"""Fixtures for outreach's API tests: the real app on a real store, NATS not running."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from outreach_factories import Outreach

from pulih.kit.nats_server import free_port
from pulih.kit.testing import make_settings
from pulih.outreach.app import build


@pytest.fixture
async def outreach(tmp_path: Path, database_url: str) -> AsyncIterator[Outreach]:
    """Outreach on SQLite and on PostgreSQL; NATS is down, so events wait in the outbox."""
    settings = make_settings(tmp_path, nats_url=f"nats://127.0.0.1:{free_port()}", database_url=database_url)
    app = build(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://outreach") as http,
    ):
        yield Outreach(http, app)
