"""A whole regency for the benchmarks: ``pulih up`` as a subprocess on free ports in a data dir of
its own, i.e. its ``nats-server`` and every installed service as real processes, each service on
its SQLite store, exactly as a regency box runs them.

The benchmarks talk to it as a field device does (its public HTTP API, with tokens signed by
the regency's secret) and read a consumer's applied effect from the consumer's own store (its
inbox or projection rows, opened read-only), with the timestamps the consumer wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pulih.kit.auth import Role, issue_token
from pulih.kit.local_regency import installed_services
from pulih.kit.nats_server import free_port

REGENCY = "3301"
SECRET = "bench-secret-of-at-least-thirty-two-bytes!"
ROOT = Path(__file__).resolve().parents[1]


class RunningRegency:
    """``pulih up`` in ``data_dir``; use as a context manager (started, then stopped with Ctrl-C)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.nats_port = free_port()
        self.ports = {service.name: free_port() for service in installed_services()}
        self.log = data_dir.parent / f"{data_dir.name}-up.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")},
            "PULIH_DATA_DIR": str(data_dir),
            "PULIH_REGENCY": REGENCY,
            "PULIH_NATS_PORT": str(self.nats_port),
            "PULIH_JWT_SECRET": SECRET,
            "PULIH_CLOCK": "system",
            "PULIH_LOG_LEVEL": "WARNING",
            **{f"PULIH_{name.upper()}_PORT": str(port) for name, port in self.ports.items()},
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        for name in self.ports:
            self.env.pop(f"PULIH_{name.upper()}_DATABASE_URL", None)

    @property
    def nats_url(self) -> str:
        """The regency's own nats-server."""
        return f"nats://127.0.0.1:{self.nats_port}"

    def url(self, service: str) -> str:
        """The base URL of ``service``'s API."""
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self, timeout: float = 180.0) -> RunningRegency:
        """Start ``pulih up``; return once it says the regency is up (every service healthy)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pulih.kit.cli", "up"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while "is up." not in self.output():
            if self.process.poll() is not None:
                raise RuntimeError(f"pulih up exited ({self.process.returncode}):\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"pulih up did not come up in {timeout:g}s:\n{self.output()[-3000:]}")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        """Ctrl-C, as an operator stops it (SIGKILL to what is left after a minute)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            for pid in reversed(list(descendants(process.pid))):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            process.kill()
            process.wait()

    def __enter__(self) -> RunningRegency:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def output(self) -> str:
        """What ``pulih up`` has printed so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def pids(self) -> dict[str, int]:
        """``<data dir>/pids``: the name and pid of each process ``pulih up`` runs."""
        text = (self.data_dir / "pids").read_text()
        return {name: int(pid) for name, pid in (line.split() for line in text.splitlines() if line)}

    def token(self, role: Role = Role.FACILITATOR, unit_id: str | None = None) -> str:
        """A token for ``role``: the development token ``pulih up`` wrote in ``tokens.env`` (signed
        however the regency verifies them), or one signed with the regency's secret (an agent's
        names their unit)."""
        tokens = self.data_dir / "tokens.env"
        if tokens.exists() and unit_id is None:
            found = re.search(rf"export {role.name}_TOKEN=(\S+)", tokens.read_text())
            if found:
                return found.group(1)
        return issue_token(SECRET, sub=f"bench-{role.value}", role=role, regency=REGENCY, unit_id=unit_id)

    def store(self, service: str) -> Path:
        """``service``'s SQLite file."""
        return self.data_dir / f"{service}.db"

    def today(self) -> date:
        """The regency's date (its services run on the system clock, in Asia/Jakarta)."""
        return datetime.now(ZoneInfo("Asia/Jakarta")).date()


def descendants(pid: int) -> Iterator[int]:
    """``pid`` and every process below it, parents first (from ``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    todo = [pid]
    while todo:
        current = todo.pop(0)
        yield current
        todo.extend(sorted(children.get(current, [])))


class AppliedEvents:
    """Which events a consumer has applied, read from its store as it writes them.

    ``table`` is the consumer's record of applied events: the kit's ``inbox`` (with the
    ``applied_at`` the consumer wrote in the transaction that applied the event) or a
    projection's own (``applied_events``, without a time: the moment it is first seen stands in).
    The file is opened read-only; new rows are read by ``rowid``, so a poll costs little.
    """

    def __init__(self, path: Path, table: str = "inbox") -> None:
        self.path = path
        self.table = table
        self.seen: dict[uuid.UUID, float] = {}
        """Event id → when it was applied (epoch seconds)."""
        self._after = 0
        self._connection: sqlite3.Connection | None = None

    def poll(self) -> int:
        """Read the rows written since the last poll; how many there were."""
        if self._connection is None:
            if not self.path.exists():
                return 0
            self._connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        timed = self.table == "inbox"
        columns = "rowid, event_id, applied_at" if timed else "rowid, event_id, NULL"
        try:
            rows = self._connection.execute(
                f"SELECT {columns} FROM {self.table} WHERE rowid > ? ORDER BY rowid", (self._after,)
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc) or "locked" in str(exc):
                return 0
            raise
        now = time.time()
        for rowid, event_id, applied_at in rows:
            self._after = max(self._after, rowid)
            key = event_id if isinstance(event_id, bytes) else str(event_id)
            parsed = uuid.UUID(bytes=key) if isinstance(key, bytes) else uuid.UUID(key)
            self.seen.setdefault(parsed, _epoch(applied_at) if applied_at else now)
        return len(rows)

    def close(self) -> None:
        """Close the read-only connection."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _epoch(stored: str) -> float:
    """A SQLite ``DateTime`` as SQLAlchemy stores it (UTC, no offset) in epoch seconds."""
    text = re.sub(r"([+-]\d\d:\d\d|Z)$", "", stored)
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


async def until_applied(
    applied: AppliedEvents, ids: Iterable[uuid.UUID], timeout: float, every: float = 0.05
) -> dict[uuid.UUID, float]:
    """Poll ``applied`` until it holds every one of ``ids``; when each was applied. Raises
    ``TimeoutError`` naming how many are missing once ``timeout`` seconds have passed."""
    wanted = set(ids)
    deadline = time.monotonic() + timeout
    while True:
        applied.poll()
        missing = wanted - applied.seen.keys()
        if not missing:
            return {event_id: applied.seen[event_id] for event_id in wanted}
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(missing)} of {len(wanted)} events not applied after {timeout:g}s")
        await asyncio.sleep(every)


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) ``pid`` and every process below it have used so far."""
    total = 0
    for each in descendants(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


class CpuMeter:
    """The CPU each process of a regency (and this load generator) uses over a stretch of work:
    steadier than the wall clock on a shared machine, and it says where an event's cost goes."""

    def __init__(self, regency: RunningRegency) -> None:
        self.pids = regency.pids()
        self.before = self._now()

    def _now(self) -> dict[str, float]:
        now = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        now["load generator"] = time.process_time()
        return now

    async def quiet(self, most_seconds: float = 30.0) -> None:
        """Wait until the regency has finished the work (every consumer caught up): less than a
        tenth of a core busy over half a second, or ``most_seconds``."""
        deadline = time.monotonic() + most_seconds
        last = sum(cpu_seconds(pid) for pid in self.pids.values())
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            now = sum(cpu_seconds(pid) for pid in self.pids.values())
            if now - last < 0.05:
                return
            last = now

    def used(self) -> dict[str, float]:
        """CPU seconds used since the meter was made, by process name."""
        now = self._now()
        return {name: now[name] - self.before[name] for name in now}


def cpu_note(used: dict[str, float], events: int) -> tuple[float, str]:
    """(the regency's CPU milliseconds per event, the breakdown by process in words)."""
    per_event = {name: seconds * 1000 / max(events, 1) for name, seconds in used.items()}
    regency = sum(ms for name, ms in per_event.items() if name != "load generator")
    words = ", ".join(f"{name} {ms:.1f}" for name, ms in sorted(per_event.items(), key=lambda x: -x[1]))
    return regency, f"CPU ms per event: {words}"


def budget(rate: float) -> float:
    """CPU milliseconds an event may cost, all processes together, for this machine's cores to
    keep up with ``rate`` events a second."""
    return (os.cpu_count() or 1) * 1000 / rate
