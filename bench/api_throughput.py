"""The API's write path: screenings at a fixed offered load on SQLite and on PostgreSQL, a
PostgreSQL concurrency sweep, and rehab's ``POST /v1/sync`` batches. Prints figures; not a test.

    .venv/bin/python bench/api_throughput.py [--rate 100] [--seconds 10] [--json]
    .venv/bin/python bench/api_throughput.py --only sqlite --no-sync --profile /tmp/outreach

Each service runs under uvicorn in its own process, as ``pulih up`` runs it (one worker, logging as
deployed: an access line per request, the output discarded), with NATS up and its outbox relay
publishing. The load is **open-loop**: request *i* starts at ``t0 + i/rate`` whether
or not the earlier ones have answered, and its latency counts from that moment, so a server that
falls behind shows its queue in the latency instead of slowing the load down. Each screening
carries its own ``Idempotency-Key``, as a field device sends it.

Rows ``{metric, value, unit, limit, ratio}`` (``measure()`` returns them, for ``./dev bench``):

- ``api.<store>.screenings_per_s``: screenings accepted per second at the offered load (limit:
  the offered rate);
- ``api.<store>.p50_ms`` / ``p99_ms``: their latency (limit: the 50 ms target);
- ``api.<store>.server_cpu_ms``: CPU the service spent per screening, relay included (limit:
  ``1000/rate``, one core's worth at that rate; the ratio is the share of a core the load takes);
- ``api.postgres.w<W>.c<N>.screenings_per_s`` and ``p99_ms``: closed loop, N requests in flight,
  W uvicorn workers (limit: the same server's ``GET /healthz`` at N in flight, the ceiling of the
  HTTP stack alone on this machine);
- ``api.sync.events_per_s``: sessions applied through ``POST /v1/sync`` on rehab (SQLite), one
  ``SessionHeld`` each, in batches of ``--batch`` items (limit: the same sessions sent one
  ``POST /v1/enrolments/{id}/sessions`` each, 16 in flight, on the same server).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from light_http import HttpError, LightHttp
from light_http import Response as LightResponse

from pulih.kit.auth import Role, issue_token
from pulih.kit.nats_server import NatsServer, free_port
from pulih.kit.workers import worker_args

SECRET = "bench-secret-of-at-least-thirty-two-bytes"
REGENCY = "3301"
POSTGRES = os.environ.get("PULIH_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
"""Where a fresh database is created for each PostgreSQL run (and dropped afterwards)."""

P99_TARGET_MS = 50.0
SCREENING = {
    "screened_on": "2026-02-02",
    "injecting": "never",
    "substances": [
        {"substance": "cannabis", "ever_used": True, "q2": 4, "q3": 3, "q4": 4, "q5": 5, "q6": 3, "q7": 0}
    ],
}

Row = dict[str, Any]
Progress = Callable[[str], None]


def row(metric: str, value: float, unit: str, limit: float | None) -> Row:
    """One figure, with the limit it is measured against and the ratio to it."""
    ratio = round(value / limit, 3) if limit else None
    return {
        "metric": metric,
        "value": round(value, 2),
        "unit": unit,
        "limit": None if limit is None else round(limit, 2),
        "ratio": ratio,
    }


def _quiet(_: str) -> None:
    pass


def bearer(role: Role, **claims: Any) -> dict[str, str]:
    return {
        "Authorization": "Bearer "
        + issue_token(SECRET, sub=f"bench-{role}", role=role, regency=REGENCY, **claims)
    }


# --- the services, as processes ------------------------------------------------------------


@dataclass
class Service:
    """One service under uvicorn in its own process (and its workers')."""

    process: asyncio.subprocess.Process
    base: str

    def cpu_seconds(self) -> float:
        """CPU time of the process and its children (uvicorn's workers) so far."""
        return tree_cpu_seconds(self.process.pid)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


def tree_cpu_seconds(root: int) -> float:
    """User and system CPU of ``root`` and every process under it, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo += [child for child, parent in parents.items() if parent == pid]
    return total


@contextlib.asynccontextmanager
async def service(
    app: str, work: Path, nats_url: str, database_url: str | None, *, workers: int = 1, **env: str
) -> AsyncIterator[Service]:
    """``app`` under uvicorn as deployed, its data dir under ``work``; yields once it is ready."""
    port = free_port()
    environ = {
        **os.environ,
        "PULIH_DATA_DIR": str(work),
        "PULIH_REGENCY": REGENCY,
        "NATS_URL": nats_url,
        "PULIH_JWT_SECRET": SECRET,
        "PULIH_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        **env,
    }
    environ.pop("DATABASE_URL", None)
    if database_url is not None:
        environ["DATABASE_URL"] = database_url
    command = [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--log-level", "warning"]
    if workers > 1:
        command += worker_args({"PULIH_WORKERS": str(workers), "DATABASE_URL": database_url or ""})
        # the store at head first, as a deployment's migration step (and pulih up) do: workers
        # that all migrate a fresh database at once would race
        name = app.split(".")[1]
        migrate = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pulih.kit.migrate", name, env=environ, stdout=subprocess.DEVNULL
        )
        if await migrate.wait() != 0:
            raise RuntimeError(f"could not migrate {name}'s store")
    process = await asyncio.create_subprocess_exec(
        *command, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    running = Service(process, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 90
        async with httpx.AsyncClient(timeout=2) as http:
            while True:
                if running.process.returncode is not None:
                    raise RuntimeError(f"{app} exited with {running.process.returncode}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{running.base}/readyz")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{app} did not become ready")
                await asyncio.sleep(0.1)
        yield running
    finally:
        await running.stop()


async def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used (None when it answers)."""
    import asyncpg

    try:
        conn = await asyncpg.connect(POSTGRES, timeout=3)
        await conn.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@contextlib.asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards; yields its URL."""
    import asyncpg

    name = f"pulih_bench_{uuid.uuid4().hex[:10]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    await run(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await run(f'DROP DATABASE "{name}" WITH (FORCE)')


# --- load -----------------------------------------------------------------------------------


@dataclass
class Figures:
    """What a run of requests gave: how many, how fast, how long each took."""

    sent: int = 0
    failed: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)

    @property
    def rate(self) -> float:
        return (self.sent - self.failed) / self.elapsed if self.elapsed else 0.0

    def percentile_ms(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def count(self, status: int | None, ok: int) -> None:
        self.sent += 1
        self.statuses[status or 0] += 1
        if status != ok:
            self.failed += 1


Send = Callable[[int], Awaitable[httpx.Response | LightResponse]]
"""Sends request number i."""

_SEND_FAILED = (httpx.HTTPError, HttpError, TimeoutError)
"""What a request that got no answer raises (httpx's, or the light client's)."""


async def open_loop(send: Send, *, rate: float, seconds: float, ok: int = 201) -> Figures:
    """Start one request every ``1/rate`` s for ``seconds``; each latency counts from its
    scheduled start."""
    figures = Figures()
    started = time.perf_counter()

    async def one(i: int, due: float) -> None:
        status = None
        with contextlib.suppress(*_SEND_FAILED):
            status = (await send(i)).status_code
        figures.latencies.append(time.perf_counter() - due)
        figures.count(status, ok)

    tasks = []
    for i in range(int(rate * seconds)):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    figures.elapsed = time.perf_counter() - started
    return figures


async def closed_loop(send: Send, *, concurrency: int, total: int, ok: int = 201) -> Figures:
    """``total`` requests, ``concurrency`` of them in flight at any time."""
    figures = Figures()
    numbers = iter(range(total))

    async def worker() -> None:
        for i in numbers:
            began = time.perf_counter()
            status = None
            with contextlib.suppress(*_SEND_FAILED):
                status = (await send(i)).status_code
            figures.latencies.append(time.perf_counter() - began)
            figures.count(status, ok)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    figures.elapsed = time.perf_counter() - started
    return figures


def http_client(base: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    return httpx.AsyncClient(base_url=base, timeout=60, limits=limits)


# --- outreach: screenings ------------------------------------------------------------------


async def setup_post(http: httpx.AsyncClient, url: str, headers: dict[str, str], body: Any) -> httpx.Response:
    """A setup request, sent again (with the same Idempotency-Key, so at most once applied) when
    a keep-alive connection the server had just closed fails it."""
    keyed = {**headers, "Idempotency-Key": str(uuid.uuid4())}
    for attempt in range(3):
        try:
            return await http.post(url, headers=keyed, json=body)
        except (httpx.ReadError, httpx.RemoteProtocolError, httpx.ConnectError):
            if attempt == 2:
                raise
            await asyncio.sleep(0.2)
    raise AssertionError("unreachable")


async def screenable_clients(http: httpx.AsyncClient, n: int) -> tuple[str, list[str]]:
    """A unit's agent and ``n`` registered clients who consented to the programme."""
    fac = bearer(Role.FACILITATOR)
    r = await setup_post(
        http,
        "/v1/units",
        fac,
        {"name": "Bench", "village_code": "3301012001", "established_on": "2026-01-01"},
    )
    assert r.status_code == 201, r.text
    unit = r.json()["unit_id"]
    r = await setup_post(http, f"/v1/units/{unit}/agents", fac, {"trained_on": "2026-01-01"})
    assert r.status_code == 201, r.text
    agent = str(r.json()["agent_id"])

    async def client(i: int) -> str:
        body = {
            "unit_id": unit,
            "registered_on": "2026-02-01",
            "came_through": "self",
            "identity": {
                "full_name": f"Klien {i}",
                "nik": f"3301011505{90 + i // 9999 % 10:02d}{i % 9999 + 1:04d}",
                "birth_date": f"19{90 + i // 9999 % 10}-05-15",
                "sex": "m",
            },
        }
        r = await setup_post(http, "/v1/clients", fac, body)
        assert r.status_code == 201, r.text
        cid = str(r.json()["client_id"])
        consent = {"scopes": ["programme"], "given_on": "2026-02-01"}
        r = await setup_post(http, f"/v1/clients/{cid}/consents", fac, consent)
        assert r.status_code == 201, r.text
        return cid

    clients: list[str] = []
    for start in range(0, n, 8):
        clients += await asyncio.gather(*(client(i) for i in range(start, min(n, start + 8))))
    return agent, clients


def screening_sender(http: LightHttp, base: str, agent: str, clients: Sequence[str]) -> Send:
    """Screens the clients in turn, each request with an Idempotency-Key of its own, sent by the
    light client (httpx's 3 ms of CPU a request would be taken from the server measured)."""
    body = {"agent_id": agent, **SCREENING}
    fac = bearer(Role.FACILITATOR)

    def send(i: int) -> Awaitable[LightResponse]:
        return http.post(
            f"{base}/v1/clients/{clients[i % len(clients)]}/screenings",
            headers={**fac, "Idempotency-Key": str(uuid.uuid4())},
            json=body,
        )

    return send


@contextlib.asynccontextmanager
async def profiled(pid: int, out: Path | None) -> AsyncIterator[None]:
    """py-spy records ``pid`` (raw collapsed stacks into ``out``) while the block runs."""
    if out is None:
        yield
        return
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        raise SystemExit(f"--profile needs py-spy next to {sys.executable}: {spy.parent}/pip install py-spy")
    recorder = await asyncio.create_subprocess_exec(
        *[
            str(spy),
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "500",
            "--nonblocking",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    await asyncio.sleep(1.5)  # attached
    try:
        yield
    finally:
        recorder.send_signal(2)
        await asyncio.wait_for(recorder.wait(), 60)


_IDLE = re.compile(
    r"Condition\.wait|EpollSelector\.select|Queue\.get|select \(selectors|_worker \(concurrent"
)
_SITE = re.compile(r"\((?:.*/site-packages/|.*/src/)?([^:()]+)(?::\d+)?\)$")


def summarise_profile(collapsed: Path, top: int = 20) -> str:
    """Where a py-spy ``raw`` file's busy samples are: self time by package, and the heaviest
    frames on the stack. Idle threads (a worker waiting for work, the loop in ``select``) are
    left out."""
    by_package: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f for f in stack.split(";") if f.strip()]
        if not frames or _IDLE.search(frames[-1]):
            continue
        n = int(count)
        total += n
        leaf = _SITE.search(frames[-1])
        path = leaf.group(1) if leaf else frames[-1]
        if "sqlite_driver" in path:
            package = "sqlite3 (SQLite's own work, inline)"
        else:
            package = path.split("/")[0] if "/" in path else path
        by_package[package] += n
        for frame in {
            f.split(" (")[0] + " " + (m.group(1) if (m := _SITE.search(f)) else "") for f in frames
        }:
            inclusive[frame] += n
    lines = [f"{total} busy samples; self time by package or file:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in by_package.most_common(top)]
    lines += ["on the stack (inclusive):"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top + 25)[25:]]
    return "\n".join(lines)


async def screenings_at_rate(
    running: Service, *, rate: float, seconds: float, clients: int, profile: Path | None
) -> tuple[Figures, float]:
    """Screen ``clients`` in turn at ``rate`` for ``seconds``; also the service's CPU seconds
    per screening."""
    async with http_client(running.base) as http, LightHttp() as light:
        agent, ids = await screenable_clients(http, clients)
        send = screening_sender(light, running.base, agent, ids)
        await closed_loop(send, concurrency=4, total=50)  # warm: connections, caches, the relay
        async with profiled(running.process.pid, profile):
            cpu = running.cpu_seconds()
            figures = await open_loop(send, rate=rate, seconds=seconds)
            cpu = running.cpu_seconds() - cpu
    return figures, cpu / max(1, figures.sent)


async def sweep(
    running: Service, concurrencies: Sequence[int], requests: int, clients: int
) -> list[tuple[int, Figures, Figures]]:
    """Closed-loop screenings at each concurrency, with ``GET /healthz`` at the same
    concurrency for the HTTP stack's ceiling."""
    results = []
    async with http_client(running.base) as http, LightHttp() as light:
        agent, ids = await screenable_clients(http, clients)
        send = screening_sender(light, running.base, agent, ids)
        await closed_loop(send, concurrency=4, total=50)

        def health(_: int) -> Awaitable[LightResponse]:
            return light.get(f"{running.base}/healthz")

        for c in concurrencies:
            total = max(requests, 8 * c)
            screened = await closed_loop(send, concurrency=c, total=total)
            ceiling = await closed_loop(health, concurrency=c, total=total, ok=200)
            results.append((c, screened, ceiling))
    return results


# --- rehab: /v1/sync -------------------------------------------------------------------------

SYNC_DAY = "2026-03-02"
"""Rehab's manual clock stands here; the clients were screened the week before."""


async def enrolled_clients(nats_url: str, http: httpx.AsyncClient, n: int) -> tuple[str, str, list[str]]:
    """A unit, its agent and ``n`` enrolments: outreach's events published on the stream as its
    relay would, then each client enrolled through rehab's API once rehab has heard of them."""
    import nats

    from pulih.contracts import new_event, subject_for
    from pulih.contracts.events.outreach import (
        AgentRegistered,
        ClientRegistered,
        ClientScreened,
        ConsentRecorded,
    )
    from pulih.kit.outbox import envelope_headers

    unit, agent = uuid.uuid4(), uuid.uuid4()
    clients = [uuid.uuid4() for _ in range(n)]
    events: list[Any] = [
        AgentRegistered.model_validate({"agent_id": agent, "unit_id": unit, "trained_on": "2026-01-05"})
    ]
    for client in clients:
        events += [
            ClientRegistered.model_validate(
                {
                    "client_id": client,
                    "unit_id": unit,
                    "registered_on": "2026-02-20",
                    "sex": "m",
                    "age_band": "25_34",
                    "came_through": "outreach",
                }
            ),
            ConsentRecorded.model_validate(
                {
                    "consent_id": uuid.uuid4(),
                    "client_id": client,
                    "scopes": ["programme"],
                    "given_on": "2026-02-20",
                }
            ),
            ClientScreened.model_validate(
                {
                    "screening_id": uuid.uuid4(),
                    "client_id": client,
                    "unit_id": unit,
                    "agent_id": agent,
                    "screened_on": "2026-02-23",
                    "instrument": "assist_v3",
                    "substances": [{"substance": "cannabis", "score": 12, "risk": "moderate"}],
                    "injected_last_3_months": False,
                    "overall_risk": "moderate",
                    "recommendation": "ibm_programme",
                }
            ),
        ]
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for data in events:
            envelope = new_event(data, regency=REGENCY)
            await js.publish(
                subject_for(envelope, REGENCY), envelope.to_json(), headers=envelope_headers(envelope)
            )
    finally:
        await nc.close()
    agent_auth = bearer(Role.AGENT, unit_id=unit)
    baseline = {f"q{i}": 3 for i in range(1, 27)}

    async def enrol(client: uuid.UUID) -> str:
        body = {
            "client_id": str(client),
            "agent_id": str(agent),
            "enrolled_on": SYNC_DAY,
            "baseline": baseline,
        }
        deadline = time.monotonic() + 60
        while True:
            r = await setup_post(http, "/v1/enrolments", agent_auth, body)
            if r.status_code == 201:
                return str(r.json()["enrollment_id"])
            if time.monotonic() > deadline:
                raise RuntimeError(f"rehab did not enrol a client: {r.status_code} {r.text}")
            await asyncio.sleep(0.2)  # rehab's consumer has not applied outreach's events yet

    enrolments: list[str] = []
    for start in range(0, n, 8):
        enrolments += await asyncio.gather(*(enrol(c) for c in clients[start : start + 8]))
    return str(unit), str(agent), enrolments


def session_body(agent: str, minutes: int) -> dict[str, Any]:
    return {"agent_id": agent, "held_on": SYNC_DAY, "kind": "konseling", "attended": True, "minutes": minutes}


async def sync_rate(
    nats_url: str,
    work: Path,
    *,
    enrolments: int,
    batches: int,
    batch: int,
    devices: int,
    progress: Progress,
    profile: Path | None = None,
) -> tuple[float, float, float]:
    """Sessions applied per second through ``/v1/sync`` (``devices`` requests in flight, each of
    ``batch`` items), the same sessions one request each (16 in flight), and the server's CPU
    milliseconds per synced session."""
    env = {"PULIH_CLOCK": "manual", "PULIH_CLOCK_START": SYNC_DAY}
    async with (
        service("pulih.rehab.app:app", work / "rehab", nats_url, None, **env) as rehab,
        http_client(rehab.base) as http,
    ):
        unit, agent, ids = await enrolled_clients(nats_url, http, enrolments)
        agent_auth = bearer(Role.AGENT, unit_id=uuid.UUID(unit))
        progress(f"sync: {batches} requests of {batch} sessions, {devices} at a time")
        numbers = iter(range(batches * batch * 2))

        def request(_: int) -> Awaitable[httpx.Response]:
            items = []
            for _ in range(batch):
                i = next(numbers)
                items.append(
                    {
                        "type": "session",
                        "key": f"bench:{i}",
                        "enrollment_id": ids[i % len(ids)],
                        "session": session_body(agent, 30 + i % 60),
                    }
                )
            return http.post(
                "/v1/sync", headers=agent_auth, json={"unit_id": unit, "items": items}, timeout=300
            )

        await closed_loop(request, concurrency=1, total=1, ok=200)  # warm
        async with profiled(rehab.process.pid, profile):
            cpu = rehab.cpu_seconds()
            synced = await closed_loop(request, concurrency=devices, total=batches, ok=200)
            cpu = rehab.cpu_seconds() - cpu
        if profile is not None:
            progress(f"sync: profile in {profile}\n{summarise_profile(profile)}")
        if synced.failed:
            progress(f"sync: {synced.failed} of {synced.sent} requests failed: {dict(synced.statuses)}")
        per_second = synced.rate * batch

        progress(f"sync: the same {batches * batch} sessions one request each, 16 in flight")

        async with LightHttp() as light:

            def single(i: int) -> Awaitable[LightResponse]:
                return light.post(
                    f"{rehab.base}/v1/enrolments/{ids[i % len(ids)]}/sessions",
                    headers={**agent_auth, "Idempotency-Key": f"single:{i}"},
                    json=session_body(agent, 30 + i % 60),
                )

            singles = await closed_loop(single, concurrency=16, total=batches * batch)
    return per_second, singles.rate, 1000 * cpu / max(1, batches * batch)


# --- all of it -------------------------------------------------------------------------------


async def measure(
    *,
    stores: Sequence[str] = ("sqlite", "postgres"),
    rate: float = 100.0,
    seconds: float = 10.0,
    clients: int = 100,
    concurrencies: Sequence[int] = (1, 4, 16, 64),
    sweep_requests: int = 300,
    sweep_workers: Sequence[int] = (1, 2),
    sync: bool = True,
    sync_batches: int = 10,
    sync_batch: int = 100,
    profile: Path | None = None,
    progress: Progress = _quiet,
    quick: bool = False,
) -> list[Row]:
    """Every figure of this bench, as rows ``{metric, value, unit, limit, ratio}``. ``quick``:
    tiny sizes on SQLite only, to check that it all runs (the figures mean nothing)."""
    if quick:
        stores, rate, seconds, clients, concurrencies = ("sqlite",), 20.0, 1.0, 8, ()
        sync_batches, sync_batch = 2, 10
    rows: list[Row] = []
    with (
        tempfile.TemporaryDirectory(prefix="pulih-api-bench-") as tmp,
        NatsServer(Path(tmp) / "nats") as nats,
    ):
        work = Path(tmp)
        for store in stores:
            if store == "postgres" and (problem := await postgres_problem()) is not None:
                progress(f"PostgreSQL not reachable at {POSTGRES} ({problem}): its figures are left out")
                continue
            async with contextlib.AsyncExitStack() as stack:
                url = (
                    await stack.enter_async_context(fresh_postgres_database())
                    if store == "postgres"
                    else None
                )
                running = await stack.enter_async_context(
                    service("pulih.outreach.app:app", work / f"outreach-{store}", nats.url, url)
                )
                progress(f"{store}: {rate:g} screenings/s for {seconds:g} s, open loop")
                out = profile.with_name(f"{profile.name}.{store}.txt") if profile else None
                figures, cpu = await screenings_at_rate(
                    running, rate=rate, seconds=seconds, clients=clients, profile=out
                )
                if figures.failed:
                    progress(f"{store}: {figures.failed} of {figures.sent} failed: {dict(figures.statuses)}")
                if out is not None:
                    progress(f"{store}: profile in {out}\n{summarise_profile(out)}")
                rows += [
                    row(f"api.{store}.screenings_per_s", figures.rate, "req/s", rate),
                    row(f"api.{store}.p50_ms", figures.percentile_ms(50), "ms", P99_TARGET_MS),
                    row(f"api.{store}.p99_ms", figures.percentile_ms(99), "ms", P99_TARGET_MS),
                    row(f"api.{store}.server_cpu_ms", 1000 * cpu, "ms/req", 1000 / rate),
                ]
            if store != "postgres" or not concurrencies:
                continue
            for workers in sweep_workers:
                async with contextlib.AsyncExitStack() as stack:
                    url = await stack.enter_async_context(fresh_postgres_database())
                    running = await stack.enter_async_context(
                        service(
                            "pulih.outreach.app:app",
                            work / f"outreach-w{workers}",
                            nats.url,
                            url,
                            workers=workers,
                        )
                    )
                    inflight = ", ".join(map(str, concurrencies))
                    progress(f"postgres, {workers} worker(s): closed loop with {inflight} in flight")
                    for c, screened, ceiling in await sweep(running, concurrencies, sweep_requests, clients):
                        rows += [
                            row(
                                f"api.postgres.w{workers}.c{c}.screenings_per_s",
                                screened.rate,
                                "req/s",
                                ceiling.rate,
                            ),
                            row(
                                f"api.postgres.w{workers}.c{c}.p99_ms", screened.percentile_ms(99), "ms", None
                            ),
                        ]
        if sync:
            per_second, singles, cpu = await sync_rate(
                nats.url,
                work,
                enrolments=5 if quick else 50,
                batches=sync_batches,
                batch=sync_batch,
                devices=2,
                progress=progress,
                profile=profile.with_name(f"{profile.name}.sync.txt") if profile else None,
            )
            rows += [
                row("api.sync.events_per_s", per_second, "events/s", singles),
                row("api.sync.server_cpu_ms", cpu, "ms/event", None),
            ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=100.0, help="offered screenings per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the offered load lasts")
    parser.add_argument("--clients", type=int, default=100, help="clients set up, then screened in turn")
    parser.add_argument(
        "--only", choices=("sqlite", "postgres", "sync"), help="one store only, or /v1/sync only"
    )
    parser.add_argument("--sweep", default="1,4,16,64", help="PostgreSQL concurrencies ('' for none)")
    parser.add_argument("--workers", default="1,2", help="uvicorn workers for the PostgreSQL sweep")
    parser.add_argument("--no-sync", action="store_true", help="leave out rehab's /v1/sync")
    parser.add_argument("--batch", type=int, default=100, help="items per /v1/sync request")
    parser.add_argument("--batches", type=int, default=10, help="/v1/sync requests")
    parser.add_argument(
        "--profile", type=Path, help="py-spy the server: <path>.<store>.txt and <path>.sync.txt, summarised"
    )
    parser.add_argument("--json", action="store_true", help="JSON lines {metric, value, unit, limit, ratio}")
    args = parser.parse_args()

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    rows = asyncio.run(
        measure(
            stores=() if args.only == "sync" else (args.only,) if args.only else ("sqlite", "postgres"),
            rate=args.rate,
            seconds=args.seconds,
            clients=args.clients,
            concurrencies=[int(c) for c in args.sweep.split(",") if c.strip()],
            sweep_workers=[int(w) for w in args.workers.split(",") if w.strip()],
            sync=not args.no_sync,
            sync_batches=args.batches,
            sync_batch=args.batch,
            profile=args.profile,
            progress=say,
        )
    )
    for r in rows:
        if args.json:
            print(json.dumps(r))
        else:
            limit = "" if r["limit"] is None else f"   limit {r['limit']:>10,.2f}   ratio {r['ratio']}"
            print(f"{r['metric']:<36} {r['value']:>10,.2f} {r['unit']:<9}{limit}")


if __name__ == "__main__":
    main()
