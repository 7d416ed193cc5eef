"""The pieces the chaos cases share: services as real processes (killable with SIGKILL), a load
generator that retries with the same Idempotency-Key, and the checks: every acknowledged write has
exactly one event in the stream (sequences without a gap, no id twice), and every consumer's read
model equals a fold over the stream."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from nats.aio.msg import Msg
from outreach_factories import Outreach, screening_body
from system_support import stream_messages
from test_rehab_system import consumer_caught_up

from pulih.kit.nats_server import NatsServer, free_port
from pulih.kit.testing import JWT_SECRET, REGENCY, eventually

ROOT = Path(__file__).resolve().parents[2]
MASTER_KEY = base64.b64encode(b"chaos-suite-master-key-32-bytes!").decode()

# The durable consumers whose read models the cases check, and the tables each keeps of outreach's events.
READ_MODELS: dict[str, dict[str, str]] = {
    "rehab": {"client": "clients", "consent": "consents", "screening": "screenings"},
    "referral": {"client": "known_clients", "consent": "known_consents", "screening": "known_screenings"},
}
DURABLES = {"rehab": "rehab-outreach-events", "referral": "referral-outreach"}
EVENT_OF = {"client": "ClientRegistered", "consent": "ConsentRecorded", "screening": "ClientScreened"}


class ServiceProcess:
    """One service under uvicorn in a process of its own, on a SQLite store in ``data_dir``."""

    def __init__(self, name: str, data_dir: Path, nats_url: str, **env: str) -> None:
        self.name, self.data_dir, self.nats_url = name, data_dir, nats_url
        self.port = free_port()
        self.database = data_dir / f"{name}.db"
        self.env = {
            **os.environ,
            "PULIH_ENV": "development",
            "PULIH_REGENCY": REGENCY,
            "PULIH_DATA_DIR": str(data_dir),
            "NATS_URL": nats_url,
            "DATABASE_URL": f"sqlite+aiosqlite:///{self.database}",
            "PULIH_JWT_SECRET": JWT_SECRET,
            "PULIH_MASTER_KEY": MASTER_KEY,
            "PULIH_RELAY_POLL_SECONDS": "0.2",
            "PULIH_MAX_DELIVER": "4",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 60) -> ServiceProcess:
        """Start the process and wait until it answers ``/healthz`` (its lifespan has run)."""
        process = self.spawn()

        async def healthy() -> bool:
            assert process.poll() is None, f"{self.name} exited; see {self.data_dir}"
            try:
                async with httpx.AsyncClient(timeout=1) as http:
                    return (await http.get(f"{self.url}/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(healthy, timeout=timeout)
        return self

    def spawn(self) -> subprocess.Popen[bytes]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        command = [sys.executable, "-m", "uvicorn", f"pulih.{self.name}.app:app", "--host", "127.0.0.1"]
        with (self.data_dir / f"{self.name}-{self.starts}.log").open("wb") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port), "--log-level", "warning"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.process

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of ``table`` in the service's store, read with a connection of our own."""
        with sqlite3.connect(self.database, timeout=30) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(f'SELECT * FROM "{table}"')]

    def columns(self, table: str) -> list[str]:
        with sqlite3.connect(self.database, timeout=30) as db:
            return [r[1] for r in db.execute(f'PRAGMA table_info("{table}")')]


Send = Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[httpx.Response]]
"""Sends one request with the given headers (the same body each time)."""


@dataclass
class Ack:
    """An acknowledged write: what was asked, with which key, and the first 2xx answer."""

    kind: str  # client, consent or screening
    send: Send
    key: str
    status: int
    answer: dict[str, Any]
    attempts: int

    @property
    def entity_id(self) -> str:
        return str(self.answer[f"{self.kind}_id"])


@dataclass
class Load:
    """Field agents registering, consenting and screening clients through outreach, each request
    retried with its Idempotency-Key while the service does not answer (as the field app does)."""

    url: str
    first_nik_serial: int = 1
    acks: list[Ack] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    transport_errors: int = 0
    server_errors: int = 0
    retried: int = 0
    retry_deadline: float = 90.0

    async def prepare(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            o = Outreach(http, None)
            self.unit_id = await o.unit()
            self.agent_id = await o.agent(self.unit_id)
            self.agent = o.agent_auth(self.unit_id, self.agent_id)

    def headers(self, key: str) -> dict[str, str]:
        return {**self.agent, "Idempotency-Key": key}

    async def post(self, http: httpx.AsyncClient, kind: str, send: Send) -> Ack | None:
        key = str(uuid.uuid4())
        deadline = time.monotonic() + self.retry_deadline
        attempts = 0
        while True:
            attempts += 1
            try:
                r = await send(http, self.headers(key))
            except httpx.TransportError:
                self.transport_errors += 1
            else:
                if r.status_code < 300:
                    ack = Ack(kind, send, key, r.status_code, r.json(), attempts)
                    self.acks.append(ack)
                    self.retried += attempts > 1
                    return ack
                if r.status_code < 500:
                    self.failures.append(f"{kind} {r.status_code} {r.text}")
                    return None
                self.server_errors += 1
            if time.monotonic() > deadline:
                self.failures.append(f"{kind}: no answer within {self.retry_deadline}s")
                return None
            await asyncio.sleep(0.1)  # the field app's pause between retries, not a wait for an event

    async def one_client(self, http: httpx.AsyncClient, serial: int) -> None:
        nik = f"330101150590{serial:04d}"  # same district and birth date as the factory's, a serial each
        unit_id, agent_id = self.unit_id, self.agent_id

        async def register(h: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
            return await Outreach(h, None).client(unit_id, headers, nik=nik)

        registration = await self.post(http, "client", register)
        if registration is None:
            return
        client_id = registration.entity_id

        async def consent(h: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
            body = {"scopes": ["programme", "referral"], "given_on": "2026-02-01"}
            return await h.post(f"/v1/clients/{client_id}/consents", headers=headers, json=body)

        async def screen(h: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
            body = screening_body(agent_id)
            return await h.post(f"/v1/clients/{client_id}/screenings", headers=headers, json=body)

        await self.post(http, "consent", consent)
        await self.post(http, "screening", screen)

    async def run(self, clients: int, concurrency: int = 6) -> None:
        """Register, consent and screen ``clients`` clients, ``concurrency`` at a time."""
        serials = iter(range(self.first_nik_serial, self.first_nik_serial + clients))
        self.first_nik_serial += clients

        async def worker() -> None:
            async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
                for serial in serials:
                    await self.one_client(http, serial)

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    async def replayed_differently(self) -> list[str]:
        """Send every acknowledged write again with its key; the ones whose answer differs."""
        differing = []
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            for ack in self.acks:
                r = await ack.send(http, self.headers(ack.key))
                if (r.status_code, r.json()) != (ack.status, ack.answer):
                    differing.append(f"{ack.kind} {ack.entity_id}: {r.status_code} {r.text}")
        return differing


async def events_in_stream(nats_url: str) -> list[Msg]:
    return await stream_messages(nats_url, f"ibm.{REGENCY}.>")


@dataclass
class StreamCheck:
    """What the stream holds against what was acknowledged."""

    messages: int
    gaps: list[int]
    duplicate_ids: list[str]
    lost: list[str]
    duplicated: list[str]


def check_stream(messages: list[Msg], acks: Iterable[Ack]) -> StreamCheck:
    """A bitset over stream sequences (1..last, none missing) and a set over event ids (none twice);
    then each acknowledged write against its events (exactly one of its type about its entity)."""
    seqs = [m.metadata.sequence.stream for m in messages]
    present = bytearray(max(seqs, default=0) + 1)
    for s in seqs:
        present[s] = 1
    gaps = [s for s in range(1, len(present)) if not present[s]]
    ids = [(m.headers or {}).get("Nats-Msg-Id", "") for m in messages]
    seen: set[str] = set()
    duplicate_ids = sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
    per_entity: dict[tuple[str, str], int] = {}
    for m in messages:
        body = json.loads(m.data)
        name = body["type"].split(".")[2]
        for kind, event in EVENT_OF.items():
            if name == event:
                per_entity[(kind, body["data"][f"{kind}_id"])] = (
                    per_entity.get((kind, body["data"][f"{kind}_id"]), 0) + 1
                )
    counts = [(a, per_entity.get((a.kind, a.entity_id), 0)) for a in acks]
    return StreamCheck(
        messages=len(messages),
        gaps=gaps,
        duplicate_ids=duplicate_ids,
        lost=[f"{a.kind} {a.entity_id}" for a, n in counts if n == 0],
        duplicated=[f"{a.kind} {a.entity_id} x{n}" for a, n in counts if n > 1],
    )


def _normal(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column.endswith("_id") and isinstance(value, str):
        return str(uuid.UUID(value))
    if column == "scopes":
        return sorted(json.loads(value) if isinstance(value, str) else value)
    if isinstance(value, bool):
        return int(value)
    return value


def fold(messages: list[Msg], kind: str, columns: list[str]) -> dict[str, dict[str, Any]]:
    """The rows a read model of ``kind`` must hold after every event in the stream, on ``columns``
    (those of the table that the event carries)."""
    rows: dict[str, dict[str, Any]] = {}
    for m in messages:
        body = json.loads(m.data)
        if body["type"].split(".")[2] != EVENT_OF[kind]:
            continue
        data = body["data"]
        rows[_normal(f"{kind}_id", data[f"{kind}_id"])] = {
            c: _normal(c, data[c]) for c in columns if c in data
        }
    return rows


def read_model_differences(service: ServiceProcess, messages: list[Msg]) -> dict[str, Any]:
    """Where a service's read model of clients, consents and screenings differs from the fold
    over the stream (empty when they are equal)."""
    differences: dict[str, Any] = {}
    for kind, table in READ_MODELS[service.name].items():
        sample = next(
            (json.loads(m.data)["data"] for m in messages if EVENT_OF[kind] in json.loads(m.data)["type"]), {}
        )
        columns = [c for c in service.columns(table) if c in sample]
        expected = fold(messages, kind, columns)
        actual = {
            _normal(f"{kind}_id", r[f"{kind}_id"]): {c: _normal(c, r[c]) for c in columns}
            for r in service.rows(table)
        }
        if expected != actual:
            differences[table] = {
                "missing": sorted(set(expected) - set(actual)),
                "extra": sorted(set(actual) - set(expected)),
                "changed": sorted(k for k in set(expected) & set(actual) if expected[k] != actual[k]),
            }
    return differences


def inbox_duplicates(service: ServiceProcess) -> int:
    """Events an inbox holds more than once for one consumer (its key forbids it; a double effect
    would show in the read model first)."""
    with sqlite3.connect(service.database, timeout=30) as db:
        return int(
            db.execute(
                "SELECT count(*) FROM"
                " (SELECT consumer, event_id FROM inbox GROUP BY 1, 2 HAVING count(*) > 1)"
            ).fetchone()[0]
        )


def unsent_outbox_rows(service: ServiceProcess) -> int:
    with sqlite3.connect(service.database, timeout=30) as db:
        return int(db.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()[0])


async def caught_up(nats_url: str, *services: str) -> bool:
    """Whether every named service's consumer of outreach's events has acknowledged everything."""
    try:
        return all([await consumer_caught_up(nats_url, DURABLES[s]) for s in services])
    except Exception:
        return False  # the broker is still coming back


async def settled(
    nats: NatsServer, outreach: ServiceProcess, consumers: list[str], timeout: float = 60
) -> float:
    """Wait until outreach's outbox is empty and the consumers have acknowledged the whole stream;
    return how long that took."""
    began = time.monotonic()
    await eventually(
        lambda: asyncio.to_thread(unsent_outbox_rows, outreach), until=lambda n: n == 0, timeout=timeout
    )
    await eventually(lambda: caught_up(nats.url, *consumers), timeout=timeout)
    return time.monotonic() - began


async def dead_letters(nats_url: str) -> list[Msg]:
    return await stream_messages(nats_url, f"ibm.{REGENCY}.dlq.>")


@dataclass
class ChaosRegency:
    """A nats-server and the services a case starts, all stopped at the end of the case."""

    root: Path
    nats: NatsServer
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    def service(self, name: str, **env: str) -> ServiceProcess:
        self.services[name] = ServiceProcess(name, self.root / name, self.nats.url, **env)
        return self.services[name]

    def close(self) -> None:
        for service in self.services.values():
            service.stop()
        if self.nats.process is not None:
            self.nats.process.send_signal(signal.SIGCONT)  # a case that failed while it was paused
        self.nats.stop()
