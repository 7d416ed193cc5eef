"""``GET /v1/indicators``: rows per org unit and period with every indicator (a missing cell is 0),
as JSON and as CSV; every bad parameter is a 422 naming it, an unknown org unit a 404."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from reporting_api_seed import CELLS, KENANGA, MAWAR, MELATI, ReportingApi, reporting_api

from pulih.contracts.codes import Indicator
from pulih.kit.auth import Role
from pulih.kit.testing import REGENCY, auth

EVERY = [i.value for i in Indicator]


@pytest.fixture
async def api(tmp_path: Path, database_url: str) -> AsyncIterator[ReportingApi]:
    async with reporting_api(tmp_path, database_url) as api:
        yield api


def expected(level: str, org_id: str, period: str) -> dict[str, int]:
    """Every indicator of one org and period: the seeded cells, 0 elsewhere."""
    return {name: CELLS.get((level, org_id, period), {}).get(name, 0) for name in EVERY}


def table(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(row["org_id"], row["period"]) for row in rows]


async def test_the_regency_by_month_has_every_indicator_and_zeros_where_no_cell_is(api: ReportingApi) -> None:
    r = await api.get("/v1/indicators", level="regency", from_="2025-12", to="2026-03")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["level"], body["by"], body["from"], body["to"]) == ("regency", "month", "2025-12", "2026-03")
    assert body["indicators"] == EVERY
    assert table(body["rows"]) == [(REGENCY, p) for p in ("2025-12", "2026-01", "2026-02", "2026-03")]
    for row in body["rows"]:
        assert row["indicators"] == expected("regency", REGENCY, row["period"])
    assert body["rows"][1]["indicators"]["outreach_people_reached"] == 40
    assert body["rows"][0]["indicators"] == dict.fromkeys(EVERY, 0)


async def test_every_unit_by_name_then_period_or_one_unit_by_id(api: ReportingApi) -> None:
    r = await api.get("/v1/indicators", level="unit", from_="2026-01", to="2026-02")
    rows = r.json()["rows"]
    assert table(rows) == [(str(u), p) for u in (KENANGA, MAWAR, MELATI) for p in ("2026-01", "2026-02")]
    assert [row["org_name"] for row in rows][::2] == ["Unit Kenanga", "Unit Mawar", "Unit Melati"]
    assert rows[3]["indicators"] == expected("unit", str(MAWAR), "2026-02")
    assert rows[3]["indicators"]["sessions_attended"] == 9

    r = await api.get("/v1/indicators", level="unit", id=str(MELATI), from_="2026-02", to="2026-02")
    assert table(r.json()["rows"]) == [(str(MELATI), "2026-02")]
    assert r.json()["rows"][0]["indicators"]["clients_enrolled"] == 3


async def test_villages_and_districts_are_the_units_codes(api: ReportingApi) -> None:
    r = await api.get("/v1/indicators", level="village", from_="2026-02", to="2026-02")
    assert table(r.json()["rows"]) == [
        ("3301012001", "2026-02"),
        ("3301012002", "2026-02"),
        ("3301022001", "2026-02"),
    ]
    assert [row["indicators"]["outreach_people_reached"] for row in r.json()["rows"]] == [25, 10, 0]
    r = await api.get("/v1/indicators", level="district", id="330102", from_="2026-03", to="2026-03")
    assert r.json()["rows"] == [
        {
            "org_id": "330102",
            "org_name": None,
            "period": "2026-03",
            "indicators": expected("district", "330102", "2026-03"),
        }
    ]


async def test_weeks_across_a_new_year_leave_the_months_out(api: ReportingApi) -> None:
    """ "2026-01" sorts between "2025-W52" and "2026-W01": the month's cells must not leak in."""
    r = await api.get(
        "/v1/indicators", level="unit", id=str(MAWAR), by="week", from_="2025-W52", to="2026-W01"
    )
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert table(rows) == [(str(MAWAR), "2025-W52"), (str(MAWAR), "2026-W01")]
    assert [row["indicators"]["sessions_held"] for row in rows] == [2, 3]
    assert rows[0]["indicators"]["outreach_people_reached"] == 0


async def test_the_default_range_is_the_last_twelve_months_or_thirteen_weeks(api: ReportingApi) -> None:
    r = await api.get("/v1/indicators")
    body = r.json()
    assert (body["level"], body["from"], body["to"], len(body["rows"])) == (
        "regency",
        "2025-04",
        "2026-03",
        12,
    )
    assert body["rows"][-1]["indicators"]["clients_registered"] == 4
    r = await api.get("/v1/indicators", by="week")
    assert (r.json()["from"], r.json()["to"], len(r.json()["rows"])) == ("2025-W51", "2026-W11", 13)


async def test_csv_has_a_header_and_one_row_per_org_and_period(api: ReportingApi) -> None:
    r = await api.http.get(
        "/v1/indicators",
        params={"level": "unit", "from": "2026-01", "to": "2026-03"},
        headers={**auth(Role.FACILITATOR), "Accept": "text/csv"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert (
        r.headers["content-disposition"] == f'attachment; filename="pulih-{REGENCY}-unit-2026-01-2026-03.csv"'
    )
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["level", "org_id", "org_name", "period", *EVERY]
    assert len(rows) == 1 + 3 * 3
    mawar_february = next(row for row in rows if row[1] == str(MAWAR) and row[3] == "2026-02")
    assert mawar_february[:3] == ["unit", str(MAWAR), "Unit Mawar"]
    assert dict(zip(EVERY, map(int, mawar_february[4:]), strict=True)) == expected(
        "unit", str(MAWAR), "2026-02"
    )


BAD = [
    ({"from": "2026-03", "to": "2026-01"}, "from_after_to", "from"),
    ({"from": "2026-13"}, "invalid_period", "from"),
    ({"to": "March"}, "invalid_period", "to"),
    ({"from": "2026-W05"}, "invalid_period", "from"),
    ({"by": "week", "from": "2026-01"}, "invalid_period", "from"),
    ({"by": "week", "to": "2025-W53"}, "invalid_period", "to"),
    ({"from": "1900-01", "to": "2026-01"}, "range_too_long", "from"),
    ({"level": "unit", "id": "mawar"}, "invalid_id", "id"),
    ({"level": "village", "id": "33010120"}, "invalid_id", "id"),
    ({"level": "district", "id": "3301"}, "invalid_id", "id"),
    ({"level": "province"}, "invalid", "level"),
    ({"by": "day"}, "invalid", "by"),
    ({"from": ""}, "invalid_period", "from"),
    ({"to": ""}, "invalid_period", "to"),
]


@pytest.mark.parametrize(("params", "code", "field"), BAD)
async def test_a_bad_parameter_is_422_naming_it(
    api: ReportingApi, params: dict[str, str], code: str, field: str
) -> None:
    r = await api.http.get("/v1/indicators", params=params, headers=auth(Role.FACILITATOR))
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, code, field), r.text


@pytest.mark.parametrize(
    ("accept", "answer"),
    [
        (None, "json"),
        ("text/csv", "csv"),
        ("TEXT/CSV", "csv"),
        ("text/csv;q=0", "json"),
        ("text/csv;q=0.1, application/json;q=0.9", "json"),
        ("application/json;q=0.5, text/csv", "csv"),
        ("text/*", "csv"),
        ("text/csv, */*;q=0.8", "csv"),
        ("text/csv, */*", "csv"),
        ("text/csv, application/json", "json"),
        ("*/*", "json"),
        ("text/csv;q=nonsense", "json"),
    ],
)
async def test_the_answer_is_negotiated_with_q_values_and_varies_with_accept(
    api: ReportingApi, accept: str | None, answer: str
) -> None:
    headers = auth(Role.FACILITATOR) | ({} if accept is None else {"Accept": accept})
    r = await api.http.get("/v1/indicators", params={"from": "2026-03"}, headers=headers)
    assert r.status_code == 200, r.text
    media = "text/csv" if answer == "csv" else "application/json"
    assert r.headers["content-type"].split(";")[0] == media
    assert r.headers["vary"] == "Accept"


async def test_every_refusal_of_level_names_it_alike(api: ReportingApi) -> None:
    bad = await api.get("/v1/indicators", level="province")
    forbidden = await api.get("/v1/indicators", Role.AGENT, level="village")
    assert (bad.status_code, forbidden.status_code) == (422, 403)
    assert bad.json()["field"] == forbidden.json()["field"] == "level"


@pytest.mark.parametrize(
    ("level", "org_id"),
    [
        ("unit", "00000000-0000-7000-8000-0000000000ff"),
        ("village", "3301012099"),
        ("district", "330199"),
        ("regency", "3302"),
    ],
)
async def test_an_unknown_org_unit_is_404(api: ReportingApi, level: str, org_id: str) -> None:
    r = await api.get("/v1/indicators", level=level, id=org_id)
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (404, "unknown_org", "id"), r.text


async def test_an_empty_projection_answers_rows_of_zeros(tmp_path: Path, database_url: str) -> None:
    async with reporting_api(tmp_path, database_url, seeded=False) as api:
        r = await api.get("/v1/indicators", from_="2026-01", to="2026-02")
        assert [row["indicators"] for row in r.json()["rows"]] == [dict.fromkeys(EVERY, 0)] * 2
        r = await api.get("/v1/indicators", level="unit")
        assert r.json()["rows"] == []


async def test_a_request_for_too_many_rows_is_422(api: ReportingApi, monkeypatch: pytest.MonkeyPatch) -> None:
    from pulih.reporting.api import indicators

    monkeypatch.setattr(indicators, "MOST_ROWS", 8)
    r = await api.get("/v1/indicators", level="unit", from_="2026-01", to="2026-03")
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "too_many_rows", "from"), r.text
    r = await api.get("/v1/indicators", level="unit", id=str(MAWAR), from_="2026-01", to="2026-03")
    assert r.status_code == 200
