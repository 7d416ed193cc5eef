"""The command-line tools find the regency's NATS the way ``pulih up`` started it, and say so
plainly when nothing answers."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

import nats
import pytest

from pulih.contracts import new_event, subject_for
from pulih.contracts.events import ClientErased
from pulih.kit.messaging import regency_stream_config
from pulih.kit.nats_server import NatsServer, free_port
from pulih.kit.settings import Settings


def test_without_nats_url_the_settings_follow_pulih_nats_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NATS_URL", raising=False)
    monkeypatch.setenv("PULIH_NATS_PORT", "14333")
    assert Settings().nats_url == "nats://127.0.0.1:14333"
    monkeypatch.setenv("NATS_URL", "nats://elsewhere:4222")
    assert Settings().nats_url == "nats://elsewhere:4222"


def tail(port: int, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NATS_URL"} | {
        "PULIH_NATS_PORT": str(port),
        "PULIH_DATA_DIR": str(tmp_path),
    }
    command = [sys.executable, "-m", "pulih.kit.cli", "events", "tail", "--last", "1"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)


async def test_events_tail_reads_the_server_on_pulih_nats_port(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats", server_name="pulih-test", domain="r3301").start()
    try:
        empty = tail(server.port, tmp_path)
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(regency_stream_config("3301"))
        erased = new_event(ClientErased(client_id=uuid.uuid4(), on=date(2026, 3, 1)), regency="3301")
        await js.publish(subject_for(erased, "3301"), erased.to_json())
        await nc.close()
        run = tail(server.port, tmp_path)
    finally:
        server.stop()
    assert empty.returncode == 1 and "has no stream IBM_3301" in empty.stderr
    assert run.returncode == 0, run.stderr
    assert "pulih.outreach.ClientErased.v1" in run.stdout and str(erased.data.client_id) in run.stdout
    assert "Traceback" not in run.stderr + empty.stderr


def test_events_tail_with_no_server_fails_at_once_with_a_clear_message(tmp_path: Path) -> None:
    port = free_port()
    run = tail(port, tmp_path)
    assert run.returncode == 1
    assert f"no NATS server answers at nats://127.0.0.1:{port}" in run.stderr
    assert "Traceback" not in run.stderr
