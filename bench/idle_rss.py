"""Memory of an idle regency: the resident set (RSS) of its nats-server and of every service,
each summed over its process tree (uvicorn workers included), once the regency has started and
its memory has stopped growing. Read from ``/proc`` (``VmRSS``, and ``Pss`` from
``smaps_rollup``, which splits shared pages between the processes sharing them).

The limit is the floor of the same processes: the regency's own nats-server plus, per service,
the smallest FastAPI app under uvicorn (``bench/bare_app.py``) measured in the same run.

    .venv/bin/python bench/idle_rss.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from figures import Figure, figure, print_figures
from running_regency import RunningRegency, descendants

from pulih.kit.nats_server import free_port, stop_process

MB = 1_000_000
BENCH = Path(__file__).resolve().parent


def memory_of(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes of ``pid`` and every process below it (0 for what has gone)."""
    rss = pss = 0
    for each in descendants(pid):
        rss += _kilobytes(Path(f"/proc/{each}/status"), "VmRSS:") * 1024
        pss += _kilobytes(Path(f"/proc/{each}/smaps_rollup"), "Pss:") * 1024
    return rss, pss


def _kilobytes(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def settled(pids: list[int], most_seconds: float) -> None:
    """Wait until the processes' total RSS changes by less than 1% over two seconds (or for
    ``most_seconds``): the regency has finished starting, caches and all."""
    deadline = time.monotonic() + most_seconds
    before = sum(memory_of(p)[0] for p in pids)
    while time.monotonic() < deadline:
        time.sleep(2.0)
        now = sum(memory_of(p)[0] for p in pids)
        if abs(now - before) < 0.01 * before:
            return
        before = now


def bare_service_rss() -> int:
    """The RSS of ``bench/bare_app.py`` under uvicorn, once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", str(BENCH), "--port", str(port),
         "--log-level", "warning"],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("bench/bare_app.py did not start")
            time.sleep(0.1)
        time.sleep(1.0)
        return memory_of(process.pid)[0]
    finally:
        stop_process(process)


def idle_figures(regency: RunningRegency, quick: bool = False) -> list[Figure]:
    """The figures of ``regency`` as it stands now, after it has settled."""
    running = regency.pids()
    services = [name for name in running if name != "nats-server"]
    settled(list(running.values()), 6.0 if quick else 20.0)
    memory = {name: memory_of(pid) for name, pid in running.items()}
    assert regency.process is not None
    supervisor = _kilobytes(Path(f"/proc/{regency.process.pid}/status"), "VmRSS:") * 1024
    rss = sum(r for r, _ in memory.values())
    pss = sum(p for _, p in memory.values())
    floor = memory["nats-server"][0] + len(services) * bare_service_rss()
    rows = [
        figure(
            "idle.rss_mb", rss / MB, "MB", floor / MB,
            note=f"nats-server + {len(services)} services; limit: nats-server + as many bare FastAPI apps",
        ),
        figure("idle.pss_mb", pss / MB, "MB", note="the same processes, shared pages split between them"),
    ]  # fmt: skip
    rows += [figure(f"idle.rss_mb.{name}", r / MB, "MB") for name, (r, _) in memory.items()]
    rows.append(
        figure("idle.rss_mb.supervisor", supervisor / MB, "MB", note="pulih up itself, not counted above")
    )
    return rows


async def measure(quick: bool = False, regency: RunningRegency | None = None) -> list[Figure]:
    """The idle regency's memory: of ``regency``, or of one started (and stopped) for it."""
    if regency is not None:
        return await asyncio.to_thread(idle_figures, regency, quick)
    with (
        tempfile.TemporaryDirectory(prefix="pulih-bench-") as tmp,
        RunningRegency(Path(tmp) / "r") as started,
    ):
        return await asyncio.to_thread(idle_figures, started, quick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="settle for a few seconds only")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    args = parser.parse_args()
    print_figures(asyncio.run(measure(args.quick)), as_json=args.json)


if __name__ == "__main__":
    main()
