"""Outreach and rehab against a real nats-server: screening → enrolment → sessions → completion,
every consumed event delivered twice, and two scheduler replicas on one database."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import nats
import pytest
from outreach_factories import Outreach, screening_body
from rehab_factories import Client, Rehab
from system_support import running, schema_for, stream_messages

from pulih.contracts import parse_event, stream_name
from pulih.kit.nats_server import NatsServer
from pulih.kit.testing import eventually, make_settings
from pulih.outreach.app import build as build_outreach
from pulih.rehab.app import build as build_rehab

pytestmark = pytest.mark.system

MONDAY = date(2026, 3, 2)


def rehab_settings(tmp_path: Path, nats_url: str, database_url: str, name: str = "rehab") -> Any:
    return make_settings(
        tmp_path / name,
        nats_url=nats_url,
        database_url=database_url,
        PULIH_CLOCK="manual",
        PULIH_CLOCK_START=MONDAY.isoformat(),
        PULIH_SCHEDULER_SECONDS=3600,  # the tests move the clock, which wakes the job
    )


async def consumer_caught_up(nats_url: str, durable: str) -> bool:
    """Whether a durable consumer has been handed, and has acknowledged, every message."""
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().consumer_info(stream_name("3301"), durable)
        return info.num_pending == 0 and info.num_ack_pending == 0 and info.delivered.stream_seq > 0
    finally:
        await nc.close()


async def publish_copies(nats_url: str, subject: str) -> int:
    """Publish every stored message on ``subject`` again under a new Nats-Msg-Id (a redelivery
    that JetStream's duplicate window cannot catch); return how many."""
    messages = await stream_messages(nats_url, subject)
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for m in messages:
            await js.publish(m.subject, m.data, headers={"Nats-Msg-Id": f"copy-{uuid.uuid4()}"})
    finally:
        await nc.close()
    return len(messages)


class Regency:
    """Outreach and rehab running in this process against one real nats-server."""

    def __init__(self, outreach: Outreach, rehab: Rehab, nats_url: str) -> None:
        self.outreach, self.rehab, self.nats_url = outreach, rehab, nats_url
        self.registered = 0

    async def screened_client(self) -> Client:
        o = self.outreach
        unit_id = await o.unit()
        agent_id = await o.agent(unit_id)
        agent = o.agent_auth(unit_id, agent_id)
        self.registered += 1  # each client a NIK of their own: same district and birth date, new serial
        registered = await o.client(unit_id, agent, nik=f"330101150590{self.registered:04d}")
        client_id = str(registered.json()["client_id"])
        await o.consent(client_id, agent, ["programme", "referral"])
        r = await o.http.post(
            f"/v1/clients/{client_id}/screenings", headers=agent, json=screening_body(agent_id)
        )
        assert r.status_code == 201, r.text
        client = Client(client_id, unit_id, agent_id)

        async def known() -> httpx.Response:
            return await self.rehab.http.get(f"/v1/clients/{client_id}", headers=client.agent)

        seen = await eventually(known, until=lambda r: r.status_code == 200 and r.json()["recommendation"])
        assert seen.json()["consent_scopes_today"] == ["programme", "referral"]
        return client


@pytest.fixture
async def regency(tmp_path: Path, nats_server: NatsServer, database_url: str) -> AsyncIterator[Regency]:
    outreach_app = build_outreach(
        make_settings(
            tmp_path / "outreach",
            nats_url=nats_server.url,
            database_url=f"sqlite+aiosqlite:///{tmp_path}/o.db",
        )
    )
    rehab_app = build_rehab(rehab_settings(tmp_path, nats_server.url, database_url))
    async with running(outreach_app) as outreach_http, running(rehab_app) as rehab_http:
        yield Regency(Outreach(outreach_http, outreach_app), Rehab(rehab_http, rehab_app), nats_server.url)


async def test_screening_to_completion_publishes_each_rehab_event_on_its_subject(regency: Regency) -> None:
    rehab = regency.rehab
    c = await regency.screened_client()
    enrollment_id = await rehab.enrolled(c)
    for week in range(15):
        day = MONDAY + timedelta(weeks=week, days=1)
        await rehab.to(day)
        r = await rehab.session(c, enrollment_id, day, kind="konseling" if week < 11 else "pemantauan")
        assert r.status_code == 201, r.text
    await rehab.to(date(2026, 6, 15))

    messages = await eventually(
        lambda: stream_messages(regency.nats_url, "ibm.3301.rehab.>"),
        until=lambda m: any(x.subject.endswith("client_discharged") for x in m),
    )
    names = [parse_event(m.data).type.split(".")[2] for m in messages]
    assert names[:3] == ["ClientEnrolled", "PhaseCompleted", "QualityOfLifeAssessed"]
    assert names.count("SessionHeld") == 15 and names.count("PhaseCompleted") == 4
    assert names[-2:] == ["PhaseCompleted", "ClientDischarged"]
    for m in messages:
        body = json.loads(m.data)
        name = body["type"].split(".")[2]
        snake = "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in name).lstrip("_")
        assert m.subject == f"ibm.3301.rehab.{snake}"
        jsonschema.Draft202012Validator(
            schema_for(name), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        ).validate(body)
        assert m.headers is not None and m.headers["Nats-Msg-Id"] == body["id"]
        assert "Budi" not in m.data.decode() and "3301011505900001" not in m.data.decode()
    assert parse_event(messages[-1].data).data.reason == "completed"  # type: ignore[attr-defined]


async def test_a_reversed_dropout_is_published_for_projections_to_follow(regency: Regency) -> None:
    rehab = regency.rehab
    c = await regency.screened_client()
    enrollment_id = await rehab.enrolled(c)
    await rehab.to(date(2026, 3, 11))
    assert (await rehab.session(c, enrollment_id, date(2026, 3, 11), kind="edukasi")).status_code == 201
    await rehab.to(date(2026, 4, 6))  # out by the rule on 1 April
    r = await rehab.session(c, enrollment_id, date(2026, 3, 25), kind="kelompok")  # synced late
    assert r.status_code == 201, r.text

    messages = await eventually(
        lambda: stream_messages(regency.nats_url, "ibm.3301.rehab.>"),
        # the late session's own event too: the relay may publish it a moment after the reversal
        until=lambda m: (
            any(x.subject.endswith("dropout_reversed") for x in m)
            and sum(x.subject.endswith("session_held") for x in m) == 2
        ),
    )
    names = [parse_event(m.data).type.split(".")[2] for m in messages]
    assert names[-3:] == ["ClientDischarged", "DropoutReversed", "SessionHeld"]
    reversed_ = next(m for m in messages if m.subject == "ibm.3301.rehab.dropout_reversed")
    body = json.loads(reversed_.data)
    jsonschema.Draft202012Validator(
        schema_for("DropoutReversed"), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(body)
    assert body["data"] == {
        "enrollment_id": enrollment_id,
        "client_id": c.client_id,
        "dropped_out_on": "2026-04-01",
        "on": "2026-03-25",
    }


async def test_every_consumed_event_delivered_twice_has_one_effect(regency: Regency) -> None:
    rehab = regency.rehab
    first, second = await regency.screened_client(), await regency.screened_client()
    enrollment_id = await rehab.enrolled(first)
    await rehab.enrolled(second)
    # referral's events for the first client, as the referral service would publish them
    referral_id = uuid.uuid4()
    nc = await nats.connect(regency.nats_url)
    try:
        js = nc.jetstream()
        for event in referral_events(first, referral_id):
            await js.publish(event[0], json.dumps(event[1]).encode(), headers={"Nats-Msg-Id": event[1]["id"]})
    finally:
        await nc.close()

    async def resumed() -> dict[str, Any]:
        return await rehab.enrolment(enrollment_id)

    await eventually(resumed, until=lambda e: e["phase"] == "bina_lanjut")
    await eventually(lambda: consumer_caught_up(regency.nats_url, "rehab-referral-events"))
    await eventually(lambda: consumer_caught_up(regency.nats_url, "rehab-outreach-events"))
    before_rows = await read_model_counts(rehab)
    before_events = await rehab.outbox_names()

    copies = await publish_copies(regency.nats_url, "ibm.3301.outreach.>")
    copies += await publish_copies(regency.nats_url, "ibm.3301.referral.>")
    assert copies >= 12
    await eventually(lambda: consumer_caught_up(regency.nats_url, "rehab-outreach-events"), timeout=20)
    await eventually(lambda: consumer_caught_up(regency.nats_url, "rehab-referral-events"), timeout=20)

    assert await read_model_counts(rehab) == before_rows
    assert await rehab.outbox_names() == before_events
    assert before_events.count("PhaseCompleted") == 3  # skrining x2, and intake → bina lanjut once
    assert (await rehab.enrolment(enrollment_id))["phase"] == "bina_lanjut"
    dead = await stream_messages(regency.nats_url, "ibm.3301.dlq.rehab")
    assert dead == []


def referral_events(c: Client, referral_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    base = {
        "specversion": "1.0",
        "time": "2026-03-05T03:00:00Z",
        "regency": "3301",
        "subject": str(referral_id),
    }
    referred = {
        **base,
        "id": str(uuid.uuid4()),
        "source": "/pulih/3301/referral",
        "type": "pulih.referral.ReferredToClinic.v1",
        "data": {
            "referral_id": str(referral_id),
            "client_id": c.client_id,
            "unit_id": c.unit_id,
            "clinic_id": "klinik-pratama-cilacap",
            "service": "rawat_jalan",
            "reason": "client_request",
            "urgency": "routine",
            "referred_on": "2026-03-02",
            "respond_by": "2026-03-05",
            "consent_id": str(uuid.uuid4()),
        },
    }
    closed = {
        **base,
        "id": str(uuid.uuid4()),
        "source": "/pulih/3301/referral",
        "type": "pulih.referral.ReferralClosed.v1",
        "data": {
            "referral_id": str(referral_id),
            "clinic_id": "klinik-pratama-cilacap",
            "on": "2026-03-02",
            "outcome": "completed",
            "back_referral": True,
        },
    }
    return [
        ("ibm.3301.referral.referred_to_clinic.klinik-pratama-cilacap", referred),
        ("ibm.3301.referral.referral_closed.klinik-pratama-cilacap", closed),
    ]


async def read_model_counts(rehab: Rehab) -> dict[str, int]:
    from sqlalchemy import func, select

    from pulih.rehab import store

    counts = {}
    async with rehab.runtime.database.sessions() as s:
        for model in (
            store.KnownClient,
            store.KnownAgent,
            store.KnownConsent,
            store.KnownScreening,
            store.KnownReferral,
            store.Enrolment,
            store.PhaseRecord,
        ):
            counts[model.__tablename__] = int(await s.scalar(select(func.count()).select_from(model)) or 0)
    return counts


async def test_two_scheduler_replicas_on_one_database_discharge_each_client_once(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    if database_url.startswith("sqlite"):
        database_url = f"sqlite+aiosqlite:///{tmp_path}/shared-rehab.db"
    async with AsyncExitStack() as stack:
        replicas = []
        for name in ("rehab-a", "rehab-b"):
            app = build_rehab(rehab_settings(tmp_path, nats_server.url, database_url, name))
            http = await stack.enter_async_context(running(app))
            replicas.append(Rehab(http, app))
        a, b = replicas
        clients = [await a.screened_client() for _ in range(6)]
        for c in clients:
            await a.enrolled(c)
        day = date(2026, 3, 24)  # three weeks after enrolment nobody was seen: every client drops out
        for _ in range(3):
            a.runtime.clock._today = b.runtime.clock._today = day  # move both without waking
            await asyncio.gather(
                *(r.runtime.jobs["advance-enrolments"].run_once(r.runtime) for r in replicas)
            )
            day += timedelta(days=1)

        discharged = [d for name, d in await a.outbox() if name == "ClientDischarged"]
        assert sorted(d["client_id"] for d in discharged) == sorted(c.client_id for c in clients)
        assert {d["on"] for d in discharged} == {"2026-03-23"}
        published = await eventually(
            lambda: stream_messages(nats_server.url, "ibm.3301.rehab.client_discharged"),
            until=lambda m: len(m) >= 6,
        )
        assert len(published) == 6


async def test_the_scheduler_survives_a_restart_and_catches_up_with_the_dates_it_missed(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    app = build_rehab(rehab_settings(tmp_path, nats_server.url, database_url))
    async with running(app) as http:
        rehab = Rehab(http, app)
        c = await rehab.screened_client()
        enrollment_id = await rehab.enrolled(c)
    # stopped for three months; started again on the same store
    later = rehab_settings(tmp_path, nats_server.url, database_url)
    later.clock_start = date(2026, 6, 1)
    app = build_rehab(later)
    async with running(app) as http:
        rehab = Rehab(http, app)
        await eventually(lambda: rehab.enrolment(enrollment_id), until=lambda e: e["status"] == "discharged")
        enrolment = await rehab.enrolment(enrollment_id)
        assert (enrolment["discharged_on"], enrolment["discharge_reason"]) == ("2026-03-23", "dropped_out")
        assert (await rehab.outbox_names()).count("ClientDischarged") == 1
