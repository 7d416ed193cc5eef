"""``/v1/national/…``: the national figures as JSON and CSV, for national and admin tokens of the
national view only, with every refusal naming its parameter."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from national_seed import aggregate

from pulih.kit.auth import NATIONAL_SCOPE, issue_token
from pulih.kit.federation.names import PROVINCES
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.testing import JWT_SECRET, REGENCY, auth, service_app
from pulih.reporting.api.indicators import CSV
from pulih.reporting.app import build
from pulih.reporting.national.projection import apply_aggregates
from pulih.reporting.national.store import national_aggregates

FEDERATION = """
[hub]
host = "127.0.0.1"

[[regencies]]
code = "3301"
name = "Cilacap"

[[regencies]]
code = "3302"
name = "Banyumas"

[[regencies]]
code = "3303"
name = "Purbalingga"
"""


def national(role: str = "national") -> dict[str, str]:
    token = issue_token(JWT_SECRET, sub=f"{role}-test", role=role, regency=NATIONAL_SCOPE)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def api(tmp_path: Path, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The national view's app (its clock on 2026-11-10), with aggregates of three regencies."""
    federation = tmp_path / "federation.toml"
    federation.write_text(FEDERATION)
    async with service_app(
        build,
        tmp_path,
        database_url,
        PULIH_REPORTING_MODE="national",
        PULIH_FEDERATION_FILE=federation,
        PULIH_CLOCK="manual",
        PULIH_CLOCK_START="2026-11-10",
    ) as (http, app):
        await seed(app)
        yield http


async def seed(app: FastAPI) -> None:
    runtime: ServiceRuntime = app.state.runtime
    async with runtime.database.transaction() as session:
        await apply_aggregates(
            session,
            [
                aggregate(
                    "3301", "2026-10", base=10, hidden=("dropouts",), phases={"rintisan": 2, "tumbuh": 1}
                ),
                aggregate("3302", "2026-10", base=20, phases={"rintisan": 1}),
                aggregate("3302", "2026-09", base=7),
                aggregate("7471", "2026-09", base=3, hidden=("dropouts",)),
            ],
        )


async def test_indicators_by_nation_province_and_regency(api: httpx.AsyncClient) -> None:
    answer = await api.get(
        "/v1/national/indicators", params={"from": "2026-09", "to": "2026-10"}, headers=national()
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["level"], body["from"], body["to"]) == ("nation", "2026-09", "2026-10")
    by_key = {(r["period"], r["indicator"]): r for r in body["rows"]}
    assert by_key["2026-10", "dropouts"] == {
        "level": "nation",
        "org_unit": "ID",
        "name": "Indonesia",
        "period": "2026-10",
        "indicator": "dropouts",
        "value": 20,
        "hidden": 1,
        "reporting": 2,
        "exact": False,
    }
    assert by_key["2026-09", "clients_screened"]["value"] == 10
    assert by_key["2026-09", "clients_screened"]["exact"] is True

    provinces = await api.get(
        "/v1/national/indicators",
        params={"level": "province", "from": "2026-09", "to": "2026-10", "indicator": "dropouts"},
        headers=national("admin"),
    )
    assert [
        (r["org_unit"], r["name"], r["period"], r["value"], r["hidden"]) for r in provinces.json()["rows"]
    ] == [
        ("33", "Jawa Tengah", "2026-09", 7, 0),
        ("33", "Jawa Tengah", "2026-10", 20, 1),
        ("74", "Sulawesi Tenggara", "2026-09", 0, 1),
    ]
    regencies = await api.get(
        "/v1/national/indicators",
        params={
            "level": "regency",
            "code": "33",
            "from": "2026-10",
            "to": "2026-10",
            "indicator": "sessions_held",
        },
        headers=national(),
    )
    assert [(r["org_unit"], r["name"], r["value"]) for r in regencies.json()["rows"]] == [
        ("3301", "Cilacap", 10),
        ("3302", "Banyumas", 20),
    ]


async def test_indicators_as_csv(api: httpx.AsyncClient) -> None:
    answer = await api.get(
        "/v1/national/indicators",
        params={"level": "regency", "code": "3301", "from": "2026-10", "to": "2026-10"},
        headers={**national(), "Accept": "text/csv"},
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert list(rows[0]) == [
        "level",
        "org_unit",
        "name",
        "period",
        "indicator",
        "value",
        "hidden",
        "reporting",
        "exact",
    ]
    dropouts = next(r for r in rows if r["indicator"] == "dropouts")
    assert dropouts == {
        "level": "regency",
        "org_unit": "3301",
        "name": "Cilacap",
        "period": "2026-10",
        "indicator": "dropouts",
        "value": "0",
        "hidden": "1",
        "reporting": "1",
        "exact": "false",
    }
    assert len(rows) == 19


async def test_regencies_say_which_are_silent(api: httpx.AsyncClient) -> None:
    answer = await api.get("/v1/national/regencies", headers=national())
    assert answer.status_code == 200
    body = answer.json()
    assert body["last_closed_month"] == "2026-10"
    assert [
        (r["code"], r["name"], r["province_name"], r["last_period"], r["silent"]) for r in body["regencies"]
    ] == [
        ("3301", "Cilacap", "Jawa Tengah", "2026-10", False),
        ("3302", "Banyumas", "Jawa Tengah", "2026-10", False),
        ("3303", "Purbalingga", "Jawa Tengah", None, True),
        ("7471", "7471", "Sulawesi Tenggara", "2026-09", True),
    ]
    as_csv = await api.get("/v1/national/regencies", headers={**national(), "Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["code"], r["silent"]) for r in rows] == [
        ("3301", "false"),
        ("3302", "false"),
        ("3303", "true"),
        ("7471", "true"),
    ]


async def test_phases(api: httpx.AsyncClient) -> None:
    answer = await api.get(
        "/v1/national/phases", params={"from": "2026-10", "to": "2026-10"}, headers=national()
    )
    assert answer.status_code == 200
    assert [(r["org_unit"], r["phase"], r["units"]) for r in answer.json()["rows"]] == [
        ("ID", "rintisan", 3),
        ("ID", "tumbuh", 1),
    ]
    as_csv = await api.get(
        "/v1/national/phases",
        params={"level": "regency", "from": "2026-10", "to": "2026-10"},
        headers={**national(), "Accept": "text/csv"},
    )
    assert as_csv.text.splitlines()[0] == "level,org_unit,name,period,phase,units"
    assert "regency,3301,Cilacap,2026-10,rintisan,2" in as_csv.text


@pytest.mark.parametrize("path", ["/v1/national/regencies", "/v1/national/indicators", "/v1/national/phases"])
async def test_only_national_and_admin_tokens_of_the_national_view(api: httpx.AsyncClient, path: str) -> None:
    assert (await api.get(path)).status_code == 401
    assert (await api.get(path, headers={"Authorization": "Bearer nonsense"})).status_code == 401
    regency_token = await api.get(path, headers=auth("national"))
    assert regency_token.status_code == 403
    assert regency_token.json()["code"] == "wrong_regency"
    facilitator = await api.get(path, headers=national("facilitator"))
    assert facilitator.status_code == 403
    assert facilitator.json()["code"] == "forbidden_role"
    # refused before the query is read: a bad parameter tells a stranger nothing
    assert (await api.get(path, params={"level": "galaxy"}, headers=national("agent"))).status_code in (
        401,
        403,
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-13"}, "from"),
        ({"to": "2026/10"}, "to"),
        ({"from": "2026-10", "to": "2026-09"}, "from"),
        ({"level": "village"}, "level"),
        ({"level": "province", "code": "330"}, "code"),
        ({"level": "regency", "code": "33011"}, "code"),
        ({"level": "nation", "code": "33"}, "code"),
        ({"indicator": "happiness"}, "indicator"),
    ],
)
async def test_bad_parameters_are_422_naming_the_field(
    api: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    answer = await api.get("/v1/national/indicators", params=params, headers=national())
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field
    if "indicator" not in params:
        phases = await api.get("/v1/national/phases", params=params, headers=national())
        assert phases.status_code == 422 and phases.json()["field"] == field


async def test_a_regency_deployment_has_no_national_routes(tmp_path: Path, database_url: str) -> None:
    async with service_app(build, tmp_path, database_url) as (http, _):
        assert (await http.get("/v1/national/regencies", headers=auth("national"))).status_code == 404
    assert REGENCY != NATIONAL_SCOPE


async def test_a_year_of_every_figure_of_all_514_regencies_is_one_answer(
    tmp_path: Path, database_url: str
) -> None:
    """What the dashboard's CSV button asks for (every regency, every indicator, twelve months)
    is served for the whole of Indonesia; more than that is refused, naming ``from``."""
    async with service_app(
        build,
        tmp_path,
        database_url,
        PULIH_REPORTING_MODE="national",
        PULIH_CLOCK="manual",
        PULIH_CLOCK_START="2026-11-10",
    ) as (http, app):
        runtime: ServiceRuntime = app.state.runtime
        codes = [f"{province}{n:02d}" for province in PROVINCES for n in range(1, 15)][:514]
        async with runtime.database.transaction() as session:
            await session.execute(
                national_aggregates.insert(),
                [
                    {
                        "regency": code,
                        "period": "2026-10",
                        "revision": 1,
                        "event_id": uuid4(),
                        "generated_at": datetime(2026, 11, 1, tzinfo=UTC),
                        "indicators": {},
                        "units_by_phase": {},
                        "suppressed_below": 5,
                        "received_at": datetime(2026, 11, 1, tzinfo=UTC),
                        "stream_seq": n,
                    }
                    for n, code in enumerate(codes, start=1)
                ],
            )
        year = {"level": "regency", "from": "2025-11", "to": "2026-10"}
        answer = await http.get("/v1/national/indicators", params=year, headers={**national(), "Accept": CSV})
        assert answer.status_code == 200, answer.text
        two_years = {**year, "from": "2024-11"}
        refused = await http.get("/v1/national/indicators", params=two_years, headers=national())
        assert (refused.status_code, refused.json()["code"], refused.json()["field"]) == (
            422,
            "too_many_rows",
            "from",
        )


async def test_when_an_aggregate_arrived_is_said_with_its_offset(api: httpx.AsyncClient) -> None:
    body = (await api.get("/v1/national/regencies", headers=national())).json()
    received = [r["last_received_at"] for r in body["regencies"] if r["last_received_at"]]
    assert received
    for moment in received:
        assert datetime.fromisoformat(moment).utcoffset() == timedelta(0), moment


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"level": "province", "code": "99"}, "unknown_province"),
        ({"level": "regency", "code": "99"}, "unknown_province"),
        ({"level": "regency", "code": "3399"}, "unknown_regency"),
    ],
)
async def test_an_org_unit_nobody_knows_is_422_naming_code(
    api: httpx.AsyncClient, params: dict[str, str], code: str
) -> None:
    for path in ("/v1/national/indicators", "/v1/national/phases"):
        answer = await api.get(path, params=params, headers=national())
        assert (answer.status_code, answer.json()["code"], answer.json()["field"]) == (422, code, "code")


@pytest.mark.parametrize(
    "params",
    [
        {"level": "province", "code": "74"},  # a province of the table, without an expected regency
        {"level": "regency", "code": "3303"},  # expected, never reported
        {"level": "regency", "code": "7471"},  # not in the federation list, but heard from
        {"level": "regency", "code": "51"},  # a province nobody reports in yet
    ],
)
async def test_an_org_unit_the_view_knows_is_answered_even_without_figures(
    api: httpx.AsyncClient, params: dict[str, str]
) -> None:
    answer = await api.get("/v1/national/indicators", params=params, headers=national())
    assert answer.status_code == 200, answer.text
