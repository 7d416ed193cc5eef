"""``pulih backup`` under load and ``pulih restore`` into a fresh data dir: every store and the
stream come back as they were at the backup, and the consumers resume where they were."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from system_support import free_regency_env, stream_messages

from pulih.kit import backup as pulih_backup
from pulih.kit.auth import Role, issue_token
from pulih.kit.nats_server import NatsServer, free_port
from pulih.kit.settings import DEV_JWT_SECRET, Settings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("outreach", "rehab", "referral", "reporting")
STREAM = "IBM_3301"


class Regency:
    """``pulih up`` as a subprocess, every port free."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.nats_port, self.ports, self.env = free_regency_env(data_dir)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.nats_port}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def pulih(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pulih.kit.cli", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def up(self, timeout: float = 90) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.data_dir.parent / f"{self.data_dir.name}-up.log"
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pulih.kit.cli", "up"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while "is up" not in log_path.read_text():
            assert self.process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)

    def down(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(60)


class Field:
    """An agent in the field: a unit, an agent, and clients registered, consented and screened."""

    def __init__(self, regency: Regency) -> None:
        self.regency = regency
        self.http = httpx.Client(timeout=30)
        self.clients: list[str] = []
        self.acknowledged_at: list[float] = []
        facilitator = issue_token(
            DEV_JWT_SECRET, sub="fasilitator-test", role=Role.FACILITATOR, regency="3301"
        )
        self.today = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=7))).date()
        a_month_ago = (self.today - dt.timedelta(days=30)).isoformat()
        self.unit = self.post(
            "/v1/units",
            facilitator,
            {"name": "Unit IBM Tritih Kulon", "village_code": "3301012001", "established_on": a_month_ago},
        )["unit_id"]
        self.agent = self.post(f"/v1/units/{self.unit}/agents", facilitator, {"trained_on": a_month_ago})[
            "agent_id"
        ]
        self.token = issue_token(
            DEV_JWT_SECRET, sub=self.agent, role=Role.AGENT, regency="3301", unit_id=self.unit
        )

    def post(self, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.http.post(
            f"{self.regency.url('outreach')}{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
        )
        assert answer.status_code in (200, 201), answer.text
        self.acknowledged_at.append(time.monotonic())
        return dict(answer.json())

    def register_and_screen(self, n: int) -> str:
        born = dt.date(1970, 1, 1) + dt.timedelta(days=11 * n + os.getpid() % 97)
        nik = f"330101{born:%d%m%y}{(n * 7 + os.getpid()) % 9999 + 1:04d}"
        client = self.post(
            "/v1/clients",
            self.token,
            {
                "unit_id": self.unit,
                "registered_on": self.today.isoformat(),
                "came_through": "outreach",
                "identity": {
                    "full_name": f"Klien {n}",
                    "nik": nik,
                    "birth_date": born.isoformat(),
                    "sex": "m",
                },
            },
        )["client_id"]
        self.post(
            f"/v1/clients/{client}/consents",
            self.token,
            {"scopes": ["programme", "referral"], "given_on": self.today.isoformat()},
        )
        self.post(
            f"/v1/clients/{client}/screenings",
            self.token,
            {
                "agent_id": self.agent,
                "screened_on": self.today.isoformat(),
                "injecting": "never",
                "substances": [
                    {"substance": "tobacco", "ever_used": True, "q2": 6, "q3": 3, "q4": 0, "q6": 0, "q7": 0}
                ],
            },
        )
        self.clients.append(client)
        return str(client)

    def rehab_knows(self, client: str) -> bool:
        answer = self.http.get(
            f"{self.regency.url('rehab')}/v1/clients/{client}",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        return answer.status_code == 200 and answer.json().get("recommendation") is not None


def rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted, by table."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


def outbox(db: Path) -> dict[str, str | None]:
    """published_at by event id (hex, as SQLite stores a UUID)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT event_id, published_at FROM outbox").fetchall())
    finally:
        conn.close()


async def consumer_positions(nats_url: str) -> dict[str, int]:
    """Each durable consumer of the stream: its ack floor (stream sequence)."""
    nc = await nats.connect(nats_url)
    try:
        consumers = await nc.jetstream().consumers_info(STREAM)
        return {
            c.name: c.ack_floor.stream_seq or 0
            for c in consumers
            if c.ack_floor is not None and c.config.durable_name  # not a passing ordered consumer
        }
    finally:
        await nc.close()


async def stream_last_seq(nats_url: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        return int((await nc.jetstream().stream_info(STREAM)).state.last_seq)
    finally:
        await nc.close()


def eventually_true(check: Any, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


def test_a_backup_taken_under_load_restores_every_store_the_stream_and_the_consumers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = Regency(tmp_path / "live")
    pin_sqlite, copy_pinned = pulih_backup.pin_sqlite, pulih_backup.copy_pinned

    def more_events(than: int) -> None:
        eventually_true(
            lambda: asyncio.run(stream_last_seq(live.nats_url)) >= than + 6,
            what="events published after the snapshot",
        )

    def pin_late(sources: list[Path]) -> list[sqlite3.Connection]:
        """The stores are pinned while outreach publishes: the stream grows past its snapshot."""
        more_events(asyncio.run(stream_last_seq(live.nats_url)))
        return pin_sqlite(sources)

    def copy_on_a_slow_disk(source: sqlite3.Connection, dest: Path) -> None:
        """Each store is copied while the others go on: events are published, applied and
        relayed between the moment the stores are pinned and the moment they are copied."""
        more_events(asyncio.run(stream_last_seq(live.nats_url)))
        copy_pinned(source, dest)

    monkeypatch.setattr(pulih_backup, "pin_sqlite", pin_late)
    monkeypatch.setattr(pulih_backup, "copy_pinned", copy_on_a_slow_disk)
    backup = tmp_path / "backup"
    live.up()
    try:
        field = Field(live)
        field.register_and_screen(0)
        eventually_true(lambda: field.rehab_knows(field.clients[0]), what="rehab to hear of the first client")
        before = asyncio.run(consumer_positions(live.nats_url))

        stop = threading.Event()
        failures: list[BaseException] = []

        def load() -> None:
            n = 1
            try:
                while not stop.is_set() or n < 40:
                    field.register_and_screen(n)
                    n += 1
            except BaseException as exc:  # reported below
                failures.append(exc)

        worker = threading.Thread(target=load)
        worker.start()
        eventually_true(lambda: len(field.clients) >= 10, what="the load to get going")
        backup_started = time.monotonic()
        manifest = asyncio.run(
            pulih_backup.take_backup(
                Settings(data_dir=live.data_dir, database_url=None), backup, nats_url=live.nats_url
            )
        )
        backup_ended = time.monotonic()
        stop.set()
        worker.join(120)
        assert not failures, failures
        taken = live.pulih("backup", str(tmp_path / "by-command"))
        assert taken.returncode == 0, taken.stderr
        assert "The master key is NOT in the backup" in taken.stdout
        during = [t for t in field.acknowledged_at if backup_started <= t <= backup_ended]
        assert during, "no write was acknowledged while the backup ran: it was not taken under load"
        after = asyncio.run(consumer_positions(live.nats_url))
        live_messages = asyncio.run(stream_messages(live.nats_url, "ibm.3301.>"))
    finally:
        live.down()

    assert manifest == json.loads((backup / "manifest.json").read_text())
    assert manifest["events_after_snapshot"], "nothing was published between the snapshot and the copies"
    assert set(manifest["services"]) == set(SERVICES)
    assert manifest["master_key_fingerprint"]
    assert not (backup / "master.key").exists()
    assert set(manifest["files"]) == {"stream.snapshot", *(f"{s}.db" for s in SERVICES)}
    assert "master.key" not in os.listdir(tmp_path / "by-command")
    master_key = (live.data_dir / "master.key").read_text()
    assert all(master_key.strip().encode() not in p.read_bytes() for p in backup.iterdir())
    last_seq = manifest["stream"]["last_seq"]
    assert 0 < last_seq < len(live_messages), "the stream grew while the backup ran"

    restored = Regency(tmp_path / "restored")
    assert (done := restored.pulih("restore", str(backup))).returncode == 0, done.stderr
    assert "master.key" in done.stdout  # it says where the key must go before `pulih up`
    again = restored.pulih("restore", str(backup))
    assert again.returncode == 1 and "not empty" in again.stderr

    # The stream: exactly the messages up to the snapshot, same sequences, same headers.
    with NatsServer(
        restored.data_dir / "nats", free_port(), server_name="pulih-3301", domain="r3301"
    ) as server:
        back = asyncio.run(stream_messages(server.url, "ibm.3301.>"))
        positions = asyncio.run(consumer_positions(server.url))
    assert [(m.metadata.sequence.stream, m.subject, m.data, m.headers) for m in back] == [
        (m.metadata.sequence.stream, m.subject, m.data, m.headers) for m in live_messages[:last_seq]
    ]
    # The consumers: where they were at the snapshot, between their positions before and after it.
    assert set(positions) == set(before) and positions
    for name, seq in positions.items():
        assert before[name] <= seq <= min(after[name], last_seq), name

    # The stores: as backed up; only outbox rows of events the snapshot does not hold are unsent.
    after_snapshot = {uuid.UUID(i).hex for i in manifest["events_after_snapshot"]}
    for service in SERVICES:
        copied, back_rows = rows(backup / f"{service}.db"), rows(restored.data_dir / f"{service}.db")
        assert {t: r for t, r in back_rows.items() if t != "outbox"} == {
            t: r for t, r in copied.items() if t != "outbox"
        }, service
        was, now = outbox(backup / f"{service}.db"), outbox(restored.data_dir / f"{service}.db")
        assert set(was) == set(now)
        for event_id, published in now.items():
            if event_id in after_snapshot:
                assert published is None
            elif was[event_id] is not None:
                assert published == was[event_id]
    inbox_before = {s: rows(restored.data_dir / f"{s}.db")["inbox"] for s in SERVICES}

    # The restored regency: it publishes what the snapshot lacks, applies each event once, and
    # a new client reaches rehab exactly once.
    (restored.data_dir / "master.key").write_text(master_key)
    restored.up()
    try:
        field = Field(restored)
        newcomer = field.register_and_screen(1000)
        eventually_true(lambda: field.rehab_knows(newcomer), what="rehab to hear of the new client")

        def drained() -> bool:
            return all(
                all(p is not None for p in outbox(restored.data_dir / f"{s}.db").values()) for s in SERVICES
            )

        eventually_true(drained, what="every outbox to drain")
        final = asyncio.run(stream_messages(restored.nats_url, "ibm.3301.>"))
    finally:
        restored.down()

    assert [m.data for m in final[:last_seq]] == [m.data for m in live_messages[:last_seq]]
    ids = [m.headers["Nats-Msg-Id"] for m in final if m.headers]
    assert len(ids) == len(set(ids)), "an event is in the restored stream twice"
    for service in SERVICES:  # no event a restored store holds is missing from the stream
        missing = {str(uuid.UUID(i)) for i in outbox(restored.data_dir / f"{service}.db")} - set(ids)
        assert not missing, f"{service}: {len(missing)} events never reach the restored stream"
    for service in SERVICES:
        inbox_after = rows(restored.data_dir / f"{service}.db")["inbox"]
        assert set(inbox_before[service]) <= set(inbox_after), f"{service} forgot or re-applied an event"
    rehab_inbox = [row for row in rows(restored.data_dir / "rehab.db")["inbox"]]
    events = {m.headers["Nats-Msg-Id"]: m for m in final if m.headers}
    by_consumer: dict[str, list[str]] = {}
    for consumer, event_id, *_ in rehab_inbox:
        by_consumer.setdefault(consumer, []).append(str(uuid.UUID(event_id)))
    for consumer, applied in by_consumer.items():
        assert len(applied) == len(set(applied)), consumer
        assert set(applied) <= set(events), f"{consumer} applied an event the stream does not hold"
