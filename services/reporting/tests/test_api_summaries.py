"""Unit phases (current, since when, last move, history, counts by month), the referral summary
(by status, answered in time, median days, overdue today) and the QoL summary (per domain, and
clients improved as ``qol_improved`` counts them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from reporting_api_seed import KENANGA, MAWAR, MELATI, ReportingApi, reporting_api


@pytest.fixture
async def api(tmp_path: Path, database_url: str) -> AsyncIterator[ReportingApi]:
    async with reporting_api(tmp_path, database_url) as api:
        yield api


async def test_each_unit_has_its_current_phase_since_when_its_trend_and_history(api: ReportingApi) -> None:
    r = await api.get("/v1/units/phases")
    assert r.status_code == 200, r.text
    units = {u["unit_id"]: u for u in r.json()["units"]}
    assert [u["name"] for u in r.json()["units"]] == ["Unit Kenanga", "Unit Mawar", "Unit Melati"]
    current = {k: (u["phase"], u["assessed"], u["since"], u["trend"]) for k, u in units.items()}
    assert current == {
        str(KENANGA): (None, None, None, None),
        str(MAWAR): ("tumbuh", "2026-02", "2026-01", "steady"),
        str(MELATI): ("rintisan", "2026-02", "2026-02", "down"),
    }
    mawar = units[str(MAWAR)]
    assert (mawar["village_code"], mawar["district_code"], mawar["established_on"]) == (
        "3301012001",
        "330101",
        "2025-06-01",
    )
    assert [(h["period"], h["phase"], h["previous_phase"]) for h in mawar["history"]] == [
        ("2025-12", "rintisan", None),
        ("2026-01", "tumbuh", "rintisan"),
    ], "the history is the unit's moves: February kept January's phase"
    assert mawar["criteria"] == {"rintisan": True, "tumbuh": True}, "what held at the latest assessment"
    assert units[str(KENANGA)]["criteria"] is None


async def test_the_counts_cover_the_months_asked_for_and_the_rest_stays_current(api: ReportingApi) -> None:
    body = (await api.get("/v1/units/phases", from_="2026-01", to="2026-01")).json()
    melati = next(u for u in body["units"] if u["unit_id"] == str(MELATI))
    assert [h["period"] for h in melati["history"]] == ["2025-12", "2026-02"]
    assert (melati["phase"], melati["since"], melati["trend"]) == ("rintisan", "2026-02", "down")
    assert [row["period"] for row in body["by_month"]] == ["2026-01"]
    r = await api.get("/v1/units/phases", from_="2026-03", to="2026-02")
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "from_after_to", "from")


async def test_units_by_phase_are_counted_after_each_months_assessment(api: ReportingApi) -> None:
    by_month = (await api.get("/v1/units/phases")).json()["by_month"]
    zero = dict.fromkeys(["rintisan", "tumbuh", "berkembang", "tangguh", "prima"], 0)
    assert by_month == [
        {"period": "2025-12", "units": {**zero, "rintisan": 1, "tumbuh": 1}},
        {"period": "2026-01", "units": {**zero, "tumbuh": 2}},
        {"period": "2026-02", "units": {**zero, "rintisan": 1, "tumbuh": 1}},
    ]


async def test_one_units_phases_and_an_unknown_unit(api: ReportingApi) -> None:
    r = await api.get("/v1/units/phases", unit_id=str(MELATI))
    assert [u["unit_id"] for u in r.json()["units"]] == [str(MELATI)]
    assert r.json()["by_month"][1]["units"]["tumbuh"] == 1
    r = await api.get("/v1/units/phases", unit_id="00000000-0000-7000-8000-0000000000ff")
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (404, "unknown_unit", "unit_id")
    r = await api.get("/v1/units/phases", unit_id="mawar")
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "invalid", "unit_id")
    r = await api.get("/v1/units/phases", detail="maybe")
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "invalid", "detail")
    r = await api.get("/v1/referrals/summary", unit_id="mawar")
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "invalid", "unit_id")


async def test_referrals_by_status_and_how_fast_clinics_answered_and_finished(api: ReportingApi) -> None:
    r = await api.get("/v1/referrals/summary")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["since"], body["until"], body["today"]) == ("2025-04-01", "2026-03-31", "2026-03-15")
    assert body["made"] == 7
    assert body["by_status"] == {
        "referred": 2,
        "accepted": 1,
        "declined": 1,
        "attended": 0,
        "completed": 1,
        "dropped_out": 1,
        "cancelled": 1,
    }
    assert (body["answered"], body["answered_in_time"]) == (4, 3)
    assert (body["median_days_to_accept"], body["median_days_to_close"]) == (2.0, 25.0)


async def test_overdue_referrals_are_every_unanswered_one_past_respond_by_whenever_made(
    api: ReportingApi,
) -> None:
    body = (await api.get("/v1/referrals/summary", from_="2026-02", to="2026-02")).json()
    assert body["made"] == 3
    overdue = [
        (o["unit_id"], o["unit_name"], o["respond_by"], o["days_overdue"], o["escalated"])
        for o in body["overdue"]
    ]
    assert overdue == [
        (str(KENANGA), "Unit Kenanga", "2025-01-03", 436, False),
        (str(MAWAR), "Unit Mawar", "2026-03-10", 5, True),
    ]


async def test_one_units_referrals(api: ReportingApi) -> None:
    body = (await api.get("/v1/referrals/summary", unit_id=str(MELATI))).json()
    assert (body["made"], body["by_status"]["accepted"], body["by_status"]["declined"], body["overdue"]) == (
        3,
        1,
        1,
        [],
    )
    assert body["median_days_to_accept"] == 1.0 and body["median_days_to_close"] is None


async def test_qol_change_per_domain_and_clients_improved(api: ReportingApi) -> None:
    body = (await api.get("/v1/qol/summary")).json()
    assert (body["since"], body["until"], body["clients"], body["improved"]) == (
        "2025-04-01",
        "2026-03-31",
        3,
        2,
    )
    domains = {
        d["domain"]: (d["baseline_mean"], d["exit_mean"], d["mean_change"], d["improved"])
        for d in body["domains"]
    }
    assert domains == {
        "physical": (46.7, 53.3, 6.7, 2),
        "psychological": (43.3, 53.3, 10.0, 2),
        "social": (53.3, 56.7, 3.3, 1),
        "environment": (50.0, 55.0, 5.0, 2),
    }
    body = (await api.get("/v1/qol/summary", from_="2024-01", to="2024-12")).json()
    assert (body["clients"], body["improved"], body["domains"][0]["mean_change"]) == (1, 1, 80.0)
    body = (await api.get("/v1/qol/summary", from_="2023-01", to="2023-12")).json()
    assert (body["clients"], body["improved"], body["domains"][0]["baseline_mean"]) == (0, 0, 0.0)


@pytest.mark.parametrize("path", ["/v1/referrals/summary", "/v1/qol/summary"])
async def test_summaries_refuse_a_bad_range(api: ReportingApi, path: str) -> None:
    r = await api.get(path, from_="2026-03", to="2026-01")
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "from_after_to", "from")
    r = await api.get(path, to="2026-W01")
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "invalid_period", "to")


async def test_without_detail_the_units_keep_their_current_phase(api: ReportingApi) -> None:
    units = (await api.get("/v1/units/phases", detail="false")).json()["units"]
    assert [(u["history"], u["criteria"]) for u in units] == [([], None)] * 3
    melati = next(u for u in units if u["unit_id"] == str(MELATI))
    assert (melati["phase"], melati["since"], melati["trend"]) == ("rintisan", "2026-02", "down")
