"""The kit's durable consumer against a real nats-server: inbox, retries and dead letters."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from faststream.nats import NatsBroker
from sqlalchemy import Column, Integer, MetaData, String, Table, Uuid, func, select
from system_support import stream_messages

from pulih.contracts import CloudEvent, new_event, stream_name, subject_for
from pulih.contracts.events.outreach import ClientErased, ClientRegistered, ConsentRecorded
from pulih.kit.consumers import Delivery, NotReadyYet, Rejected, subscribe_durable
from pulih.kit.database import Database, kit_metadata
from pulih.kit.emitter import Emitter
from pulih.kit.messaging import ensure_regency_stream, make_broker
from pulih.kit.nats_server import NatsServer
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.testing import eventually, make_settings
from pulih.kit.unit_of_work import UnitOfWork

pytestmark = pytest.mark.system

effects = MetaData()
registered = Table(
    "registered", effects, Column("client_id", Uuid, primary_key=True), Column("unit", String(40))
)
consented = Table(
    "consented",
    effects,
    Column("consent_id", Uuid, primary_key=True),
    Column("client_id", Uuid),
    Column("attempt", Integer),
)


async def on_registered(uow: UnitOfWork, event: CloudEvent[ClientRegistered], _: Delivery) -> None:
    await uow.session.execute(
        registered.insert().values(client_id=event.data.client_id, unit=str(event.data.unit_id))
    )


async def on_consent(uow: UnitOfWork, event: CloudEvent[ConsentRecorded], delivery: Delivery) -> None:
    # consent means nothing for a client this consumer has not seen registered yet
    known = await uow.session.scalar(
        select(registered.c.client_id).where(registered.c.client_id == event.data.client_id)
    )
    if known is None:
        raise NotReadyYet(f"client {event.data.client_id} not registered yet")
    await uow.session.execute(
        consented.insert().values(
            consent_id=event.data.consent_id, client_id=event.data.client_id, attempt=delivery.attempt
        )
    )


async def on_erased(uow: UnitOfWork, event: CloudEvent[ClientErased], delivery: Delivery) -> None:
    # stands for an illegal transition: a valid event this consumer must never apply
    raise Rejected("illegal_transition", f"{delivery.subject}: erasing is not allowed here")


class Harness:
    def __init__(self, nats_url: str, database: Database, broker: NatsBroker) -> None:
        self.nats_url, self.database, self.broker = nats_url, database, broker

    async def publish(
        self,
        event: CloudEvent[ClientRegistered] | CloudEvent[ConsentRecorded],
        msg_id: str | None = None,
    ) -> None:
        await self.broker.publish(
            event.to_json(),
            subject_for(event, "3301"),
            headers={"Nats-Msg-Id": msg_id or str(event.id)},
            stream=stream_name("3301"),
        )

    async def count(self, table: Table) -> int:
        async with self.database.sessions() as s:
            return int(await s.scalar(select(func.count()).select_from(table)) or 0)


async def start_harness(
    tmp_path: Path, nats_url: str, database_url: str, backlog: list[CloudEvent[Any]] | None = None
) -> tuple[Harness, NatsBroker]:
    """A consumer on its own store; ``backlog`` is published before it starts, so its first
    fetches find many messages waiting, as after a restart or a burst from a relay."""
    settings = make_settings(tmp_path, nats_url=nats_url, PULIH_MAX_DELIVER=3)
    database = Database(database_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(kit_metadata.create_all)
        await conn.run_sync(effects.create_all)
    if backlog:
        publisher = make_broker(nats_url, name="backlog")
        await publisher.connect()
        await ensure_regency_stream(publisher, "3301")
        for event in backlog:
            await Harness(nats_url, database, publisher).publish(event)
        await publisher.stop()
    runtime = ServiceRuntime("rehab", settings, database, Emitter("3301"))
    broker = make_broker(nats_url, name="consumer-test")
    subscribe_durable(
        runtime,
        broker,
        durable="clients",
        subject="ibm.3301.outreach.>",
        handlers={ClientRegistered: on_registered, ConsentRecorded: on_consent, ClientErased: on_erased},
        retry_base_seconds=0.1,
    )
    await broker.connect()
    await ensure_regency_stream(broker, "3301")
    await broker.start()
    return Harness(nats_url, database, broker), broker


@pytest.fixture
async def harness(tmp_path: Path, nats_server: NatsServer, database_url: str) -> AsyncIterator[Harness]:
    running, broker = await start_harness(tmp_path, nats_server.url, database_url)
    try:
        yield running
    finally:
        await broker.stop()
        await running.database.dispose()


def registration(client_id: uuid.UUID | None = None) -> CloudEvent[ClientRegistered]:
    return new_event(
        ClientRegistered.model_validate(
            {
                "client_id": client_id or uuid.uuid4(),
                "unit_id": uuid.uuid4(),
                "registered_on": date(2026, 2, 1),
                "sex": "f",
                "age_band": "25_34",
                "came_through": "self",
            }
        ),
        regency="3301",
    )


def consent(client_id: uuid.UUID) -> CloudEvent[ConsentRecorded]:
    return new_event(
        ConsentRecorded.model_validate(
            {
                "consent_id": uuid.uuid4(),
                "client_id": client_id,
                "scopes": ["programme"],
                "given_on": date(2026, 2, 1),
            }
        ),
        regency="3301",
    )


async def test_a_malformed_message_is_dead_lettered_with_the_reason_and_the_consumer_carries_on(
    harness: Harness,
) -> None:
    await harness.broker.publish(
        b'{"not": "an event"', "ibm.3301.outreach.client_registered", stream=stream_name("3301")
    )
    smuggled = json.loads(registration().to_json())
    smuggled["data"]["name"] = "Siti Aminah"  # an identity field the contract does not allow
    await harness.broker.publish(
        json.dumps(smuggled).encode(),
        "ibm.3301.outreach.client_registered",
        stream=stream_name("3301"),
    )
    good = registration()
    await harness.publish(good)

    await eventually(lambda: harness.count(registered), until=lambda n: n == 1)
    dead = await eventually(
        lambda: stream_messages(harness.nats_url, "ibm.3301.dlq.rehab"), until=lambda m: len(m) == 2
    )
    reasons = [json.loads(m.data) for m in dead]
    assert all(r["error"] == "invalid_event" for r in reasons)
    assert "JSON" in reasons[0]["reason"] or "json" in reasons[0]["reason"].lower()
    assert "name" in reasons[1]["reason"]
    assert dead[0].headers is not None and dead[0].headers["Pulih-Dlq-Error"] == "invalid_event"


async def test_an_event_delivered_twice_has_one_effect(harness: Harness) -> None:
    event = registration()
    await harness.publish(event, msg_id="first-copy")
    await harness.publish(event, msg_id="second-copy")  # past JetStream's dedup: two messages, one event
    later = registration()
    await harness.publish(later)
    await eventually(lambda: harness.count(registered), until=lambda n: n == 2)
    assert len(await stream_messages(harness.nats_url, "ibm.3301.outreach.client_registered")) == 3
    assert await harness.count(registered) == 2


async def test_an_event_that_arrives_before_what_it_builds_on_is_retried_not_dropped(
    harness: Harness,
) -> None:
    client_id = uuid.uuid4()
    await harness.publish(consent(client_id))  # consent before registration
    await harness.publish(registration(client_id))
    await eventually(lambda: harness.count(consented), until=lambda n: n == 1)
    assert await stream_messages(harness.nats_url, "ibm.3301.dlq.rehab") == []


async def test_an_event_that_never_becomes_applicable_is_dead_lettered_after_max_deliver(
    harness: Harness,
) -> None:
    await harness.publish(consent(uuid.uuid4()))  # its client never registers
    dead = await eventually(
        lambda: stream_messages(harness.nats_url, "ibm.3301.dlq.rehab"),
        until=lambda m: len(m) == 1,
        timeout=20,
    )
    body = json.loads(dead[0].data)
    assert body["error"] == "not_ready" and body["attempts"] == 3
    assert await harness.count(consented) == 0


async def test_a_rejected_event_is_dead_lettered_on_its_first_attempt_and_changes_nothing(
    harness: Harness,
) -> None:
    erased = new_event(ClientErased(client_id=uuid.uuid4(), on=date(2026, 3, 1)), regency="3301")
    await harness.broker.publish(
        erased.to_json(),
        subject_for(erased, "3301"),
        headers={"Nats-Msg-Id": str(erased.id)},
        stream=stream_name("3301"),
    )
    await harness.publish(registration())
    dead = await eventually(
        lambda: stream_messages(harness.nats_url, "ibm.3301.dlq.rehab"), until=lambda m: len(m) == 1
    )
    body = json.loads(dead[0].data)
    assert body["error"] == "illegal_transition" and body["attempts"] == 1
    assert "ibm.3301.outreach.client_erased" in body["reason"]
    assert body["consumer"] == "rehab.clients"
    await eventually(lambda: harness.count(registered), until=lambda n: n == 1)


async def test_events_about_one_client_are_applied_in_the_order_they_were_published(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    # Registration and consent back to back, thirty times, waiting in the stream when the
    # consumer starts. Applied out of order, a consent finds no client and is applied only on a
    # later delivery.
    backlog: list[CloudEvent[Any]] = []
    for _ in range(30):
        client_id = uuid.uuid4()
        backlog += [registration(client_id), consent(client_id)]
    harness, broker = await start_harness(tmp_path, nats_server.url, database_url, backlog)
    try:
        await eventually(lambda: harness.count(consented), until=lambda n: n == 30, timeout=20)
    finally:
        await broker.stop()
        await harness.database.dispose()
    async with harness.database.sessions() as session:
        attempts = (await session.scalars(select(consented.c.attempt))).all()
    assert set(attempts) == {1}, "a consent was applied only on a later delivery: out of order"
