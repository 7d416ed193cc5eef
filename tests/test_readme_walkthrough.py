"""The README's first command and walkthrough, run as a new user would: `pulih up`, then the
walkthrough's bash block verbatim (outreach, rehab, and the referral loop closed by the reference
clinic), then Ctrl-C and a restart that still has the data."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from system_support import stream_messages

from pulih.kit.local_regency import installed_services
from pulih.kit.nats_server import free_port

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[1]


def walkthrough_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Five-minute walkthrough", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "the README walkthrough has no bash block"
    return block.group(1)


class Regency:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.nats_port = free_port()
        # every installed service on a free port, so a regency already running here is no obstacle
        self.ports = {service.name: free_port() for service in installed_services()}
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")},
            "PULIH_DATA_DIR": str(data_dir),
            "PULIH_NATS_PORT": str(self.nats_port),
            **{f"PULIH_{name.upper()}_PORT": str(port) for name, port in self.ports.items()},
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        self.runs = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.data_dir / f"up-{self.runs}.log"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def up(self, timeout: float = 60) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.runs += 1
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pulih.kit.cli", "up"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while "is up" not in self.log.read_text():
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)

    def interrupt(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(30)


def check_every_event_names_its_chain(nats_url: str) -> None:
    """Every event of the walkthrough has a correlationid; every event another caused names that
    one as its causationid; one request's events share its correlationid, and the referral loop
    (referral, the clinic's answers, referral's and rehab's reactions) is one chain."""
    messages = asyncio.run(stream_messages(nats_url, "ibm.3301.>"))
    events = [json.loads(m.data) for m in messages]
    by_id = {e["id"]: e for e in events}
    for e in events:
        assert e.get("correlationid"), f"{e['type']} has no correlationid"
        if e.get("causationid"):
            assert e["causationid"] in by_id, f"{e['type']} names an unknown cause"

    def one(name: str) -> dict[str, Any]:
        found = [e for e in events if e["type"] == f"pulih.{name}.v1"]
        assert len(found) == 1, f"{name}: {len(found)} events"
        return found[0]

    enrolled = one("rehab.ClientEnrolled")
    skrining = next(e for e in events if e["data"].get("phase") == "skrining")
    assert skrining["correlationid"] == enrolled["correlationid"]
    referred, closed = one("referral.ReferredToClinic"), one("referral.ReferralClosed")
    completed = one("clinic.TreatmentCompleted")
    assert closed["causationid"] == completed["id"]
    resumed = [e for e in events if e.get("causationid") == closed["id"]]
    assert resumed and all(e["source"].endswith("/rehab") for e in resumed)
    loop = [one("clinic.ReferralAccepted"), one("clinic.ClientAttended"), completed, closed, *resumed]
    assert {e["correlationid"] for e in loop} == {referred["correlationid"]}


def test_pulih_up_and_the_readme_walkthrough(tmp_path: Path) -> None:
    regency = Regency(tmp_path / "regency")
    regency.up()
    try:
        output = regency.log.read_text()
        for service in regency.ports:
            assert f"{service:<10} {regency.url(service)}" in output
        assert "FACILITATOR_TOKEN=" in output
        script = walkthrough_block().replace("source .venv/bin/activate\n", "")
        env = {
            **regency.env,
            "OUTREACH": regency.url("outreach"),
            "REHAB": regency.url("rehab"),
            "REFERRAL": regency.url("referral"),
            "NATS_URL": f"nats://127.0.0.1:{regency.nats_port}",
        }
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert '"overall_risk":"moderate"' in run.stdout
        assert '"recommendation":"ibm_programme"' in run.stdout
        event_lines = [line for line in run.stdout.splitlines() if "pulih.outreach." in line]
        assert [line.split()[1] for line in event_lines] == [
            "pulih.outreach.UnitEstablished.v1",
            "pulih.outreach.AgentRegistered.v1",
            "pulih.outreach.ClientRegistered.v1",
            "pulih.outreach.ConsentRecorded.v1",
            "pulih.outreach.ClientScreened.v1",
        ]
        assert '"phase":"penerimaan_awal","status":"active"' in run.stdout
        assert '"kind":"session_due"' in run.stdout and "intervensi" in run.stdout
        rehab_lines = [line for line in run.stdout.splitlines() if "pulih.rehab." in line]
        assert [line.split()[1] for line in rehab_lines] == [
            "pulih.rehab.ClientEnrolled.v1",
            "pulih.rehab.PhaseCompleted.v1",
            "pulih.rehab.QualityOfLifeAssessed.v1",
            "pulih.rehab.SessionHeld.v1",
        ]
        assert "answered 1 referral(s)" in run.stdout
        assert '"status":"completed"' in run.stdout and '"back_referral":true' in run.stdout
        loop_lines = [
            line for line in run.stdout.splitlines() if re.search(r"pulih\.(referral|clinic)\.", line)
        ]
        assert [line.split()[1] for line in loop_lines] == [
            "pulih.referral.ReferredToClinic.v1",
            "pulih.referral.ReferralClosed.v1",
            "pulih.clinic.ReferralAccepted.v1",
            "pulih.clinic.ClientAttended.v1",
            "pulih.clinic.TreatmentCompleted.v1",
        ]
        assert re.search(r"enrolment \S+ is in bina_lanjut", run.stdout), run.stdout[-2000:]
        for line in event_lines + rehab_lines + loop_lines:
            assert "Budi" not in line and "3301011505900001" not in line
        check_every_event_names_its_chain(f"nats://127.0.0.1:{regency.nats_port}")
    finally:
        code = regency.interrupt()
    assert code == 0
    assert "stopped." in regency.log.read_text()

    regency.up()  # the data survives a restart
    try:
        token = re.search(r"FACILITATOR_TOKEN=(\S+)", (regency.data_dir / "tokens.env").read_text())
        assert token is not None
        units = httpx.get(
            f"{regency.url('outreach')}/v1/units", headers={"Authorization": f"Bearer {token.group(1)}"}
        ).json()
        assert [u["name"] for u in units] == ["Unit IBM Tritih Kulon"]
    finally:
        assert regency.interrupt() == 0
