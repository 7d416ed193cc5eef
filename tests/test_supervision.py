"""``pulih up`` supervises what it started (issue 15, item 3): a service killed with -9 is started
again on its port with its data, the embedded nats-server too (and a command made afterwards still
gets its event into the stream), Ctrl-C still stops everything with exit 0, and a service that
crashes at once, again and again, makes ``pulih up`` give up with a message that names it and its
log, and exit non-zero."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from system_support import free_regency_env, stream_messages

from pulih.kit.programme import DEFAULT_PROGRAMME

pytestmark = [pytest.mark.system, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


class Up:
    """``pulih up`` as a subprocess on free ports, its output in a file."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        self.nats_port, self.ports, self.env = free_regency_env(data_dir, **env)
        self.log = data_dir.parent / "up.log"
        self.process: subprocess.Popen[bytes] | None = None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def start(self, timeout: float = 90) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pulih.kit.cli", "up"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_for("is up", timeout)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        """Until the output has a line matching the regular expression ``text``."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while not re.search(text, self.output()):
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output()}"
            time.sleep(0.1)

    def pids(self) -> dict[str, int]:
        """``<data dir>/pids``: name → pid of what runs now."""
        lines = (self.data_dir / "pids").read_text().split("\n")
        return {name: int(pid) for name, pid in (line.split() for line in lines if line)}

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def token(self, name: str) -> str:
        tokens = (self.data_dir / "tokens.env").read_text()
        found = re.search(rf"export {name}=(\S+)", tokens)
        assert found is not None
        return found.group(1)

    def healthy_with_new_pid(self, service: str, old_pid: int, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.pids().get(service)
            if pid is not None and pid != old_pid:
                try:
                    if httpx.get(f"{self.url(service)}/healthz", timeout=1).status_code == 200:
                        return pid
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        raise AssertionError(f"{service} did not come back:\n{self.output()}")

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(60)


@pytest.fixture
def up(tmp_path: Path) -> Up:
    return Up(tmp_path / "data")


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def establish_unit(up: Up, name: str) -> str:
    today = datetime.now(ZoneInfo("Asia/Jakarta")).date().isoformat()
    r = httpx.post(
        f"{up.url('outreach')}/v1/units",
        headers={"Authorization": f"Bearer {up.token('FACILITATOR_TOKEN')}"},
        json={"name": name, "village_code": "3301012001", "established_on": today},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["unit_id"])


def unit_ids(up: Up) -> set[str]:
    r = httpx.get(
        f"{up.url('outreach')}/v1/units",
        headers={"Authorization": f"Bearer {up.token('FACILITATOR_TOKEN')}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return {str(u["unit_id"]) for u in r.json()["items"]}


def units_in_stream(up: Up) -> set[str]:
    messages = asyncio.run(stream_messages(f"nats://127.0.0.1:{up.nats_port}", "ibm.3301.outreach.>"))
    events = [json.loads(m.data) for m in messages]
    return {e["data"]["unit_id"] for e in events if e["type"] == "pulih.outreach.UnitEstablished.v1"}


def test_a_killed_service_and_a_killed_nats_server_are_restarted_and_nothing_is_lost(up: Up) -> None:
    up.start()
    try:
        before = establish_unit(up, "Unit IBM Sebelum")
        pids = up.pids()
        assert set(pids) == {"nats-server", *up.ports}

        # a service dies: it is started again on its port, with its store
        _kill(pids["outreach"])
        up.wait_for(r"outreach exited \(code -9\); restarting in \d+\.\ds \(restart 1\)")
        up.healthy_with_new_pid("outreach", pids["outreach"])
        assert before in unit_ids(up)
        assert up.process is not None and up.process.poll() is None  # the regency still runs
        for other in ("rehab", "referral"):
            assert up.pids()[other] == pids[other]

        # the broker dies: it is started again on its port and store; services reconnect
        _kill(pids["nats-server"])
        up.wait_for(r"nats-server exited \(code -9\); restarting in \d+\.\ds \(restart 1\)")
        up.wait_for(r"nats-server restarted \(pid \d+\)")
        assert up.pids()["nats-server"] != pids["nats-server"]
        after = establish_unit(up, "Unit IBM Sesudah")

        def published() -> bool:
            try:
                return {before, after} <= units_in_stream(up)
            except Exception:  # the services' reconnect may still be under way
                return False

        deadline = time.monotonic() + 60
        while not published():
            assert time.monotonic() < deadline, up.output()
            time.sleep(0.5)
        assert unit_ids(up) >= {before, after}
    finally:
        code = up.stop()
    assert code == 0, up.output()
    out = up.output()
    assert out.rstrip().endswith("stopped."), out
    assert not (up.data_dir / "pids").exists()


def test_a_service_that_crashes_at_once_again_and_again_stops_the_regency(up: Up, tmp_path: Path) -> None:
    # rehab reads its programme file at every start: break it once the regency is up, then kill rehab
    programme = tmp_path / "programme.toml"
    programme.write_text((files("pulih.kit") / "programmes" / f"{DEFAULT_PROGRAMME}.toml").read_text())
    up.env["PULIH_PROGRAMME_FILE"] = str(programme)
    up.start()
    try:
        programme.write_text("this is = not [a programme\n")
        _kill(up.pids()["rehab"])
        assert up.process is not None
        code = up.process.wait(120)
    finally:
        up.stop()
    out = up.output()
    assert code == 1, out
    assert re.search(r"rehab exited \(code -9\); restarting in \d+\.\ds \(restart 1\)", out), out
    delays = re.findall(r"rehab exited \(code 3\); restarting in (\d+\.\d)s", out)
    assert len(delays) >= 3 and all(float(b) == 2 * float(a) for a, b in itertools.pairwise(delays)), out
    log = up.data_dir / "logs" / "rehab.log"
    assert "rehab exited (code 3) 5 times in a row, each within 10s of its start; giving up" in out
    assert f"See its log: {log}" in out
    assert "programme.toml" in log.read_text()  # the log says why
    assert out.rstrip().endswith("stopped."), out
