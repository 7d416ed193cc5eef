"""``GET /v1/aggregates`` gives ``generated_at`` with the regency's offset, as the event carried
it, whether the store kept the offset (PostgreSQL) or not (SQLite)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from pulih.kit.auth import Role
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.testing import auth, service_app
from pulih.reporting.api.aggregates import in_regency_time
from pulih.reporting.app import build
from pulih.reporting.store import published_aggregates

JAKARTA = ZoneInfo("Asia/Jakarta")


async def test_generated_at_keeps_the_regencys_offset(tmp_path: Path, database_url: str) -> None:
    generated_at = datetime(2026, 2, 1, 0, 5, tzinfo=JAKARTA)  # what the job's clock gives
    async with service_app(build, tmp_path, database_url, PULIH_SCHEDULER_SECONDS=3600) as (http, app):
        runtime: ServiceRuntime = app.state.runtime
        async with runtime.database.transaction() as session:
            await session.execute(
                insert(published_aggregates).values(
                    period="2026-01",
                    revision=1,
                    event_id=uuid.uuid4(),
                    generated_at=generated_at,
                    indicators={"clients_registered": 7},
                    units_by_phase={},
                    suppressed_below=5,
                    true_digest="f" * 64,
                )
            )
        r = await http.get("/v1/aggregates", headers=auth(Role.NATIONAL))
    assert r.status_code == 200, r.text
    assert r.json()["aggregates"][0]["generated_at"] == "2026-02-01T00:05:00+07:00"


def test_a_time_is_shown_in_the_regencys_zone() -> None:
    utc = datetime(2026, 1, 31, 17, 5, tzinfo=ZoneInfo("UTC"))
    assert in_regency_time(utc, "Asia/Jakarta").utcoffset() == timedelta(hours=7)
    assert in_regency_time(utc, "Asia/Jakarta") == utc
    assert (
        in_regency_time(datetime(2026, 2, 1, 0, 5), "Asia/Jakarta").isoformat() == "2026-02-01T00:05:00+07:00"
    )
