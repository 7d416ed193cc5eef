"""Read your own writes across services (issue 15, item 6), against a real nats-server: outreach's
answer names the events it emitted (``Pulih-Events``), and rehab, sent ``Pulih-After`` with them,
waits until it has applied them before it runs the command: screen, then enrol at once, works
every time. Without the header a refusal says honestly that rehab has not heard yet; an event that
never comes gives 409 ``not_yet_known`` with ``Retry-After`` after a bounded wait."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from outreach_factories import Outreach, screening_body
from rehab_factories import MONDAY, Client, Rehab, middling_whoqol
from sqlalchemy import select
from system_support import running

from pulih.kit import commands
from pulih.kit.nats_server import NatsServer
from pulih.kit.outbox import outbox_table
from pulih.kit.testing import make_settings
from pulih.outreach.app import build as build_outreach
from pulih.rehab.app import build as build_rehab

pytestmark = pytest.mark.system


class Regency:
    def __init__(self, outreach: Outreach, rehab: Rehab) -> None:
        self.outreach, self.rehab = outreach, rehab
        self.registered = 0

    async def screened(self) -> tuple[Client, list[str]]:
        """A client registered, consented and screened in outreach (rehab may not know yet), and
        the ids outreach's screening answer named in ``Pulih-Events``."""
        o = self.outreach
        unit_id = await o.unit()
        agent_id = await o.agent(unit_id)
        agent = o.agent_auth(unit_id, agent_id)
        self.registered += 1
        registered = await o.client(unit_id, agent, nik=f"330101150590{self.registered:04d}")
        assert registered.status_code == 201, registered.text
        client_id = str(registered.json()["client_id"])
        await o.consent(client_id, agent, ["programme", "referral"])
        r = await o.http.post(
            f"/v1/clients/{client_id}/screenings", headers=agent, json=screening_body(agent_id)
        )
        assert r.status_code == 201, r.text
        events = r.headers.get(commands.EVENTS_HEADER, "")
        return Client(client_id, unit_id, agent_id), [e for e in events.split(",") if e]

    async def enrol(self, c: Client, after: list[str] | None = None) -> httpx.Response:
        body = {
            "client_id": c.client_id,
            "agent_id": c.agent_id,
            "enrolled_on": MONDAY.isoformat(),
            "baseline": middling_whoqol(),
        }
        headers = dict(c.agent)
        if after is not None:
            headers[commands.AFTER_HEADER] = ",".join(after)
        return await self.rehab.http.post("/v1/enrolments", headers=headers, json=body)


@pytest.fixture
async def regency(tmp_path: Path, nats_server: NatsServer, database_url: str) -> AsyncIterator[Regency]:
    outreach_app = build_outreach(
        make_settings(
            tmp_path / "outreach",
            nats_url=nats_server.url,
            database_url=f"sqlite+aiosqlite:///{tmp_path}/o.db",
        )
    )
    rehab_app = build_rehab(
        make_settings(
            tmp_path / "rehab",
            nats_url=nats_server.url,
            database_url=database_url,
            PULIH_CLOCK="manual",
            PULIH_CLOCK_START=MONDAY.isoformat(),
            PULIH_SCHEDULER_SECONDS=3600,
        )
    )
    async with running(outreach_app) as outreach_http, running(rehab_app) as rehab_http:
        yield Regency(Outreach(outreach_http, outreach_app), Rehab(rehab_http, rehab_app))


async def enrolled_ids(rehab: Rehab) -> set[str]:
    return {str(data["client_id"]) for name, data in await rehab.outbox() if name == "ClientEnrolled"}


async def test_screen_then_enrol_at_once_with_pulih_after_enrols_every_client(
    regency: Regency, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What is tested is that Pulih-After orders the two writes, not how fast the event crosses:
    # on a loaded 2-core machine 20 screenings at once can take longer than the 5 s default
    # (the bound itself has its own test, below).
    monkeypatch.setattr(commands, "AFTER_WAIT_SECONDS", 30.0)

    async def screen_then_enrol() -> tuple[Client, list[str], httpx.Response]:
        client, events = await regency.screened()
        return client, events, await regency.enrol(client, after=events)

    results = await asyncio.gather(*(screen_then_enrol() for _ in range(20)))

    outreach_ids = await outbox_event_ids(regency.outreach)
    for _client, events, r in results:
        assert len(events) == 1 and events[0] in outreach_ids  # the ClientScreened just emitted
        assert r.status_code == 201, r.text
        assert r.headers[commands.EVENTS_HEADER]  # rehab's answer names its events too
    assert await enrolled_ids(regency.rehab) == {c.client_id for c, _, _ in results}


async def test_without_pulih_after_a_refusal_says_rehab_has_not_heard_yet(regency: Regency) -> None:
    async def screen_then_enrol() -> tuple[Client, httpx.Response]:
        client, _ = await regency.screened()
        return client, await regency.enrol(client)

    results = await asyncio.gather(*(screen_then_enrol() for _ in range(20)))
    for _, r in results:
        if r.status_code == 201:
            continue
        body = r.json()
        assert (r.status_code, body["code"]) in {(404, "client_not_found"), (409, "not_screened")}, r.text
        assert "not heard" in body["message"] and "Pulih-After" in body["message"], r.text
    refused = {c.client_id for c, r in results if r.status_code != 201}
    assert not refused & await enrolled_ids(regency.rehab)


async def test_an_event_that_never_comes_gives_409_not_yet_known_after_a_bounded_wait(
    regency: Regency, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commands, "AFTER_WAIT_SECONDS", 1.0)
    client, events = await regency.screened()
    before = await regency.rehab.outbox()
    never = str(uuid.uuid4())

    started = time.monotonic()
    r = await regency.enrol(client, after=[*events, never])
    waited = time.monotonic() - started

    assert r.status_code == 409, r.text
    assert r.json()["code"] == "not_yet_known"
    assert r.json()["field"] == "Pulih-After"
    assert never in r.json()["message"] and events[0] not in r.json()["message"]
    assert r.headers["Retry-After"] == str(commands.AFTER_RETRY_SECONDS)
    assert 1.0 <= waited < 5
    assert await regency.rehab.outbox() == before

    # a malformed header is the caller's mistake, named
    bad = await regency.enrol(client, after=["not-an-id"])
    assert bad.status_code == 422, bad.text
    assert (bad.json()["code"], bad.json()["field"]) == ("invalid_event_id", "Pulih-After")
    assert await regency.rehab.outbox() == before

    # the events that did come are enough
    ok = await regency.enrol(client, after=events)
    assert ok.status_code == 201, ok.text


async def outbox_event_ids(o: Outreach) -> set[str]:
    async with o.app.state.runtime.database.sessions() as s:
        return {str(e) for e in await s.scalars(select(outbox_table.c.event_id))}
