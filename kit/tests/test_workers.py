"""How many uvicorn workers ``pulih up`` gives a service: one, unless PostgreSQL and PULIH_WORKERS;
and the answers of several workers come without Nagle's 40 ms."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pulih.kit.nats_server import free_port, stop_process
from pulih.kit.workers import NO_DELAY_PROTOCOL, uvicorn_workers, worker_args

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/pulih"


@pytest.mark.parametrize(
    ("env", "workers"),
    [
        ({}, 1),
        ({"PULIH_WORKERS": "3"}, 1),  # SQLite: one writer
        ({"PULIH_WORKERS": "3", "DATABASE_URL": "sqlite:///x.db"}, 1),
        ({"PULIH_WORKERS": "3", "DATABASE_URL": PG}, 3),
        ({"PULIH_WORKERS": "3", "DATABASE_URL": PG, "PULIH_CLOCK": "manual"}, 1),
        ({"DATABASE_URL": PG}, 1),
    ],
)
def test_one_worker_unless_postgresql_asks_for_more(env: dict[str, str], workers: int) -> None:
    assert uvicorn_workers(env) == workers
    expected = [] if workers == 1 else ["--workers", str(workers), "--http", NO_DELAY_PROTOCOL]
    assert worker_args(env) == expected


@pytest.mark.parametrize("asked", ["two", "0", "-1"])
def test_a_wrong_count_is_named(asked: str) -> None:
    with pytest.raises(ValueError, match="PULIH_WORKERS"):
        uvicorn_workers({"PULIH_WORKERS": asked, "DATABASE_URL": PG})


BARE_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"status":"ok"}'})
"""


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[str]:
    """An ASGI app under ``uvicorn`` with the arguments :func:`worker_args` gives for two workers."""
    (tmp_path / "bare_asgi.py").write_text(BARE_APP)
    port = free_port()
    args = worker_args({"PULIH_WORKERS": "2", "DATABASE_URL": PG})
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bare_asgi:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            *args,
        ],
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError("uvicorn with two workers did not answer within 30 s") from None
                time.sleep(0.05)
        yield url
    finally:
        stop_process(process)


def test_two_workers_answer_a_keep_alive_connection_without_the_delayed_ack(two_workers: str) -> None:
    # uvicorn binds the socket of several workers itself, without TCP_NODELAY on what it accepts:
    # every answer after a connection's first then waits ~40 ms for the client's delayed ACK
    # (47 ms a request measured here with uvicorn's own protocol, 4 ms with pulih's).
    with httpx.Client() as http:
        http.get(two_workers)
        took = []
        for _ in range(20):
            start = time.perf_counter()
            assert http.get(two_workers).status_code == 200
            took.append(time.perf_counter() - start)
    assert statistics.median(took) < 0.025, f"median {statistics.median(took) * 1000:.0f} ms a request"
