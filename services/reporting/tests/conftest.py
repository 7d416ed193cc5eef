"""Fixtures for reporting's tests: a projection on a real store (SQLite and PostgreSQL) that tests
feed batches of events to, as the live consumer would, and read cells and rows from
(:mod:`reporting_projection`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from reporting_projection import MIGRATIONS, Projection

from pulih.kit.database import Database
from pulih.kit.migrations import upgrade_to_head
from pulih.reporting.store import LIVE, metadata


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Database]:
    """A reporting store migrated to head (SQLite and PostgreSQL), empty."""
    database = Database(database_url)
    await upgrade_to_head(database, MIGRATIONS)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def projection_store(database_url: str) -> AsyncIterator[Projection]:
    """An empty projection on SQLite and on PostgreSQL."""
    database = Database(database_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(lambda c: metadata.create_all(c, tables=LIVE.all))
    try:
        yield Projection(database)
    finally:
        await database.dispose()
