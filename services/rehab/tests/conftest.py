"""Fixtures for rehab's API tests: the real app on a real store and a manual clock; NATS is
down, so the events it emits wait in the outbox where the tests read them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rehab_factories import MONDAY, Rehab

from pulih.kit.testing import service_app
from pulih.rehab.app import build


@pytest.fixture
async def rehab(tmp_path: Path, database_url: str) -> AsyncIterator[Rehab]:
    """Rehab on SQLite and on PostgreSQL, its clock standing on Monday 2 March 2026."""
    async with service_app(
        build, tmp_path, database_url, PULIH_CLOCK="manual", PULIH_CLOCK_START=MONDAY.isoformat()
    ) as (http, app):
        yield Rehab(http, app)
