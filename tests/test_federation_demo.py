"""``pulih federation demo`` (issue 11: "the national dashboard shows the three regencies after the
demo").

- Its made-up people are people outreach takes: every NIK agrees with the birth date and the sex,
  every ASSIST answer scores the risk the demo meant, no NIK repeats, and the same seed makes the
  same people.
- Its weeks cover every day of a month once.
- Against a running federation on a manual clock (two regencies of two provinces), one month of
  work reaches the national view: the large regency's figures published, the small one's partly
  suppressed, its table showing the national view's figures; a second run continues with the next
  month; a third, with the hub held, works its month without waiting for the hub; after a restart
  of ``up`` the clocks stand where the demo left them and the held month arrives.
- ``up``'s terminal shows a service's warnings, errors and tracebacks, not its INFO lines.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_federation_local import ROOT, Federation, national

from pulih.contracts.codes import Substance
from pulih.kit.federation.demo_data import month_random, person
from pulih.kit.federation.demo_regency import next_month, weeks
from pulih.kit.federation.supervision import for_terminal
from pulih.outreach.domain.assist import AssistAnswers, Injecting, SubstanceAnswers, score_assist
from pulih.outreach.domain.identity import validate_nik


def _people(seed: int, code: str, month: date, n: int = 60) -> list[Any]:
    rng = month_random(seed, code, month)
    return [
        person(rng, code, month, serial, month + timedelta(days=serial % 28)) for serial in range(1, n + 1)
    ]


def test_the_demo_people_are_people_outreach_takes_and_the_same_seed_makes_the_same() -> None:
    months = [date(2026, 12, 1), date(2027, 1, 1), date(2027, 2, 1)]
    niks = []
    risks = set()
    for code in ("3301", "7471"):
        for month in months:
            for who in _people(11, code, month):
                assert validate_nik(who.nik, birth_date=who.birth_date, sex=who.sex) == who.nik
                assert who.nik.startswith(f"{code}01")
                answers = AssistAnswers(
                    tuple(
                        SubstanceAnswers(
                            Substance(s["substance"]), **{k: v for k, v in s.items() if k != "substance"}
                        )
                        for s in who.substances
                    ),
                    Injecting(who.injecting),
                )
                assert score_assist(answers).overall_risk.value == who.risk, who
                niks.append(who.nik)
                risks.add(who.risk)
    assert len(niks) == len(set(niks)), "a NIK repeats"
    assert risks == {"low", "moderate", "high"}
    assert _people(11, "3301", months[0]) == _people(11, "3301", months[0])
    assert _people(11, "3301", months[0]) != _people(12, "3301", months[0])


@pytest.mark.parametrize("month", [date(2026, 12, 1), date(2027, 2, 1), date(2028, 2, 1)])
def test_the_weeks_cover_each_day_of_the_month_once(month: date) -> None:
    days = [start + timedelta(days=i) for start, end in weeks(month) for i in range((end - start).days + 1)]
    assert days == [month + timedelta(days=i) for i in range((next_month(month) - month).days)]


def demo(fed: Federation, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pulih.kit.cli", "federation", "demo", "--data-dir", str(fed.data_dir), *args],
        cwd=ROOT, env=fed.env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.system
@pytest.mark.slow
async def test_the_demo_fills_the_regencies_until_the_national_view_has_them(tmp_path: Path) -> None:
    fed = Federation(tmp_path, ["3301", "7471"])
    fed.up()
    try:
        token = fed.tokens()["NATIONAL_TOKEN"]
        done = await asyncio.to_thread(demo, fed, "--months", "1")
        assert done.returncode == 0, done.stdout + done.stderr
        # the clocks started on 2026-03-20 (the Federation's PULIH_CLOCK_START): April is the first month
        assert "every regency's 2026-04 has arrived" in done.stdout, done.stdout
        listed = await national(fed, "/v1/national/regencies", token)
        assert listed["last_closed_month"] == "2026-04"
        assert {(r["code"], r["last_period"], r["silent"]) for r in listed["regencies"]} == {
            ("3301", "2026-04", False),
            ("7471", "2026-04", False),
        }
        april = {"from": "2026-04", "to": "2026-04"}
        rows = (await national(fed, "/v1/national/indicators", token, level="regency", **april))["rows"]
        screened = {r["org_unit"]: r for r in rows if r["indicator"] == "clients_screened"}
        assert screened["3301"]["value"] >= 5 and screened["3301"]["exact"], screened  # Cilacap: ~24 a month
        assert any(r["hidden"] for r in rows if r["org_unit"] == "7471"), "Kendari: small counts hidden"

        table = next(line for line in done.stdout.splitlines() if "│ 3301 Cilacap" in line)
        assert f"{screened['3301']['value']} · " in table, table  # the national view's figure

        again = await asyncio.to_thread(demo, fed, "--months", "1")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "every regency's 2026-05 has arrived" in again.stdout, again.stdout

        assert "hub stopped" in fed.control("hub-down")
        held = await asyncio.to_thread(demo, fed, "--months", "1")
        assert held.returncode == 0, held.stdout + held.stderr
        assert "the hub is held" in held.stdout and "not yet" in held.stdout, held.stdout
        assert (fed.data_dir / "clock").read_text().strip() == "2026-07-01"
        assert fed.interrupt() == 0, fed.output()[-3000:]

        del fed.env["PULIH_CLOCK_START"]  # the clocks start where the demo left them
        fed.up()
        assert "the manual clocks start on 2026-07-01" in fed.output()
        deadline = asyncio.get_running_loop().time() + 120
        while True:  # June waited in the regencies' streams while the hub was held
            listed = await national(fed, "/v1/national/regencies", fed.tokens()["NATIONAL_TOKEN"])
            if {r["last_period"] for r in listed["regencies"]} == {"2026-06"}:
                break
            assert asyncio.get_running_loop().time() < deadline, listed
            await asyncio.sleep(1)
        assert listed["last_closed_month"] == "2026-06"
    finally:
        for regency in fed.regencies.values():
            await regency.http.aclose()
        code = fed.interrupt()
    assert code == 0, fed.output()[-3000:]


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("2026-11-26 08:16:38,452 INFO [3301/rehab trace=-] pulih.service: connected to NATS\n", False),
        (
            "2026-11-26 08:16:54,892 \x1b[32mINFO\x1b[0m     - IBM_3302 | ibm.3302.outreach.> | Received\n",
            False,
        ),
        (
            "2026-11-26 08:21:34,748 WARNING [national/reporting trace=-] pulih.batch_consumer: failed\n",
            True,
        ),
        ("2026-11-26 08:21:34,810 \x1b[33mWARNING\x1b[0m  -      |            - Connection broken\n", True),
        ("nats.errors.UnexpectedEOF: nats: unexpected EOF\n", True),
        ("Traceback (most recent call last):\n", True),
    ],
)
def test_up_shows_a_services_warnings_and_errors_not_its_info_lines(line: str, shown: bool) -> None:
    assert for_terminal(line) is shown
