"""The DHIS2 export of the national view: both files match the structures DHIS2 documents, every
reference resolves, UIDs are valid, unique and stable, and the data values read back through the
metadata are exactly the regencies' published figures (suppressed ones absent, not 0)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi import FastAPI

from pulih.contracts.events.reporting import AggregateReported
from pulih.kit.auth import Role, issue_token, scope_of
from pulih.kit.database import Database
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.testing import JWT_SECRET, service_app
from pulih.reporting.app import build
from pulih.reporting.national import dhis2
from pulih.reporting.national.figures import NationalLevel, national_phases, national_rows
from pulih.reporting.national.projection import apply_aggregates
from pulih.reporting.national.store import NATIONAL_TABLES
from pulih.reporting.store import metadata as store_metadata

SCHEMAS = Path(__file__).parent / "dhis2_schemas"
PHASES = {"rintisan": 3, "tumbuh": 2, "berkembang": 1, "tangguh": 0, "prima": 0}
REGENCIES = [
    dhis2.OrgUnit("3301", "Cilacap"),
    dhis2.OrgUnit("3302", "Banyumas"),
    dhis2.OrgUnit("7471", "Kendari"),
]


def aggregate(regency: str, period: str, revision: int = 1, **indicators: int | None) -> AggregateReported:
    return AggregateReported.model_validate(
        {
            "regency": regency,
            "period": period,
            "generated_at": datetime(2026, int(period[5:]) % 12 + 1, 2, 1, revision, tzinfo=UTC),
            "indicators": indicators,
            "units_by_phase": PHASES,
            "suppressed_below": 5,
            "revision": revision,
        }
    )


AGGREGATES = [
    aggregate("3301", "2026-01", clients_screened=12, screened_high=None, sessions_held=0, dropouts=None),
    aggregate("3301", "2026-01", 2, clients_screened=14, screened_high=6, sessions_held=0, dropouts=None),
    aggregate("3301", "2026-02", clients_screened=9, clients_active=31, referrals_overdue=None),
    aggregate("3302", "2026-01", clients_screened=None, sessions_held=22, qol_improved=5),
    aggregate("3302", "2026-02", clients_screened=7, clients_active=0),
    aggregate("7471", "2026-02", clients_screened=None, outreach_people_reached=140),
    aggregate("7471", "2026-04", clients_screened=40),  # outside the exported range
]
"""Three regencies; 3301's January revised (14 screened, the high-risk count published); nulls
where a regency suppressed a count, zeros where it published one."""


def published(aggregates: list[AggregateReported], start: str, end: str) -> dict[tuple[str, str, str], int]:
    """What the regencies published, by the latest revision of each month: (regency, month,
    data element code) → value, suppressed counts absent."""
    latest: dict[tuple[str, str], AggregateReported] = {}
    for a in aggregates:
        held = latest.get((a.regency, a.period))
        if held is None or a.revision > held.revision:
            latest[(a.regency, a.period)] = a
    figures: dict[tuple[str, str, str], int] = {}
    for (regency, period), a in latest.items():
        if not start <= period <= end:
            continue
        figures |= {(regency, period, str(k)): v for k, v in a.indicators.items() if v is not None}
        figures |= {(regency, period, f"units_{k}"): v for k, v in a.units_by_phase.items()}
    return figures


def validate(kind: str, document: dict[str, Any]) -> None:
    schema = json.loads((SCHEMAS / f"{kind}.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(document)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Database]:
    """The national view's tables holding :data:`AGGREGATES`."""
    database = Database(database_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(lambda c: store_metadata.create_all(c, tables=NATIONAL_TABLES))
    async with database.transaction() as session:
        await apply_aggregates(session, AGGREGATES)
    try:
        yield database
    finally:
        await database.dispose()


async def export(database: Database, start: str, end: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The metadata and data value set of the national view's regency figures, as the routes
    make them."""
    async with database.sessions() as session:
        figures = await national_rows(session, level=NationalLevel.REGENCY, start=start, end=end)
        phases = await national_phases(session, level=NationalLevel.REGENCY, start=start, end=end)
    return dhis2.metadata(REGENCIES), dhis2.data_value_set(figures, phases)


async def test_the_export_round_trips_the_national_figures_and_leaves_suppressed_cells_out(
    store: Database,
) -> None:
    meta, values = await export(store, "2026-01", "2026-03")
    validate("metadata", meta)
    validate("dataValueSet", values)

    read = dhis2.read_data_values(values, meta)
    assert read == published(AGGREGATES, "2026-01", "2026-03")
    async with store.sessions() as session:
        cells = await national_rows(session, level="regency", start="2026-01", end="2026-03")
    shown = {(c.org_unit, c.period, c.indicator): c.value for c in cells if c.hidden == 0}
    hidden = {(c.org_unit, c.period, c.indicator) for c in cells if c.hidden}
    assert {k: v for k, v in read.items() if not k[2].startswith("units_")} == shown
    assert hidden == {
        ("3301", "2026-01", "dropouts"),
        ("3301", "2026-02", "referrals_overdue"),
        ("3302", "2026-01", "clients_screened"),
        ("7471", "2026-02", "clients_screened"),
    }
    assert not hidden & read.keys()  # absent, not 0
    assert read[("3301", "2026-01", "clients_screened")] == 14  # the latest revision
    assert read[("3301", "2026-01", "sessions_held")] == 0  # a published zero is sent
    assert read[("3302", "2026-02", "clients_active")] == 0
    assert all(isinstance(v["value"], str) for v in values["dataValues"])
    assert {v["period"] for v in values["dataValues"]} == {"202601", "202602"}


async def test_provinces_add_up_in_dhis2_as_in_the_national_view(store: Database) -> None:
    meta, values = await export(store, "2026-01", "2026-02")
    parents = {u["id"]: u.get("parent", {}).get("id") for u in meta["organisationUnits"]}
    codes = {u["id"]: u["code"] for u in meta["organisationUnits"]}
    elements = {e["id"]: e["code"] for e in meta["dataElements"]}
    sums: dict[tuple[str, str, str], int] = {}
    for v in values["dataValues"]:
        key = (codes[parents[v["orgUnit"]]], v["period"], elements[v["dataElement"]])
        sums[key] = sums.get(key, 0) + int(v["value"])
    async with store.sessions() as session:
        provinces = await national_rows(session, level="province", start="2026-01", end="2026-02")
    # where every regency's figure was suppressed the national view says 0 with `hidden`, and
    # DHIS2 has no value at all
    totals = {(c.org_unit, c.period.replace("-", ""), c.indicator): c.value for c in provinces}
    assert {k for k, v in totals.items() if k not in sums} == {
        ("33", "202601", "dropouts"),
        ("33", "202602", "referrals_overdue"),
        ("74", "202602", "clients_screened"),
    }
    assert {k: v for k, v in totals.items() if k in sums} == {
        k: v for k, v in sums.items() if not k[2].startswith("units_")
    }


def test_every_reference_resolves_and_uids_are_valid_unique_and_stable() -> None:
    meta = dhis2.metadata([*REGENCIES, dhis2.OrgUnit("3271", "Bogor"), dhis2.OrgUnit("3201", "Bogor")])
    validate("metadata", meta)
    objects = [o for kind in ("dataElements", "organisationUnits", "dataSets") for o in meta[kind]]
    ids = [o["id"] for o in objects]
    assert all(dhis2.UID.match(i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert dhis2.uid("dataElement", "clients_screened") == "tbCT2RIcUct"  # never changes
    assert dhis2.metadata(list(reversed(REGENCIES))) == dhis2.metadata(REGENCIES)

    elements = {e["id"]: e for e in meta["dataElements"]}
    units = {u["id"]: u for u in meta["organisationUnits"]}
    assert [e["code"] for e in elements.values()] == dhis2.data_element_codes()
    assert len(elements) == 19 + 5
    assert (
        len({e["name"] for e in elements.values()}) == len({e["shortName"] for e in elements.values()}) == 24
    )
    root = [u for u in units.values() if "parent" not in u]
    assert [(u["code"], u["name"]) for u in root] == [("ID", "Indonesia")]
    seen: set[str] = set()
    for unit in meta["organisationUnits"]:  # parents come before their children
        assert unit.get("parent", {"id": root[0]["id"]})["id"] in seen | {unit["id"]}
        seen.add(unit["id"])
    assert units[dhis2.org_unit_uid("33")]["name"] == "Jawa Tengah"
    assert units[dhis2.org_unit_uid("3302")]["parent"]["id"] == dhis2.org_unit_uid("33")
    bogor = {units[dhis2.org_unit_uid(c)]["name"] for c in ("3201", "3271")}
    assert bogor == {"Bogor (3201)", "Bogor (3271)"}  # two regencies of one name told apart

    (data_set,) = meta["dataSets"]
    assert data_set["periodType"] == "Monthly"
    assert {d["dataElement"]["id"] for d in data_set["dataSetElements"]} == set(elements)
    regencies = {u["id"] for u in units.values() if len(u["code"]) == 4}
    assert {o["id"] for o in data_set["organisationUnits"]} == regencies


async def test_every_data_value_names_a_data_element_and_a_regency_of_the_metadata(store: Database) -> None:
    meta, values = await export(store, "2026-01", "2026-12")
    elements = {e["id"] for e in meta["dataElements"]}
    regencies = {u["id"] for u in meta["organisationUnits"] if len(u["code"]) == 4}
    assert values["dataSet"] == meta["dataSets"][0]["id"]
    assert values["dataValues"]
    for value in values["dataValues"]:
        assert value["dataElement"] in elements
        assert value["orgUnit"] in regencies
    keys = [(v["orgUnit"], v["period"], v["dataElement"]) for v in values["dataValues"]]
    assert len(set(keys)) == len(keys)


def test_periods_are_months() -> None:
    assert dhis2.dhis2_period("2026-10") == "202610"
    for bad in ("2026-13", "2026-W05", "202610", ""):
        with pytest.raises(ValueError):
            dhis2.dhis2_period(bad)


# The routes, on the national view's own app.


def bearer(app: FastAPI, role: Role) -> dict[str, str]:
    """A valid token of ``role`` for the national view (an agent's with a unit, a clinic's with
    a clinic), so that a refusal is the role's."""
    runtime: ServiceRuntime = app.state.runtime
    token = issue_token(
        JWT_SECRET,
        sub=f"{role}-test",
        role=role,
        regency=scope_of(runtime.settings),
        unit_id=uuid.UUID(int=1) if role is Role.AGENT else None,
        clinic_id="klinik-pratama-1" if role is Role.CLINIC else None,
    )
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def national_api(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    federation = tmp_path / "federation.toml"
    federation.write_text(
        '[hub]\nhost = "hub.test"\n'
        + "".join(f'\n[[regencies]]\ncode = "{r.code}"\nname = "{r.name}"\nclinics = []\n' for r in REGENCIES)
    )
    async with service_app(
        build,
        tmp_path,
        database_url,
        PULIH_REPORTING_MODE="national",
        PULIH_FEDERATION_FILE=str(federation),
        PULIH_SCHEDULER_SECONDS=3600,
    ) as (http, app):
        runtime: ServiceRuntime = app.state.runtime
        async with runtime.database.transaction() as session:
            await apply_aggregates(session, AGGREGATES)
        yield http, app


@pytest.mark.parametrize("role", [Role.NATIONAL, Role.ADMIN])
async def test_national_and_admin_tokens_download_both_files(
    national_api: tuple[httpx.AsyncClient, FastAPI], role: Role
) -> None:
    http, app = national_api
    meta = await http.get("/v1/national/dhis2/metadata", headers=bearer(app, role))
    assert meta.status_code == 200, meta.text
    assert "attachment" in meta.headers["content-disposition"]
    values = await http.get(
        "/v1/national/dhis2/dataValueSets",
        params={"from": "2026-01", "to": "2026-03"},
        headers=bearer(app, role),
    )
    assert values.status_code == 200, values.text
    validate("metadata", meta.json())
    validate("dataValueSet", values.json())
    assert dhis2.read_data_values(values.json(), meta.json()) == published(AGGREGATES, "2026-01", "2026-03")
    names = {u["code"]: u["name"] for u in meta.json()["organisationUnits"]}
    assert names["3302"] == "Banyumas" and names["74"] == "Sulawesi Tenggara"


async def test_other_roles_are_refused_and_a_bad_month_is_named(
    national_api: tuple[httpx.AsyncClient, FastAPI],
) -> None:
    http, app = national_api
    for role in (Role.FACILITATOR, Role.AGENT, Role.CLINIC):
        for path in ("/v1/national/dhis2/metadata", "/v1/national/dhis2/dataValueSets"):
            response = await http.get(path, headers=bearer(app, role))
            assert response.status_code == 403, (role, path, response.text)
    assert (await http.get("/v1/national/dhis2/metadata")).status_code == 401
    bad = await http.get(
        "/v1/national/dhis2/dataValueSets", params={"from": "2026-13"}, headers=bearer(app, Role.NATIONAL)
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "from"
