"""The README's first command and walkthrough, run as a new user would: `pulih up`, then the
walkthrough's bash block verbatim (outreach, rehab, and the referral loop closed by the reference
clinic), twice in a row on the same regency, then Ctrl-C and a restart that still has the data;
and `pulih events tail --last N`, which the walkthrough reads its events with."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.js.api import StreamConfig
from system_support import free_regency_env, stream_messages

from pulih.contracts import regency_subjects, stream_name
from pulih.kit import cli
from pulih.kit.nats_server import NatsServer

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
        # every installed service on a free port, so a regency already running here is no obstacle
        self.nats_port, self.ports, self.env = free_regency_env(data_dir)
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


def event_lines(stdout: str, services: str) -> list[str]:
    """The lines ``pulih events tail`` printed for events of ``services`` (a regex alternative):
    time, type, subject, data. (The reference clinic's "noted …" lines name types too.)"""
    line = re.compile(rf"^\d{{4}}-\d\d-\d\dT\S*\s+pulih\.({services})\.")
    return [text for text in stdout.splitlines() if line.match(text)]


def check_walkthrough_output(stdout: str) -> str:
    """The walkthrough's output shows each step's answer and its events (the newest ones, those
    of this run); return the id of the client it registered."""
    assert '"overall_risk":"moderate"' in stdout
    assert '"recommendation":"ibm_programme"' in stdout
    outreach_lines = event_lines(stdout, "outreach")
    assert [line.split()[1] for line in outreach_lines] == [
        "pulih.outreach.UnitEstablished.v1",
        "pulih.outreach.AgentRegistered.v1",
        "pulih.outreach.ClientRegistered.v1",
        "pulih.outreach.ConsentRecorded.v1",
        "pulih.outreach.ClientScreened.v1",
    ], "\n".join(outreach_lines)
    assert '"phase":"penerimaan_awal","status":"active"' in stdout
    assert '"kind":"session_due"' in stdout and "intervensi" in stdout
    rehab_lines = event_lines(stdout, "rehab")
    assert [line.split()[1] for line in rehab_lines] == [
        "pulih.rehab.ClientEnrolled.v1",
        "pulih.rehab.PhaseCompleted.v1",
        "pulih.rehab.QualityOfLifeAssessed.v1",
        "pulih.rehab.SessionHeld.v1",
    ], "\n".join(rehab_lines)
    assert "answered 1 referral(s)" in stdout
    assert '"status":"completed"' in stdout and '"back_referral":true' in stdout
    loop_lines = event_lines(stdout, "referral|clinic")
    assert [line.split()[1] for line in loop_lines] == [
        "pulih.referral.ReferredToClinic.v1",
        "pulih.referral.ReferralClosed.v1",
        "pulih.clinic.ReferralAccepted.v1",
        "pulih.clinic.ClientAttended.v1",
        "pulih.clinic.TreatmentCompleted.v1",
    ], "\n".join(loop_lines)
    assert re.search(r"enrolment \S+ is in bina_lanjut", stdout), stdout[-2000:]
    # step 13: reporting counted the unit's month from the events alone
    assert (
        "{'clients_registered': 1, 'clients_screened': 1, 'screened_moderate': 1, 'clients_enrolled': 1, "
        "'clients_active': 1, 'sessions_held': 1, 'sessions_attended': 1, 'referrals_made': 1, "
        "'referrals_accepted': 1, 'referrals_completed': 1, 'back_referrals': 1}"
    ) in stdout, stdout[-2000:]
    for line in outreach_lines + rehab_lines + loop_lines:
        assert "Budi" not in line and not re.search(r"330101\d{10}", line)  # no name, no NIK
    client_id = outreach_lines[2].split("subject=")[1].split()[0]
    assert {line.split("subject=")[1].split()[0] for line in outreach_lines[2:]} == {client_id}
    assert all(f'"client_id":"{client_id}"' in line for line in rehab_lines)
    return client_id


def test_pulih_up_and_the_readme_walkthrough_run_twice(tmp_path: Path) -> None:
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
            "REPORTING": regency.url("reporting"),
            "NATS_URL": f"nats://127.0.0.1:{regency.nats_port}",
        }

        def walk() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )

        first = walk()
        assert first.returncode == 0, first.stdout + first.stderr
        first_client = check_walkthrough_output(first.stdout)
        check_every_event_names_its_chain(f"nats://127.0.0.1:{regency.nats_port}")

        second = walk()  # the same regency: a new unit and a new person, the clinic already listed
        assert second.returncode == 0, second.stdout + second.stderr
        second_client = check_walkthrough_output(second.stdout)
        assert second_client != first_client  # --last showed this run's events, not the first run's
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
        ).json()["items"]
        assert [u["name"] for u in units] == ["Unit IBM Tritih Kulon"] * 2  # one per run
    finally:
        assert regency.interrupt() == 0


async def fill_stream(nats_url: str) -> None:
    """Stream IBM_3301 with one rehab event, then outreach events number 1 to 300."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name=stream_name("3301"), subjects=[regency_subjects("3301")]))

        async def publish(subject: str, type_: str, n: int) -> None:
            event = {"time": "2026-03-02T01:00:00Z", "type": type_, "subject": f"n{n}", "data": {"n": n}}
            await js.publish(subject, json.dumps(event).encode())

        await publish("ibm.3301.rehab.client_enrolled", "pulih.rehab.ClientEnrolled.v1", 0)
        for n in range(1, 301):
            await publish("ibm.3301.outreach.unit_established", "pulih.outreach.UnitEstablished.v1", n)
    finally:
        await nc.close()


def test_events_tail_last_prints_the_newest_events_of_the_stream(
    nats_server: NatsServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    asyncio.run(fill_stream(nats_server.url))
    monkeypatch.setenv("NATS_URL", nats_server.url)
    monkeypatch.setenv("PULIH_REGENCY", "3301")
    monkeypatch.setenv("PULIH_DATA_DIR", str(tmp_path))

    def shown(*args: str) -> list[str]:
        assert cli.main(["events", "tail", *args]) == 0
        return [line.split("subject=")[1].split()[0] for line in capsys.readouterr().out.splitlines()]

    assert shown("--last", "3") == ["n298", "n299", "n300"]  # newest last
    assert shown("--last", "100") == [f"n{n}" for n in range(201, 301)]
    # one rehab event, 300 outreach events after it: the look-back reaches the start of the stream
    assert shown("--subject", "ibm.3301.rehab.>", "--last", "2") == ["n0"]
    assert shown("--subject", "ibm.3301.referral.>", "--last", "2") == []
    with pytest.raises(SystemExit):
        cli.main(["events", "tail", "--all", "--last", "3"])
    assert "goes with neither --all nor --limit" in capsys.readouterr().err
