"""``GET /v1/aggregates``: what left the regency, for national, facilitator and admin tokens."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert

from pulih.kit.auth import Role
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.testing import auth, service_app
from pulih.reporting.app import build
from pulih.reporting.store import published_aggregates

UNIT = uuid.UUID("00000000-0000-7000-8000-0000000000c1")
PHASES = {"rintisan": 2, "tumbuh": 1, "berkembang": 0, "tangguh": 0, "prima": 0}


def row(period: str, revision: int, **indicators: int | None) -> dict[str, Any]:
    return {
        "period": period,
        "revision": revision,
        "event_id": uuid.uuid4(),
        "generated_at": datetime(2026, 3, revision, 5, tzinfo=UTC),
        "indicators": indicators,
        "units_by_phase": PHASES,
        "suppressed_below": 5,
        "true_digest": "f" * 64,
    }


ROWS = [
    row("2026-01", 1, clients_registered=7, clients_enrolled=None),
    row("2026-01", 2, clients_registered=8, clients_enrolled=None),
    row("2026-02", 1, clients_registered=0, clients_enrolled=6),
]


@pytest.fixture
async def api(tmp_path: Path, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with service_app(build, tmp_path, database_url, PULIH_SCHEDULER_SECONDS=3600) as (http, app):
        await seed(app)
        yield http


async def seed(app: FastAPI) -> None:
    runtime: ServiceRuntime = app.state.runtime
    async with runtime.database.transaction() as session:
        await session.execute(insert(published_aggregates), ROWS)


def as_(role: Role) -> dict[str, str]:
    claims: dict[str, Any] = {"unit_id": UNIT} if role is Role.AGENT else {}
    if role is Role.CLINIC:
        claims["clinic_id"] = "klinik-pratama-1"
    return auth(role, **claims)


@pytest.mark.parametrize("role", [Role.NATIONAL, Role.FACILITATOR, Role.ADMIN])
async def test_national_facilitator_and_admin_read_the_latest_revision_of_each_month(
    api: httpx.AsyncClient, role: Role
) -> None:
    response = await api.get("/v1/aggregates", headers=as_(role))
    assert response.status_code == 200
    body = response.json()
    assert body["regency"] == "3301"
    assert [(a["period"], a["revision"]) for a in body["aggregates"]] == [("2026-01", 2), ("2026-02", 1)]
    january = body["aggregates"][0]
    assert january["indicators"] == {"clients_registered": 8, "clients_enrolled": None}
    assert january["units_by_phase"] == PHASES
    assert january["suppressed_below"] == 5
    assert january["event_id"] == str(ROWS[1]["event_id"])
    assert "true_digest" not in january  # a hash of small counts could be matched by trial


async def test_every_revision_of_a_month_with_all(api: httpx.AsyncClient) -> None:
    response = await api.get(
        "/v1/aggregates", params={"period": "2026-01", "all": "true"}, headers=as_(Role.NATIONAL)
    )
    assert response.status_code == 200
    assert [a["revision"] for a in response.json()["aggregates"]] == [1, 2]


async def test_one_month(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/aggregates", params={"period": "2026-02"}, headers=as_(Role.NATIONAL))
    assert [(a["period"], a["indicators"]["clients_enrolled"]) for a in response.json()["aggregates"]] == [
        ("2026-02", 6)
    ]


async def test_a_month_never_published_is_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/aggregates", params={"period": "2026-03"}, headers=as_(Role.NATIONAL))
    assert response.status_code == 404
    assert response.json()["code"] == "not_published"


async def test_a_period_that_is_no_month_is_422_naming_it(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/aggregates", params={"period": "2026-W05"}, headers=as_(Role.NATIONAL))
    assert response.status_code == 422
    assert response.json()["field"] == "period"


@pytest.mark.parametrize("role", [Role.AGENT, Role.CLINIC, Role.SERVICE])
async def test_agents_clinics_and_services_may_not_read_them(api: httpx.AsyncClient, role: Role) -> None:
    # Refused before the query is looked at: a malformed period still gets 403.
    for params in ({}, {"period": "nonsense"}):
        response = await api.get("/v1/aggregates", params=params, headers=as_(role))
        assert response.status_code == 403
        assert response.json()["code"] == "forbidden_role"


async def test_without_a_token_it_is_401(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/aggregates")
    assert response.status_code == 401
    assert response.json()["code"] == "missing_token"
