"""Fixtures of the chaos suite: a real nats-server and services as real processes, and the
figures each case records (printed at the end of the run; tests/chaos/README.md keeps a copy)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chaos_support import ChaosRegency

from pulih.kit.nats_server import NatsServer
from pulih.kit.testing import REGENCY

FIGURES: list[dict[str, Any]] = []


@pytest.fixture
def regency(tmp_path: Path) -> Iterator[ChaosRegency]:
    nats = NatsServer(tmp_path / "nats", server_name="pulih-chaos", domain=f"r{REGENCY}").start()
    chaos = ChaosRegency(tmp_path, nats)
    try:
        yield chaos
    finally:
        chaos.close()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """What a case measured: operations, faults, lost, duplicated, time to recover."""
    measured: dict[str, Any] = {"case": request.node.name}
    yield measured
    FIGURES.append(measured)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("chaos figures")
    for measured in FIGURES:
        terminalreporter.write_line(
            "  ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in measured.items())
        )
