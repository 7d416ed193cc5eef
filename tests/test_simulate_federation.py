"""``pulih simulate --federation`` (issue 12: "and, with a flag, every regency of the local
federation"): against ``pulih federation up`` with two regencies of two provinces (3301 Cilacap,
7471 Kendari), started without ``PULIH_CLOCK`` (a local federation's clocks are manual unless told
otherwise), one month of two units in each.

- It ends once the national view has the simulated month of both regencies; the hub's
  ``NATIONAL`` stream holds that month of each once (closed once every event was counted: no
  revision).
- The regencies' clinics answered over NATS, as their own users (the federation's secrets): their
  answers are on the clinics' subjects of each regency's stream.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import nats
import pytest
from test_federation_local import ROOT, Federation, national, national_aggregates

from pulih.contracts import stream_name
from pulih.kit.federation import names
from pulih.kit.federation.layout import nats_url, saved_layout
from pulih.kit.federation.secrets import Secrets

pytestmark = [pytest.mark.system, pytest.mark.slow]

CODES = ["3301", "7471"]
BUSY = (
    (files("pulih.kit.simulate") / "scenario.toml")
    .read_text()
    .replace("per_unit_month = 1.2", "per_unit_month = 4")
    .replace("low = 0.55\n", "low = 0.4\n")
    .replace("high = 0.10\n", "high = 0.25\n")
)
"""The default scenario with more clients, more of them at high risk (referred to a clinic)."""


async def _subjects(fed: Federation, code: str) -> dict[str, int]:
    """The regency's stream: messages by subject (read as its services log in)."""
    place = saved_layout(fed.data_dir).regency(code)
    password = Secrets.load_or_create(fed.data_dir / "secrets.json").service(code)
    nc = await nats.connect(nats_url(names.SERVICE_USER, password, place.nats_port), connect_timeout=3)
    try:
        info = await nc.jetstream().stream_info(stream_name(code), subjects_filter=f"ibm.{code}.>")
        return dict(info.state.subjects or {})
    finally:
        await nc.close()


async def test_simulate_fills_every_regency_of_the_federation_until_the_national_view_has_them(
    tmp_path: Path,
) -> None:
    fed = Federation(tmp_path, CODES)
    del fed.env["PULIH_CLOCK"]  # manual by default
    scenario = tmp_path / "busy.toml"
    scenario.write_text(BUSY)
    fed.up()
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "pulih.kit.cli", "simulate", "--federation", str(fed.data_dir),
             "--units", "2", "--months", "1", "--seed", "3", "--scenario", str(scenario)],
            cwd=ROOT, env=fed.env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        said = done.stdout + done.stderr
        assert done.returncode == 0, said
        assert "2026-04" in said and "Cilacap" in said and "Kendari" in said, said
        # the clocks started on 2026-03-20: April is the simulated month, and the national view has it
        listed = await national(fed, "/v1/national/regencies", fed.tokens()["NATIONAL_TOKEN"])
        assert {(r["code"], r["last_period"]) for r in listed["regencies"]} == {
            ("3301", "2026-04"),
            ("7471", "2026-04"),
        }
        assert sorted(await national_aggregates(fed.tokens()["HUB_NATS_URL"])) == [
            ("3301", "2026-04", 1),
            ("7471", "2026-04", 1),
        ]
        for code in CODES:
            subjects = await _subjects(fed, code)
            answers = {s: n for s, n in subjects.items() if s.startswith(f"ibm.{code}.clinic.")}
            assert answers, f"no clinic answered over NATS in r{code}: {subjects}"
            assert subjects[names.aggregate_subject(code)] == 1, subjects
    finally:
        for regency in fed.regencies.values():
            await regency.http.aclose()
        code = fed.interrupt()
    assert code == 0, fed.output()[-3000:]
