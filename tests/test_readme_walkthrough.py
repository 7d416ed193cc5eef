"""The README's first command and walkthrough, run as a new user would: `pulih up`, then the
walkthrough's bash block verbatim, then Ctrl-C and a restart that still has the data."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

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
        self.outreach_port = free_port()
        self.referral_port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")},
            "PULIH_DATA_DIR": str(data_dir),
            "PULIH_NATS_PORT": str(self.nats_port),
            "PULIH_OUTREACH_PORT": str(self.outreach_port),
            "PULIH_REFERRAL_PORT": str(self.referral_port),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        self.runs = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.data_dir / f"up-{self.runs}.log"

    @property
    def outreach(self) -> str:
        return f"http://127.0.0.1:{self.outreach_port}"

    @property
    def referral(self) -> str:
        return f"http://127.0.0.1:{self.referral_port}"

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


def test_pulih_up_and_the_readme_walkthrough(tmp_path: Path) -> None:
    regency = Regency(tmp_path / "regency")
    regency.up()
    try:
        output = regency.log.read_text()
        assert f"outreach   {regency.outreach}" in output
        assert "FACILITATOR_TOKEN=" in output
        script = walkthrough_block().replace("source .venv/bin/activate\n", "")
        env = {
            **regency.env,
            "OUTREACH": regency.outreach,
            "NATS_URL": f"nats://127.0.0.1:{regency.nats_port}",
        }
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
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
        assert "Budi" not in "\n".join(event_lines) and "3301011505900001" not in "\n".join(event_lines)
    finally:
        code = regency.interrupt()
    assert code == 0
    assert "stopped." in regency.log.read_text()

    regency.up()  # the data survives a restart
    try:
        token = re.search(r"FACILITATOR_TOKEN=(\S+)", (regency.data_dir / "tokens.env").read_text())
        assert token is not None
        units = httpx.get(
            f"{regency.outreach}/v1/units", headers={"Authorization": f"Bearer {token.group(1)}"}
        ).json()
        assert [u["name"] for u in units] == ["Unit IBM Tritih Kulon"]
    finally:
        assert regency.interrupt() == 0
