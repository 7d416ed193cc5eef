"""Schemathesis against every service: its answers are what its OpenAPI document says.

Each service (a case of its own) runs under ``uvicorn`` on its own SQLite store, with a real
``nats-server`` of its own (so ``/readyz`` is ready and commands' events are published), its clock
manual. Schemathesis reads the service's ``/openapi.json`` and runs every check (``--checks all``:
no server error, every status code, content type, header and body documented, schema-invalid
requests refused, a ``405`` with an ``Allow`` naming every method of the path…) on a bounded
number of generated requests per operation, as a facilitator. The test fails on any failure but
the known gaps of request schemas listed in :data:`KNOWN_RULE_GAPS`, and shows schemathesis's
report of it.

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


_RANGE = "`from` must not be after `to`, nor the range longer than 260 months (across parameters)"
_TODAY = "not after the regency's today (the day, which no schema says)"

KNOWN_RULE_GAPS: dict[tuple[str, str], str] = {
    ("POST /v1/units", "ST202"): "a unit's name must hold a letter, a rule its schema does not say",
    ("GET /v1/indicators", "ST202"): "`id` must fit its `level`, week 53 be in a year that has one; "
    + _RANGE,
    ("GET /v1/qol/summary", "ST202"): _RANGE,
    ("GET /v1/referrals/summary", "ST202"): _RANGE,
    ("GET /v1/units/phases", "ST202"): _RANGE,
    ("POST /v1/units/{unit_id}/agents", "ST202"): f"`trained_on` is {_TODAY}",
    ("POST /v1/units/{unit_id}/activities", "ST202"): f"the agent is active and `held_on` {_TODAY}",
    ("POST /v1/sync", "ST201"): "an item without an item's shape is refused in the 200's own entry (422 "
    "`invalid`), so that the device's other items apply; the schema says what an item is",
    ("Stateful tests", "ST202"): f"a command's dates are {_TODAY} nor before the record they follow "
    "(a consent expires after it is given): the state the calls made and the day",
}
"""Schema-valid requests refused (ST202) or schema-invalid ones taken (ST201) because the
services' request schemas do not yet say a rule the service checks (issue 14, "rules the schema
can say" and "strict types"). Each is a gap in a request schema, not an undocumented answer; the
test tolerates only these, and says which it met. Remove an entry once its schema says the rule."""

_CODE = re.compile(r"^- (ST\d{3}) ", re.MULTILINE)


def schemathesis(service: Running, bearer: str, report_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run ``schemathesis run --checks all`` against ``service``, bounded; its JUnit report goes
    to ``report_dir/junit.xml``."""
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--no-color",
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
    return subprocess.run(command, cwd=report_dir, capture_output=True, text=True, timeout=900, check=False)


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
    found = failures(junit)
    for gap in sorted(found & KNOWN_RULE_GAPS.keys()):
        warnings.warn(f"schemathesis: {gap[0]} {gap[1]}: {KNOWN_RULE_GAPS[gap]}", stacklevel=1)
    unexpected = found - KNOWN_RULE_GAPS.keys()
    assert not unexpected, f"===== {service.name}: {sorted(unexpected)}\n{run.stdout[-15000:]}"
