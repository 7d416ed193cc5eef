"""The simulator's scenario file (issue 12: "the rates live in one readable scenario file that a
user can copy and edit").

- The default scenario loads, and says where its numbers come from: the seeds' villages, 3-5
  agents a unit, about 8 clients a unit.
- A copy edited by a user is read; a wrong, missing or unknown key is refused naming the key,
  and shares that do not add up to 1 name their table.
- ``pulih simulate --scenario`` with a wrong file says which key, and exits 1 without a traceback.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest

from pulih.kit.simulate.scenario import ScenarioError, load_scenario

DEFAULT = (files("pulih.kit.simulate") / "scenario.toml").read_text()


def test_the_default_scenario_is_calibrated_on_the_seeds() -> None:
    scenario = load_scenario()
    assert scenario.villages_of("3301")[:3] == ["Slarang", "Bulupayung", "Planjan"]  # Cilacap's pilot
    assert scenario.villages_of("7471")[0] == "Kampung Salo"
    assert scenario.units.agents == (3, 5)
    assert scenario.risk.low > scenario.risk.moderate > scenario.risk.high
    for figure in ("2,396", "306", "Kendari", "5 village residents"):
        assert figure in DEFAULT, f"the default scenario does not say where {figure!r} comes in"


def test_a_copy_edited_by_a_user_is_read(tmp_path: Path) -> None:
    copy = tmp_path / "mine.toml"
    copy.write_text(DEFAULT.replace("per_unit_month = 1.2", "per_unit_month = 3"))
    assert load_scenario(copy).clients.per_unit_month == 3


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (("attendance = 0.85", "attendance = 1.5"), "sessions.attendance"),
        (("attendance = 0.85", "atendance = 0.85"), "sessions.atendance"),
        (("weekly_dropout = 0.018\n", ""), "sessions.weekly_dropout: Field required"),
        (("agents = [3, 5]", "agents = [5, 3]"), "units"),
        (("low = 0.55", "low = 0.65"), "[risk] low, moderate, high add up to 1.1"),
        (("accepted = 0.75", "accepted = 0.7"), "[clinic]"),
        (("[whoqol]", "[whoqol"), "not TOML"),
    ],
)
def test_a_wrong_key_is_named(tmp_path: Path, edit: tuple[str, str], said: str) -> None:
    copy = tmp_path / "wrong.toml"
    assert edit[0] in DEFAULT
    copy.write_text(DEFAULT.replace(*edit, 1))
    with pytest.raises(ScenarioError) as refused:
        load_scenario(copy)
    assert said in str(refused.value) and str(copy) in str(refused.value)


def test_pulih_simulate_names_the_wrong_key_without_a_traceback(tmp_path: Path) -> None:
    copy = tmp_path / "wrong.toml"
    copy.write_text(DEFAULT.replace("attendance = 0.85", "attendance = lots"))
    run = subprocess.run(
        [sys.executable, "-m", "pulih.kit.cli", "simulate", "--scenario", str(copy)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 1
    assert "not TOML" in run.stderr and str(copy) in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "pulih.kit.cli", "simulate", "--scenario", str(tmp_path / "none.toml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 1 and "cannot be read" in missing.stderr, missing.stderr
