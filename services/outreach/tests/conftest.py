"""Fixtures for outreach's API tests: the real app on a real store, NATS not running."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from outreach_factories import Outreach

from pulih.kit.testing import service_app
from pulih.outreach.app import build


@pytest.fixture
async def outreach(tmp_path: Path, database_url: str) -> AsyncIterator[Outreach]:
    """Outreach on SQLite and on PostgreSQL; NATS is down, so events wait in the outbox."""
    async with service_app(build, tmp_path, database_url) as (http, app):
        yield Outreach(http, app)
