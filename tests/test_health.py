"""Truthful health (issue 15, item 4): ``/readyz`` notices a store that cannot commit, a paused
consumer and an outbox that does not drain; a write the store refuses for infrastructure reasons
answers 503 ``store_unavailable`` with ``Retry-After``, and the service heals by itself."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from outreach_factories import Outreach
from sqlalchemy import event, func, select, update

from pulih.kit.nats_server import NatsServer
from pulih.kit.outbox import outbox_table
from pulih.kit.testing import eventually, make_settings, serve
from pulih.outreach.app import build

pytestmark = pytest.mark.system

UNIT = {"name": "Unit IBM Tritih Kulon", "village_code": "3301012001", "established_on": "2026-01-10"}


@pytest.fixture
async def outreach(tmp_path: Path, nats_server: NatsServer) -> AsyncIterator[Outreach]:
    settings = make_settings(
        tmp_path, nats_url=nats_server.url, database_url=f"sqlite+aiosqlite:///{tmp_path}/outreach.db"
    )
    app = build(settings)
    async with serve(app) as http:
        o = Outreach(http, app)
        await eventually(lambda: ready(o.http), timeout=20)
        yield o


async def ready(http: httpx.AsyncClient) -> bool:
    return (await http.get("/readyz")).status_code == 200


@contextmanager
def read_only_store(app: Any) -> Iterator[None]:
    """Every connection opened meanwhile can read the store but not write it (as a disk that went
    read-only); connections open before stay as they are until the service drops them."""

    def read_only(dbapi_conn: Any, _: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA query_only = ON")
        cursor.close()

    engine = app.state.runtime.database.engine.sync_engine
    event.listen(engine, "connect", read_only)
    try:
        yield
    finally:
        event.remove(engine, "connect", read_only)


async def outbox_rows(app: Any) -> int:
    async with app.state.runtime.database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(outbox_table)) or 0)


async def test_a_store_that_cannot_commit_is_not_ready_and_a_write_answers_503_until_it_heals(
    outreach: Outreach,
) -> None:
    o = outreach
    await o.unit()
    before = await outbox_rows(o.app)

    with read_only_store(o.app):
        await o.app.state.runtime.database.engine.dispose()  # the disk went read-only: reopen

        r = await o.http.get("/readyz")
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["ready"] is False and body["failed"] == ["store"]
        assert body["checks"]["store"].startswith("down: OperationalError")
        assert "readonly" in body["checks"]["store"]
        assert body["checks"]["nats"] == "ok"  # SELECT 1 still works: the old check said ready
        assert r.headers["Retry-After"]

        w = await o.http.post("/v1/units", headers=o.facilitator, json=UNIT)
        assert w.status_code == 503, w.text
        assert w.headers["content-type"].startswith("application/json")
        assert w.json() == {
            "code": "store_unavailable",
            "message": w.json()["message"],
            "field": None,
        }
        assert int(w.headers["Retry-After"]) > 0
        assert await outbox_rows(o.app) == before

    # The disk is back: the service reaches it again without a restart.
    await eventually(lambda: ready(o.http))
    again = await o.http.post("/v1/units", headers=o.facilitator, json=UNIT)
    assert again.status_code == 201, again.text
    assert await outbox_rows(o.app) == before + 1


async def test_a_paused_consumer_makes_the_service_not_ready(outreach: Outreach) -> None:
    runtime = outreach.app.state.runtime
    runtime.paused_consumers.add("outreach.referral")
    r = await outreach.http.get("/readyz")
    assert r.status_code == 503
    assert r.json()["failed"] == ["consumers"]
    assert r.json()["checks"]["consumers"] == "paused: outreach.referral"

    runtime.paused_consumers.discard("outreach.referral")
    assert await ready(outreach.http)


async def test_an_outbox_that_does_not_drain_while_nats_is_up_is_not_ready(outreach: Outreach) -> None:
    o = outreach
    runtime = o.app.state.runtime
    await runtime.relay.stop()  # a relay that died (or a stream that refuses every event)
    await o.unit()
    assert await ready(o.http)  # a fresh row is no stall
    async with runtime.database.transaction() as session:
        await session.execute(
            update(outbox_table)
            .where(outbox_table.c.published_at.is_(None))
            .values(created_at=datetime.now(UTC) - timedelta(minutes=2))
        )

    r = await o.http.get("/readyz")
    assert r.status_code == 503, r.text
    assert r.json()["failed"] == ["outbox"]
    assert r.json()["checks"]["outbox"].startswith("not draining: 1 waiting")
    assert r.json()["checks"]["outbox_backlog"] == "1"

    runtime.relay.start()
    await eventually(lambda: ready(o.http))
    assert await runtime.relay.backlog() == 0
