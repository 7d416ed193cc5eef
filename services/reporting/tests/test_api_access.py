"""Who reads what, on every route of the reporting API: no token is 401; an agent sees their own
unit (403 for another unit or a level above it); facilitators and admins the regency; a national
token only the published aggregates (403 here); a clinic nothing. A refused role learns nothing
about the request's shape (403 before any 422)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from reporting_api_seed import MAWAR, MELATI, ReportingApi, reporting_api

from pulih.kit.auth import Role, issue_token
from pulih.kit.testing import JWT_SECRET, REGENCY, auth

ROUTES = ["/v1/indicators", "/v1/units/phases", "/v1/referrals/summary", "/v1/qol/summary"]

REFUSED_ROLES = [Role.NATIONAL, Role.CLINIC, Role.SERVICE]


@pytest.fixture
async def api(tmp_path: Path, database_url: str) -> AsyncIterator[ReportingApi]:
    async with reporting_api(tmp_path, database_url) as api:
        yield api


@pytest.mark.parametrize("path", ROUTES)
async def test_no_token_is_401(api: ReportingApi, path: str) -> None:
    r = await api.http.get(path)
    assert (r.status_code, r.json()["code"]) == (401, "missing_token")
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("path", ROUTES)
async def test_a_forged_or_expired_token_is_401(api: ReportingApi, path: str) -> None:
    forged = issue_token(
        "another-secret-of-at-least-32-bytes!", sub="x", role=Role.FACILITATOR, regency=REGENCY
    )
    r = await api.http.get(path, headers={"Authorization": f"Bearer {forged}"})
    assert (r.status_code, r.json()["code"]) == (401, "invalid_token")
    expired = issue_token(
        JWT_SECRET, sub="x", role=Role.FACILITATOR, regency=REGENCY, ttl=timedelta(seconds=-1)
    )
    r = await api.http.get(path, headers={"Authorization": f"Bearer {expired}"})
    assert (r.status_code, r.json()["code"]) == (401, "token_expired")


@pytest.mark.parametrize("path", ROUTES)
async def test_another_regencys_token_is_403(api: ReportingApi, path: str) -> None:
    other = issue_token(JWT_SECRET, sub="x", role=Role.FACILITATOR, regency="3302")
    r = await api.http.get(path, headers={"Authorization": f"Bearer {other}"})
    assert (r.status_code, r.json()["code"]) == (403, "wrong_regency")


@pytest.mark.parametrize("role", REFUSED_ROLES)
@pytest.mark.parametrize("path", ROUTES)
async def test_national_clinic_and_service_tokens_are_403_before_validation(
    api: ReportingApi, path: str, role: Role
) -> None:
    """Parameters that would be 422 for a facilitator: the refused role is told only 403."""
    r = await api.get(path, role, level="province", from_="2026-13", unit_id="not-a-uuid")
    assert (r.status_code, r.json()["code"]) == (403, "forbidden_role"), r.text


@pytest.mark.parametrize("role", [Role.FACILITATOR, Role.ADMIN])
@pytest.mark.parametrize("path", ROUTES)
async def test_facilitators_and_admins_read_the_regency(api: ReportingApi, path: str, role: Role) -> None:
    r = await api.get(path, role)
    assert r.status_code == 200, r.text


async def test_an_agent_reads_their_own_units_rows_only(api: ReportingApi) -> None:
    r = await api.get("/v1/indicators", Role.AGENT, level="unit", from_="2026-02", to="2026-02")
    assert r.status_code == 200, r.text
    assert [(row["org_id"], row["indicators"]["outreach_people_reached"]) for row in r.json()["rows"]] == [
        (str(MAWAR), 25)
    ]
    r = await api.get("/v1/indicators", Role.AGENT, level="unit", id=str(MAWAR))
    assert r.status_code == 200


async def test_an_agent_asking_for_another_unit_or_a_higher_level_is_403(api: ReportingApi) -> None:
    r = await api.get("/v1/indicators", Role.AGENT, level="unit", id=str(MELATI))
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (403, "other_unit", "id")
    for level in ("village", "district", "regency"):
        r = await api.get("/v1/indicators", Role.AGENT, level=level)
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (403, "unit_only", "level")
    for path in ROUTES[1:]:
        r = await api.get(path, Role.AGENT, unit_id=str(MELATI))
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (403, "other_unit", "unit_id")


async def test_an_agents_summaries_and_phases_are_their_units(api: ReportingApi) -> None:
    phases = (await api.get("/v1/units/phases", Role.AGENT)).json()
    assert [u["unit_id"] for u in phases["units"]] == [str(MAWAR)]
    referrals = (await api.get("/v1/referrals/summary", Role.AGENT)).json()
    assert (referrals["made"], [r["unit_id"] for r in referrals["overdue"]]) == (3, [str(MAWAR)])
    qol = (await api.get("/v1/qol/summary", Role.AGENT)).json()
    assert (qol["clients"], qol["improved"]) == (2, 1)


async def test_an_agent_of_a_unit_with_no_projection_yet_gets_empty_figures(api: ReportingApi) -> None:
    """A new unit whose UnitEstablished has not reached reporting: nothing to show, nothing leaked."""
    headers = auth(Role.AGENT, unit_id=uuid.uuid4())
    r = await api.http.get("/v1/indicators", params={"level": "unit"}, headers=headers)
    assert (r.status_code, r.json()["rows"]) == (200, [])
    r = await api.http.get("/v1/referrals/summary", headers=headers)
    assert (r.status_code, r.json()["made"], r.json()["overdue"]) == (200, 0, [])


async def test_the_dashboard_page_itself_needs_no_token_and_holds_no_figures(api: ReportingApi) -> None:
    r = await api.http.get("/")
    assert r.status_code == 200
    assert "Mawar" not in r.text and "3301012001" not in r.text
