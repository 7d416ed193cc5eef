"""``pulih events tail`` finds the regency's NATS server as ``pulih up`` does: ``NATS_URL``, else
``PULIH_NATS_PORT`` (kit/tests/test_cli_nats_url.py), else the port the data dir's ``pulih up``
listened on; and when no server answers it says so in one line on stderr, within seconds, with
no traceback."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nats
import pytest
from nats.js.api import StreamConfig

from pulih.contracts import regency_subjects, stream_name
from pulih.kit import cli
from pulih.kit.nats_server import NatsServer, free_port

pytestmark = pytest.mark.system


async def one_event(nats_url: str) -> None:
    """The stream IBM_3301 with one event in it."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name=stream_name("3301"), subjects=[regency_subjects("3301")]))
        event = {"time": "2026-03-02T01:00:00Z", "type": "pulih.x.Y.v1", "subject": "here", "data": {}}
        await js.publish("ibm.3301.outreach.unit_established", json.dumps(event).encode())
    finally:
        await nc.close()


@pytest.fixture
def regency_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ``NATS_URL`` nor ``PULIH_NATS_PORT``; the data dir is the test's tmp dir."""
    monkeypatch.delenv("NATS_URL", raising=False)
    monkeypatch.delenv("PULIH_NATS_PORT", raising=False)
    monkeypatch.setenv("PULIH_REGENCY", "3301")
    monkeypatch.setenv("PULIH_DATA_DIR", str(tmp_path))
    return tmp_path


def tailed(capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert cli.main(["events", "tail", "--last", "1"]) == 0
    return [line.split("subject=")[1].split()[0] for line in capsys.readouterr().out.splitlines()]


def test_tail_dials_the_port_the_data_dirs_pulih_up_listened_on(
    regency_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # where and how `pulih up --nats-port N` runs its server: <data dir>/nats, on N
    with NatsServer(regency_env / "nats", free_port(), server_name="pulih-3301", domain="r3301") as server:
        asyncio.run(one_event(server.url))
        assert tailed(capsys) == ["here"]


def test_no_server_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "NATS_URL"}
    env |= {"PULIH_NATS_PORT": str(port), "PULIH_DATA_DIR": str(tmp_path)}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pulih.kit.cli", "events", "tail"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"no NATS server answers at nats://127.0.0.1:{port}" in lines[0]
    assert "Traceback" not in done.stderr
    assert time.monotonic() - started < 30  # two tries, not minutes of retries
