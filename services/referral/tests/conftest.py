"""Fixtures for referral's API tests: the real app on a real store, a manual clock, NATS down.

Outreach's events are fed straight to referral's consumer handlers (``Referrals.feed``), so
these tests need no broker; the system tests in ``tests/`` run the same path over real NATS.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from referral_factories import Referrals

from pulih.kit.nats_server import free_port
from pulih.kit.testing import make_settings
from pulih.referral.app import build


@pytest.fixture
async def referrals(tmp_path: Path, database_url: str) -> AsyncIterator[Referrals]:
    """Referral on SQLite and on PostgreSQL, its clock standing on 2026-03-01."""
    settings = make_settings(
        tmp_path,
        nats_url=f"nats://127.0.0.1:{free_port()}",
        database_url=database_url,
        PULIH_CLOCK="manual",
        PULIH_CLOCK_START="2026-03-01",
        PULIH_SCHEDULER_SECONDS=3600,
    )
    app = build(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://referral") as http,
    ):
        yield Referrals(http, app)
