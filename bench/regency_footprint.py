"""The memory of an idle regency, process by process, ``pulih up`` included: what
``idle.rss_mb`` sums, with where each process's resident pages come from.

For every process ``pulih up`` runs (nats-server, each service) and for ``pulih up`` itself:
RSS and PSS (shared pages split between the processes sharing them), RSS split into anonymous
pages (the Python heap: modules' code objects, classes, pydantic validators) and file pages
(``libpython``, the extension modules' ``.so``, shared with the other services but counted in
each one's RSS), and its threads (glibc gives a thread that allocates its own malloc arena).

``--use N`` then drives N clients through the regency as a field device does (registered,
consented, screened, enrolled: events through every service) and measures it again once quiet:
what first use loads and keeps. ``--imports`` adds, per service, the RSS its app's import costs
by top-level package, measured in a fresh interpreter (a module's share is what its import added
less what the imports it triggered added).

    ./dev bench footprint [--use 40] [--imports] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from field_device import FieldDevice
from figures import Figure, figure, print_figures
from idle_rss import memory_of, settled
from running_regency import CpuMeter, RunningRegency, descendants

from pulih.kit.local_regency import installed_services

MB = 1_000_000


def _status(pid: int) -> dict[str, int]:
    """The kB and count fields of ``/proc/<pid>/status`` we report."""
    wanted = ("RssAnon", "RssFile", "Threads")
    found = dict.fromkeys(wanted, 0)
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in wanted:
                found[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return found


def process_rows(regency: RunningRegency, stage: str) -> list[Figure]:
    """One row per process (summed over its process tree), and the regency's total."""
    running = regency.pids()
    settled(list(running.values()), 20.0)
    assert regency.process is not None
    rows: list[Figure] = []
    total_rss = total_pss = 0
    for name, pid in [*running.items(), ("supervisor", regency.process.pid)]:
        tree = list(descendants(pid)) if name != "supervisor" else [pid]
        if name == "supervisor":
            own = _status(pid)  # not its children: the services are counted above
            rss_bytes = (own["RssAnon"] + own["RssFile"]) * 1024
            pss_bytes = _pss(pid)
        else:
            rss_bytes, pss_bytes = memory_of(pid)
            total_rss += rss_bytes
            total_pss += pss_bytes
        fields = [_status(p) for p in tree]
        anon = sum(f["RssAnon"] for f in fields) * 1024
        file = sum(f["RssFile"] for f in fields) * 1024
        threads = sum(f["Threads"] for f in fields)
        note = (
            f"PSS {pss_bytes / MB:.1f}, anon {anon / MB:.1f}, file {file / MB:.1f} MB; "
            f"{len(tree)} process{'es' if len(tree) > 1 else ''}, {threads} threads"
        )
        if name == "supervisor":
            note += "; not counted in the total"
        rows.append(figure(f"footprint.{stage}.{name}", rss_bytes / MB, "MB", note=note))
    rows.insert(
        0,
        figure(
            f"footprint.{stage}.rss_mb",
            total_rss / MB,
            "MB",
            note=f"nats-server + services (idle.rss_mb); PSS {total_pss / MB:.1f} MB",
        ),
    )
    return rows


def _pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


async def use(regency: RunningRegency, clients: int) -> None:
    """``clients`` clients registered, consented, screened and enrolled; back once the regency
    is quiet (every consumer caught up)."""
    meter = CpuMeter(regency)
    async with httpx.AsyncClient(timeout=60) as http:
        await FieldDevice(regency, http).enrolled_clients(clients, first_serial=1)
    await meter.quiet(60.0)


IMPORT_COST = r"""
import collections, importlib, importlib.abc, os, sys
fd = os.open("/proc/self/statm", os.O_RDONLY)
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    return int(os.pread(fd, 100, 0).split()[1]) * page
before = rss()
import uvicorn.main  # what `python -m uvicorn` loads before the app
print(rss() - before, "(uvicorn)")
stack, own = [], collections.Counter()
class Measured(importlib.abc.Loader):
    def __init__(self, inner, name):
        self.inner, self.name = inner, name
    def create_module(self, spec):
        return self.inner.create_module(spec)
    def exec_module(self, module):
        stack.append([rss(), 0])
        try:
            self.inner.exec_module(module)
        finally:
            start, children = stack.pop()
            added = rss() - start
            parts = self.name.split(".")
            own[".".join(parts[:2]) if parts[0] == "pulih" else parts[0]] += added - children
            if stack:
                stack[-1][1] += added
    def __getattr__(self, name):
        return getattr(self.inner, name)
class Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = Measured(spec.loader, name)
                return spec
        return None
sys.meta_path.insert(0, Finder())
before = rss()
importlib.import_module(sys.argv[1])
print(rss() - before, "(app)")
for name, size in own.most_common():
    print(size, name)
"""


def import_rows(top: int) -> list[Figure]:
    """Per service: what importing its app adds to RSS, by top-level package (the largest)."""
    rows: list[Figure] = []
    for service in installed_services():
        module = service.app.split(":")[0]
        out = subprocess.run(
            [sys.executable, "-c", IMPORT_COST, module],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PULIH_LOG_LEVEL": "WARNING"},
        ).stdout.splitlines()
        sizes: collections.Counter[str] = collections.Counter()
        for line in out:
            size, _, name = line.partition(" ")
            sizes[name] = int(size)
        app = sizes.pop("(app)")
        base = sizes.pop("(uvicorn)")
        largest = ", ".join(f"{n} {s / MB:.1f}" for n, s in sizes.most_common(top) if s > 0)
        rows.append(
            figure(
                f"footprint.import.{service.name}",
                app / MB,
                "MB",
                note=f"on top of uvicorn.main ({base / MB:.1f} MB); largest: {largest}",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--use", type=int, default=0, metavar="N", help="measure again after N clients")
    parser.add_argument("--imports", action="store_true", help="each app's import cost by package")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    args = parser.parse_args()
    rows: list[Figure] = []
    with (
        tempfile.TemporaryDirectory(prefix="pulih-footprint-") as tmp,
        RunningRegency(Path(tmp) / "r") as regency,
    ):
        rows += process_rows(regency, "idle")
        if args.use:
            asyncio.run(use(regency, args.use))
            rows += process_rows(regency, f"after_{args.use}_clients")
    if args.imports:
        rows += import_rows(top=8)
    print_figures(rows, as_json=args.json)


if __name__ == "__main__":
    main()
