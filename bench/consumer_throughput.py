"""How fast a service's durable consumer works through a backlog: rehab applying outreach's
events (registration, consent, screening per client) through its inbox, one message per fetch
so events about one client keep their order. Prints figures; not a test.

    .venv/bin/python bench/consumer_throughput.py [--clients 1000] [--database-url postgresql://…]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import secrets
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import nats
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from pulih.contracts import Event, new_event, stream_name, subject_for
from pulih.contracts.events.outreach import ClientRegistered, ClientScreened, ConsentRecorded
from pulih.kit.messaging import regency_stream_config
from pulih.kit.nats_server import NatsServer
from pulih.kit.settings import Settings
from pulih.rehab.app import build
from pulih.rehab.store import KnownScreening


def client_events(unit_id: uuid.UUID, agent_id: uuid.UUID) -> list[Event]:
    client_id = uuid.uuid4()
    return [
        ClientRegistered.model_validate(
            {
                "client_id": client_id,
                "unit_id": unit_id,
                "registered_on": "2026-02-01",
                "sex": "f",
                "age_band": "25_34",
                "came_through": "outreach",
            }
        ),
        ConsentRecorded(
            consent_id=uuid.uuid4(), client_id=client_id, scopes=["programme"], given_on=date(2026, 2, 1)
        ),
        ClientScreened.model_validate(
            {
                "screening_id": uuid.uuid4(),
                "client_id": client_id,
                "unit_id": unit_id,
                "agent_id": agent_id,
                "screened_on": "2026-02-02",
                "instrument": "assist_v3",
                "substances": [{"substance": "cannabis", "score": 12, "risk": "moderate"}],
                "injected_last_3_months": False,
                "overall_risk": "moderate",
                "recommendation": "ibm_programme",
            }
        ),
    ]


async def main(clients: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(Path(tmp) / "nats", domain="r3301").start()
        try:
            nc = await nats.connect(server.url)
            js = nc.jetstream()
            await js.add_stream(regency_stream_config("3301"))
            unit_id, agent_id = uuid.uuid4(), uuid.uuid4()
            started = time.perf_counter()
            pending = []
            for _ in range(clients):
                for data in client_events(unit_id, agent_id):
                    event = new_event(data, regency="3301")
                    pending.append(
                        js.publish(
                            subject_for(event, "3301"),
                            event.to_json(),
                            headers={"Nats-Msg-Id": str(event.id)},
                        )
                    )
                if len(pending) >= 256:
                    await asyncio.gather(*pending)
                    pending = []
            await asyncio.gather(*pending)
            published = time.perf_counter() - started
            print(
                f"backlog: {clients * 3} events in stream {stream_name('3301')} ({published:.1f}s to publish)"
            )
            await nc.close()

            settings = Settings.model_validate(
                {
                    "PULIH_DATA_DIR": tmp,
                    "NATS_URL": server.url,
                    "DATABASE_URL": database_url or f"sqlite+aiosqlite:///{tmp}/rehab.db",
                    "PULIH_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
                }
            )
            app = build(settings)
            async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
                database = app.state.runtime.database
                started = time.perf_counter()
                done = 0
                while done < clients:
                    await asyncio.sleep(0.5)
                    async with database.sessions() as session:
                        done = int(
                            await session.scalar(select(func.count()).select_from(KnownScreening)) or 0
                        )
                    print(f"  {done}/{clients} clients applied", flush=True)
                elapsed = time.perf_counter() - started
            print(
                f"rehab applied {clients * 3} events in {elapsed:.1f}s: {clients * 3 / elapsed:,.0f} events/s"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--database-url", help="rehab's store (default: a fresh SQLite file)")
    args = parser.parse_args()
    asyncio.run(main(args.clients, args.database_url))
