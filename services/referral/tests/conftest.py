"""Fixtures for referral's API tests: the real app on a real store, a manual clock, NATS down.

Outreach's events are applied with referral's own handler table (``Referrals.feed``), so these
tests need no broker; the system tests in ``tests/`` run the same path over real NATS.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from referral_factories import Referrals

from pulih.kit.testing import service_app
from pulih.referral.app import build


@pytest.fixture
async def referrals(tmp_path: Path, database_url: str) -> AsyncIterator[Referrals]:
    """Referral on SQLite and on PostgreSQL, its clock standing on 2026-03-01."""
    async with service_app(
        build,
        tmp_path,
        database_url,
        PULIH_CLOCK="manual",
        PULIH_CLOCK_START="2026-03-01",
        PULIH_SCHEDULER_SECONDS=3600,
    ) as (http, app):
        yield Referrals(http, app)
