"""compose.yaml's regency in miniature, without a Docker engine: the image's entry point
(deploy/container/pulih-container) runs here with the programs the image installs (this venv's),
the NATS server with compose's nats.conf, PostgreSQL in a fresh database, and each container's
environment exactly as compose.yaml gives it (only the hosts ``nats`` and ``postgres`` moved to
this machine). The migration step creates every schema; outreach starts in production mode, and
the image's HEALTHCHECK command says it is ready (its store commits, it is logged in to NATS with
the compose user); on SIGTERM it stops cleanly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_support import DEPLOY, SERVICES, compose_file, env_file, fresh_database

from pulih.kit.nats_server import free_port, nats_server_binary, port_open, stop_process

pytestmark = [pytest.mark.system, pytest.mark.postgres, pytest.mark.slow]

ENTRYPOINT = DEPLOY / "container" / "pulih-container"
VENV_BIN = str(Path(sys.executable).parent)


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def here(env: dict[str, str], nats_port: int, database: str) -> dict[str, str]:
    """A container's environment with compose's hosts moved to this machine, and the programs the
    image has on its PATH."""
    moved = {
        k: re.sub(r"postgresql://[^/]+/pulih", database, v).replace("@nats:4222", f"@127.0.0.1:{nats_port}")
        for k, v in env.items()
    }
    return {"PATH": f"{VENV_BIN}:{os.environ['PATH']}", "HOME": os.environ.get("HOME", "/tmp"), **moved}


def test_the_entry_point_migrates_and_serves_a_compose_service(tmp_path: Path, database: str) -> None:
    services = compose_file(env_file(DEPLOY / "env.example"))["services"]
    nats_port, monitor_port = free_port(), free_port()
    config = (DEPLOY / "compose" / "nats.conf").read_text()
    for pod, local in {
        "listen: 0.0.0.0:4222": f"listen: 127.0.0.1:{nats_port}",
        "http: 0.0.0.0:8222": f"http: 127.0.0.1:{monitor_port}",
        "store_dir: /data": f'store_dir: "{tmp_path / "nats"}"',
    }.items():
        assert pod in config
        config = config.replace(pod, local)
    (tmp_path / "nats.conf").write_text(config)
    with (tmp_path / "nats.log").open("wb") as log:
        nats = subprocess.Popen(
            [nats_server_binary(), "-c", str(tmp_path / "nats.conf")],
            env=services["nats"]["environment"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    serve: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 30
        while not port_open("127.0.0.1", nats_port):
            assert nats.poll() is None, (tmp_path / "nats.log").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.05)

        migrate = services["migrate"]
        migrated = subprocess.run(
            [str(ENTRYPOINT), *migrate["command"]],
            env=here(migrate["environment"], nats_port, database),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert migrated.returncode == 0, migrated.stderr
        assert [line.split(":")[0] for line in migrated.stdout.splitlines()] == list(SERVICES)

        outreach = services["outreach"]
        http_port = free_port()
        env = here(outreach["environment"], nats_port, database) | {
            "PULIH_HTTP_PORT": str(http_port),  # the image's 8000, free here
            "PULIH_HTTP_HOST": "127.0.0.1",
            "PULIH_DATA_DIR": str(tmp_path / "data"),  # the image's /var/lib/pulih
        }
        assert env["PULIH_ENV"] == "production"
        (tmp_path / "data").mkdir()
        with (tmp_path / "outreach.log").open("wb") as log:
            serve = subprocess.Popen(
                [str(ENTRYPOINT), *outreach["command"]], env=env, stdout=log, stderr=subprocess.STDOUT
            )

        def health(*args: str) -> int:
            return subprocess.run(
                [str(ENTRYPOINT), "health", *args], env=env, capture_output=True, timeout=30
            ).returncode

        deadline = time.monotonic() + 120  # generous: 2 cores shared with the rest of the suite
        while health() != 0:
            assert serve.poll() is None, (tmp_path / "outreach.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "outreach.log").read_text()
            time.sleep(0.5)
        assert health("live") == 0

        serve.terminate()  # what docker stop sends
        # uvicorn finishes its shutdown, then ends by the signal it was sent
        assert serve.wait(timeout=40) in (0, -15)
        assert "Application shutdown complete." in (tmp_path / "outreach.log").read_text()
        assert health("live") != 0  # and the check says so once it is gone
    finally:
        if serve is not None:
            stop_process(serve)  # type: ignore[arg-type]
        stop_process(nats)
