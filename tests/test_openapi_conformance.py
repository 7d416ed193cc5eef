"""Schemathesis against every service: its answers are what its OpenAPI document says.

Each service (a case of its own) runs under ``uvicorn`` on its own SQLite store, with a real
``nats-server`` of its own (so ``/readyz`` is ready and commands' events are published), its clock
manual. Schemathesis reads the service's ``/openapi.json`` and runs every check (``--checks all``:
no server error, every status code, content type, header and body documented, schema-invalid
requests refused, a ``405`` with an ``Allow`` naming every method of the path…) on a bounded
number of generated requests per operation, as a facilitator. The test fails on any failure, and
shows schemathesis's report of it. A schema-valid request may be refused only for a rule no
OpenAPI document can say (today's date, two fields or parameters compared, what earlier requests
stored): :mod:`schemathesis_rules` lists each, by operation and error code, with its reason, and
lets schemathesis tolerate that ``422`` and nothing else; the test warns of each it met.

About 1,300 generated requests for outreach, fewer for the others, and two CPU-minutes in all
(schemathesis's own CPU is most of it): a minute or two on an idle 2-core machine, far longer on
a loaded one, hence the generous deadlines. The national view (which needs the hub's streams) is
not run here; ``tests/test_openapi_documents.py`` checks its document.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest
import schemathesis_rules

from pulih.kit.auth import Role
from pulih.kit.nats_server import NatsServer, free_port, stop_process
from pulih.kit.testing import JWT_SECRET, REGENCY, token

pytestmark = [pytest.mark.slow, pytest.mark.system]

MAX_EXAMPLES = 25
"""Generated requests per operation and phase (the issue's bound)."""

SEED = 20250115
"""A fixed seed: CI runs the same requests every time (change it to explore others)."""

SERVICES = ("outreach", "rehab", "referral", "reporting")


@dataclass(frozen=True)
class Running:
    """A service under uvicorn: its name, base URL and log file."""

    name: str
    url: str
    log: Path


def _start(name: str, data_dir: Path, nats_url: str) -> tuple[subprocess.Popen[bytes], Running]:
    port = free_port()
    data_dir.mkdir(parents=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PULIH_", "NATS_", "DATABASE_"))},
        "PULIH_ENV": "development",
        "PULIH_REGENCY": REGENCY,
        "PULIH_DATA_DIR": str(data_dir),
        "NATS_URL": nats_url,
        "PULIH_JWT_SECRET": JWT_SECRET,
        "PULIH_CLOCK": "manual",
        "PULIH_CLOCK_START": "2025-01-15",
        "PULIH_SCHEDULER_SECONDS": "3600",
        "PULIH_RELAY_POLL_SECONDS": "0.2",
    }
    log = data_dir / "uvicorn.log"
    command = [sys.executable, "-m", "uvicorn", f"pulih.{name}.app:app", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    return process, Running(name, f"http://127.0.0.1:{port}", log)


def _wait_ready(service: Running, process: subprocess.Popen[bytes], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{service.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{service.name} not ready: {service.log.read_text()[-3000:]}")
        time.sleep(0.2)


@pytest.fixture(params=SERVICES)
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Running]:
    """One service, ready, on a NATS server of its own (one case a service, so that a parallel
    run spreads them)."""
    nats = NatsServer(tmp_path / "nats", server_name="pulih-conformance", domain=f"r{REGENCY}").start()
    process: subprocess.Popen[bytes] | None = None
    try:
        process, running = _start(request.param, tmp_path / request.param, nats.url)
        _wait_ready(running, process)
        yield running
    finally:
        if process is not None:
            stop_process(process, timeout=15)
        nats.stop()


_CODE = re.compile(r"^- (ST\d{3}) ", re.MULTILINE)


def schemathesis(service: Running, bearer: str, report_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run ``schemathesis run --checks all`` against ``service``, bounded, with the rules of
    :mod:`schemathesis_rules` (its configuration for the service's operations, and its check);
    its JUnit report goes to ``report_dir/junit.xml``."""
    paths = httpx.get(f"{service.url}/openapi.json", timeout=30).json()["paths"]
    config = report_dir / "schemathesis.toml"
    config.write_text(schemathesis_rules.configuration(f"{m.upper()} {p}" for p in paths for m in paths[p]))
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--no-color",
        "--config-file",
        str(config),
        "run",
        f"{service.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--header",
        f"Authorization: Bearer {bearer}",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--report",
        "junit",
        "--report-junit-path",
        str(report_dir / "junit.xml"),
    ]
    hooks = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": schemathesis_rules.__file__,
        schemathesis_rules.MET: str(report_dir / "rules-met.tsv"),
    }
    return subprocess.run(
        command, cwd=report_dir, env=hooks, capture_output=True, text=True, timeout=900, check=False
    )


def failures(junit: Path) -> set[tuple[str, str]]:
    """(operation, check code) of every failure in a schemathesis JUnit report; an error (the run
    could not test an operation) counts as the code ``error``."""
    found = set()
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        operation = case.get("name", "")
        for failure in case.iter("failure"):
            codes = _CODE.findall(failure.text or "") or [failure.get("message", "failure")]
            found |= {(operation, code) for code in codes}
        found |= {(operation, "error") for _ in case.iter("error")}
    return found


def test_every_answer_of_the_service_is_documented(service: Running, tmp_path: Path) -> None:
    report = tmp_path / "report"
    report.mkdir()
    run = schemathesis(service, token(Role.FACILITATOR), report)
    junit = report / "junit.xml"
    assert junit.exists(), (
        f"{service.name}: schemathesis exited {run.returncode}\n{run.stdout[-5000:]}{run.stderr}"
    )
    for operation, code in sorted(schemathesis_rules.met(report / "rules-met.tsv")):
        reason = schemathesis_rules.RULES[operation][code]
        warnings.warn(f"schemathesis: {operation} refused with 422 {code}: {reason}", stacklevel=1)
    found = failures(junit)
    assert not found, f"===== {service.name}: {sorted(found)}\n{run.stdout[-15000:]}"
