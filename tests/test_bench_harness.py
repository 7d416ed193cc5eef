"""``./dev bench``'s harness (bench/run.py): a quick run prints JSON lines and nothing else on
stdout, each a figure with its limit and ratio; a script that is missing gives a row that says so
instead of stopping the run; the issue's targets are judged from the figures."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "bench" / "run.py"


def harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run_under_test", RUN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_quick_run_prints_only_json_figures_with_their_keys(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--json", "--only", "limits", "--logs", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert {row["metric"] for row in rows} == {
        "limits.publish_sequential",
        "limits.publish_256_in_flight",
        "limits.pull_consume_ack",
        "limits.latency_p50_ms",
        "limits.latency_p99_ms",
    }
    for row in rows:
        assert {"metric", "value", "unit", "limit", "ratio", "target", "met"} <= row.keys()
        assert row["section"] == "limits"
        assert row["value"] > 0, row
    assert (tmp_path / "limits.log").exists()


def test_a_script_that_is_missing_gives_a_row_that_says_so(tmp_path: Path) -> None:
    run = harness()
    found = run.load_measure(tmp_path / "relay_throughput.py")
    assert isinstance(found, str) and found.startswith("not available")
    (tmp_path / "no_measure.py").write_text("def main() -> None:\n    pass\n")
    assert "no async def measure" in run.load_measure(tmp_path / "no_measure.py")


def test_another_scripts_measure_gets_quick_or_the_tiny_sizes_it_takes() -> None:
    run = harness()

    async def with_quick(*, quick: bool = False, progress: object = None) -> list[dict[str, object]]:
        return []

    async def with_sizes(*, seconds: float = 10, stores: tuple[str, ...] = ()) -> list[dict[str, object]]:
        return []

    assert run.measure_kwargs(with_quick, quick=True) == {"quick": True, "progress": run.say}
    assert run.measure_kwargs(with_sizes, quick=True) == {"seconds": 1.0, "stores": ("sqlite",)}
    assert run.measure_kwargs(with_sizes, quick=False) == {}


def test_targets_are_judged_from_the_figures() -> None:
    run = harness()

    def row(metric: str, value: float | None, unit: str, ratio: float | None = None) -> dict[str, object]:
        return {"metric": metric, "value": value, "unit": unit, "limit": None, "ratio": ratio}

    assert run.judged(row("e2e.single.p99_ms", 150.0, "ms"))["met"] is True
    assert run.judged(row("e2e.sync.p99_ms", 250.0, "ms"))["met"] is False
    assert run.judged(row("idle.rss_mb", 401.0, "MB"))["met"] is False
    assert run.judged(row("api.sqlite.p99_ms", 12.0, "ms"))["met"] is True
    assert run.judged(row("pipeline.sync.events_per_s", None, ""))["met"] is None
    assert run.judged(row("limits.publish_sequential", 5000.0, "events/s"))["target"] is None
