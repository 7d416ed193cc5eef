"""Throughput of outreach: screenings accepted per second through the HTTP API (relay running),
and events published per second by the outbox relay. Prints figures; not a test.

    ./dev bench [--screenings 2000] [--concurrency 16] [--events 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import httpx

from pulih.contracts.events.outreach import UnitEstablished
from pulih.kit.auth import Role, issue_token
from pulih.kit.database import Database
from pulih.kit.emitter import Emitter
from pulih.kit.messaging import ensure_regency_stream, make_broker, stream_publisher
from pulih.kit.migrations import upgrade_to_head
from pulih.kit.nats_server import NatsServer, free_port
from pulih.kit.outbox import OutboxRelay

SECRET = "bench-secret-of-at-least-thirty-two-bytes"
SCREENING = [
    {
        "substance": "cannabis",
        "ever_used": True,
        "q2": 4,
        "q3": 3,
        "q4": 4,
        "q5": 5,
        "q6": 3,
        "q7": 0,
    }
]
MIGRATIONS = Path(__file__).resolve().parents[1] / "services/outreach/src/pulih/outreach/migrations"


async def api_screenings(base: str, n: int, concurrency: int) -> None:
    fac = {
        "Authorization": "Bearer " + issue_token(SECRET, sub="bench", role=Role.FACILITATOR, regency="3301")
    }
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        unit = (
            await http.post(
                "/v1/units",
                headers=fac,
                json={
                    "name": "Bench",
                    "village_code": "3301012001",
                    "established_on": "2026-01-01",
                },
            )
        ).json()["unit_id"]
        agent = (
            await http.post(f"/v1/units/{unit}/agents", headers=fac, json={"trained_on": "2026-01-01"})
        ).json()["agent_id"]
        print(f"setting up {n} clients with consent…", flush=True)
        clients: list[str] = []
        for i in range(n):
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
            r = await http.post("/v1/clients", headers=fac, json=body)
            assert r.status_code == 201, r.text
            cid = r.json()["client_id"]
            await http.post(
                f"/v1/clients/{cid}/consents",
                headers=fac,
                json={"scopes": ["programme"], "given_on": "2026-02-01"},
            )
            clients.append(cid)
        queue: asyncio.Queue[str] = asyncio.Queue()
        for c in clients:
            queue.put_nowait(c)

        async def worker() -> None:
            while not queue.empty():
                cid = queue.get_nowait()
                r = await http.post(
                    f"/v1/clients/{cid}/screenings",
                    headers=fac,
                    json={
                        "agent_id": agent,
                        "screened_on": "2026-02-02",
                        "injecting": "never",
                        "substances": SCREENING,
                    },
                )
                assert r.status_code == 201, r.text

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        print(
            f"API: {n} screenings in {elapsed:.2f}s = {n / elapsed:,.0f} screenings/s accepted "
            f"({concurrency} concurrent clients, SQLite, relay running)"
        )


async def relay_rate(nats_url: str, workdir: Path, n: int) -> None:
    database = Database(f"sqlite+aiosqlite:///{workdir}/relay.db")
    await upgrade_to_head(database, MIGRATIONS)
    emitter = Emitter("3301")
    async with database.transaction() as session:
        for i in range(n):
            await emitter.emit(
                session,
                UnitEstablished(
                    unit_id=uuid.uuid4(),
                    name=f"Unit {i}",
                    village_code="3301012001",
                    established_on=date(2026, 1, 1),
                ),
            )
    broker = make_broker(nats_url, name="bench")
    await broker.connect()
    await ensure_regency_stream(broker, "3301")
    relay = OutboxRelay(database, stream_publisher(broker, "3301"), batch_size=500)
    started = time.perf_counter()
    sent = 0
    while sent < n:
        sent += await relay.relay_once()
    elapsed = time.perf_counter() - started
    print(
        f"relay: {n} events published and marked in {elapsed:.2f}s = {n / elapsed:,.0f} events/s "
        "(stream-bound, PubAck each)"
    )
    await broker.stop()
    await database.dispose()


def start_outreach(work: Path, nats_url: str) -> tuple[subprocess.Popen[bytes], str]:
    """Outreach under uvicorn in its own process, as deployed; returns once it is ready."""
    port = free_port()
    env = {
        **os.environ,
        "PULIH_DATA_DIR": str(work),
        "NATS_URL": nats_url,
        "PULIH_JWT_SECRET": SECRET,
        "PULIH_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "PULIH_LOG_LEVEL": "WARNING",
    }
    env.pop("DATABASE_URL", None)
    command = [sys.executable, "-m", "uvicorn", "pulih.outreach.app:app", "--port", str(port)]
    server = subprocess.Popen([*command, "--log-level", "warning"], env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/readyz").status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.terminate()
    raise RuntimeError("outreach did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--screenings", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, NatsServer(Path(tmp) / "nats") as nats:
        work = Path(tmp)
        server, base = start_outreach(work, nats.url)
        try:
            asyncio.run(api_screenings(base, args.screenings, args.concurrency))
        finally:
            server.terminate()
            server.wait()
        asyncio.run(relay_rate(nats.url, work, args.events))


if __name__ == "__main__":
    main()
