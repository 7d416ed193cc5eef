"""The kit's durable consumer with event handlers (ordered batches, one transaction a batch)
against a real nats-server: inbox, retries and dead letters.

Dead letters are CloudEvents (``pulih.rehab.EventDeadLettered.v1`` here, the consuming service's)
and, like every message Pulih publishes, their NATS headers repeat their envelope.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, cast

import nats
import pytest
from faststream.nats import NatsBroker
from header_checks import contradictions
from nats.js.api import StreamConfig
from sqlalchemy import Column, Integer, MetaData, String, Table, Uuid, func, select
from system_support import stream_messages

from pulih.contracts import CloudEvent, new_event, parse_event, stream_name, subject_for
from pulih.contracts.events.dead_letters import PAYLOAD_LIMIT, EventDeadLettered
from pulih.contracts.events.outreach import ClientErased, ClientRegistered, ConsentRecorded
from pulih.kit.batch_consumer import BatchConsumer, subscribe_batches
from pulih.kit.consumers import Delivery, EventHandler, NotReadyYet, Rejected
from pulih.kit.database import Database, kit_metadata
from pulih.kit.emitter import Emitter
from pulih.kit.messaging import ensure_regency_stream, make_broker
from pulih.kit.nats_server import NatsServer
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.telemetry import setup_tracing
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


@dataclass
class Consuming:
    """A broker and the batch consumers started on it, stopped together (the consumers first,
    as a service's lifespan does)."""

    broker: NatsBroker
    consumers: list[BatchConsumer]

    async def stop(self) -> None:
        for consumer in self.consumers:
            await consumer.stop()
        await self.broker.stop()

    async def kill(self) -> None:
        """Stop consuming at once, as under kill -9: the batch in hand is neither acked nor
        nacked, and the connection goes."""
        for consumer in self.consumers:
            await consumer.stop(graceful_seconds=0)
        assert self.broker.connection is not None
        await self.broker.connection.close()


async def consume(
    runtime: ServiceRuntime,
    nats_url: str,
    consumers: Mapping[str, tuple[str, Mapping[Any, EventHandler]]],
    name: str,
    **options: Any,
) -> Consuming:
    """Start ``runtime``'s consumers ``{durable: (subject, handlers)}`` on a broker of their own
    (retries 0.1 s apart), as a service starts them: after the broker."""
    broker = make_broker(nats_url, name=name)
    first = len(runtime.batch_consumers)
    for durable, (subject, handlers) in consumers.items():
        subscribe_batches(
            runtime,
            broker,
            durable=durable,
            subject=subject,
            handlers=handlers,
            retry_base_seconds=0.1,
            **options,
        )
    await broker.connect()
    await ensure_regency_stream(broker, "3301")
    await broker.start()
    started = runtime.batch_consumers[first:]
    for consumer in started:
        await consumer.start()
    return Consuming(broker, started)


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

    async def publish_raw(self, body: dict[str, Any] | bytes) -> None:
        """Publish a message as a careless or hostile sender would: any body, no Nats-Msg-Id."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        await self.broker.publish(raw, "ibm.3301.outreach.client_registered", stream=stream_name("3301"))

    async def count(self, table: Table) -> int:
        async with self.database.sessions() as s:
            return int(await s.scalar(select(func.count()).select_from(table)) or 0)

    async def dead_letters(self, count: int, timeout: float = 10) -> list[CloudEvent[EventDeadLettered]]:
        """The first ``count`` dead letters of rehab, read as events; their headers must repeat them."""
        messages = await eventually(
            lambda: stream_messages(self.nats_url, "ibm.3301.dlq.rehab"),
            until=lambda m: len(m) >= count,
            timeout=timeout,
        )
        assert [contradictions(m) for m in messages] == [[] for _ in messages]
        letters = [cast("CloudEvent[EventDeadLettered]", parse_event(m.data)) for m in messages]
        assert all(letter.traceparent for letter in letters), "a dead letter continues the consumer's trace"
        return letters


async def start_harness(
    tmp_path: Path, nats_url: str, database_url: str, backlog: list[CloudEvent[Any]] | None = None
) -> tuple[Harness, Consuming]:
    """A consumer on its own store; ``backlog`` is published before it starts, so its first
    fetches find many messages waiting, as after a restart or a burst from a relay."""
    setup_tracing("rehab", "3301")  # a real tracer, as in a service: dead letters carry a trace
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
    handlers = {ClientRegistered: on_registered, ConsentRecorded: on_consent, ClientErased: on_erased}
    running = await consume(
        runtime, nats_url, {"clients": ("ibm.3301.outreach.>", handlers)}, "consumer-test"
    )
    return Harness(nats_url, database, running.broker), running


async def stream_config(nats_url: str) -> StreamConfig:
    nc = await nats.connect(nats_url)
    try:
        return (await nc.jetstream().stream_info(stream_name("3301"))).config
    finally:
        await nc.close()


@pytest.fixture
async def harness(tmp_path: Path, nats_server: NatsServer, database_url: str) -> AsyncIterator[Harness]:
    running, consuming = await start_harness(tmp_path, nats_server.url, database_url)
    try:
        yield running
    finally:
        await consuming.stop()
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
    await harness.publish_raw(b'{"not": "an event"')
    smuggled = json.loads(registration().to_json())
    smuggled["data"]["name"] = "Siti Aminah"  # an identity field the contract does not allow
    await harness.publish_raw(smuggled)
    good = registration()
    await harness.publish(good)

    await eventually(lambda: harness.count(registered), until=lambda n: n == 1)
    dead = await harness.dead_letters(2)
    assert [d.type for d in dead] == ["pulih.rehab.EventDeadLettered.v1"] * 2
    assert all(d.data.error == "invalid_event" for d in dead)
    assert "JSON" in dead[0].data.reason or "json" in dead[0].data.reason.lower()
    assert dead[0].data.payload == '{"not": "an event"' and dead[0].data.payload_encoding == "utf-8"
    assert dead[1].data.reason.startswith("data.name: identity keys are refused")
    assert dead[1].causationid == smuggled["id"], "a readable refused event is named as the cause"
    assert "Siti Aminah" not in json.dumps([d.data.payload for d in dead]), "the copy keeps no identity"
    messages = await stream_messages(harness.nats_url, "ibm.3301.dlq.rehab")
    assert messages[0].headers is not None and messages[0].headers["Pulih-Dlq-Error"] == "invalid_event"


async def test_an_answer_with_a_field_and_an_attribute_this_version_does_not_know_is_applied(
    harness: Harness,
) -> None:
    # a newer sender added an optional data field, the standard `dataschema` and an extension
    event = registration()
    body = json.loads(event.to_json())
    body["data"]["note"] = "came with family"
    body["dataschema"] = "https://pulih.id/schemas/ClientRegistered.v1.json"
    body["kliniksysversion"] = "3.2"
    await harness.publish_raw(body)

    await eventually(lambda: harness.count(registered), until=lambda n: n == 1)
    async with harness.database.sessions() as s:
        assert await s.scalar(select(registered.c.client_id)) == event.data.client_id
    assert await stream_messages(harness.nats_url, "ibm.3301.dlq.rehab") == []


@pytest.mark.parametrize(
    ("place", "path"),
    [
        (
            lambda m: m["data"].update(contact={"family": [{"relation": "ibu", "nik": "3301010101010001"}]}),
            "data.contact.family.0.nik",
        ),
        (lambda m: m.update(clinicext={"nik": "3301010101010001"}), "clinicext.nik"),
    ],
    ids=["in-data", "in-an-extension"],
)
async def test_a_message_with_a_nik_anywhere_is_dead_lettered_with_the_reason(
    harness: Harness, place: Any, path: str
) -> None:
    body = json.loads(registration().to_json())
    place(body)
    await harness.publish_raw(body)
    [dead] = await harness.dead_letters(1)
    assert dead.data.error == "invalid_event" and dead.data.attempts == 1
    assert dead.data.reason == f"{path}: identity keys are refused, no event carries a person's identity"
    assert "3301010101010001" not in dead.data.payload and dead.data.payload_redacted
    assert await harness.count(registered) == 0


async def test_a_large_message_leaves_a_dead_letter_with_its_first_64_kib(harness: Harness) -> None:
    # as large as the stream takes (PULIH_STREAM_MAX_MSG_SIZE), or 200 KiB where it has no limit
    largest = (await stream_config(harness.nats_url)).max_msg_size or -1
    size = largest - 1024 if largest > 0 else 200 * 1024
    assert size > PAYLOAD_LIMIT
    body = json.loads(registration().to_json())
    body["data"]["nik"] = "3301010101010001"
    body["data"]["padding"] = ""
    body["data"]["padding"] = "x" * (size - len(json.dumps(body)))
    raw = json.dumps(body).encode()
    assert len(raw) == size
    await harness.publish_raw(raw)
    [dead] = await harness.dead_letters(1)
    assert dead.data.reason.startswith("data.nik: identity keys are refused")
    assert dead.data.payload_truncated and dead.data.payload_size == size
    assert PAYLOAD_LIMIT - 200 <= len(dead.data.payload.encode()) <= PAYLOAD_LIMIT
    assert '"nik":"[redacted]"' in dead.data.payload and "3301010101010001" not in dead.data.payload
    [stored] = await stream_messages(harness.nats_url, "ibm.3301.dlq.rehab")
    assert len(stored.data) < PAYLOAD_LIMIT + 4096, "the copy is bounded, not the whole message again"


async def test_where_the_stream_takes_no_copy_the_dead_letter_goes_without_it(harness: Harness) -> None:
    nc = await nats.connect(harness.nats_url)
    try:
        config = await stream_config(harness.nats_url)
        await nc.jetstream().update_stream(dataclasses.replace(config, max_msg_size=8 * 1024))
    finally:
        await nc.close()
    raw = b"x" * (7 * 1024 + 600)  # fits the stream; its dead letter with the copy does not
    await harness.publish_raw(raw)
    [dead] = await harness.dead_letters(1)
    assert dead.data.error == "invalid_event" and dead.data.reason.startswith("invalid JSON")
    assert dead.data.payload == "" and dead.data.payload_truncated and dead.data.payload_size == len(raw)


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
    never = consent(uuid.uuid4())
    await harness.publish(never)  # its client never registers
    [dead] = await harness.dead_letters(1, timeout=20)
    assert dead.data.error == "not_ready" and dead.data.attempts == 3
    assert dead.causationid == str(never.id) and dead.correlationid == str(never.id)
    assert parse_event(dead.data.payload) == never, "the dead letter keeps the whole message"
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
    [dead] = await harness.dead_letters(1)
    assert dead.data.error == "illegal_transition" and dead.data.attempts == 1
    assert "ibm.3301.outreach.client_erased" in dead.data.reason
    assert dead.data.consumer == "rehab.clients"
    assert dead.subject == dead.data.subject == "ibm.3301.outreach.client_erased"
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
    harness, consuming = await start_harness(tmp_path, nats_server.url, database_url, backlog)
    try:
        await eventually(lambda: harness.count(consented), until=lambda n: n == 30, timeout=20)
    finally:
        await consuming.stop()
        await harness.database.dispose()
    async with harness.database.sessions() as session:
        attempts = (await session.scalars(select(consented.c.attempt))).all()
    assert set(attempts) == {1}, "a consent was applied only on a later delivery: out of order"


tally = Table("tally", effects, Column("name", String(40), primary_key=True), Column("n", Integer))


async def test_an_effect_that_is_not_idempotent_happens_once_for_an_event_delivered_twice(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    # A counter has no key to reject a second application: only the inbox stands between a
    # redelivered event and a double effect.
    async def count_registration(uow: UnitOfWork, event: CloudEvent[ClientRegistered], _: Delivery) -> None:
        await uow.session.execute(tally.update().values(n=tally.c.n + 1))

    settings = make_settings(tmp_path, nats_url=nats_server.url, PULIH_MAX_DELIVER=3)
    database = Database(database_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(kit_metadata.create_all)
        await conn.run_sync(effects.create_all)
        await conn.execute(tally.insert().values(name="registrations", n=0))
    runtime = ServiceRuntime("rehab", settings, database, Emitter("3301"))
    consuming = await consume(
        runtime,
        nats_server.url,
        {"clients": ("ibm.3301.outreach.>", {ClientRegistered: count_registration})},
        "counter",
    )
    nc = await nats.connect(nats_server.url)
    try:
        harness = Harness(nats_server.url, database, consuming.broker)
        event = registration()
        await harness.publish(event, msg_id="first-copy")
        await harness.publish(event, msg_id="second-copy")  # past JetStream's dedup: a second delivery

        async def acked() -> int:
            info = await nc.jetstream().consumer_info(stream_name("3301"), "rehab-clients")
            return int(info.ack_floor.stream_seq) if info.num_ack_pending == 0 else 0

        await eventually(acked, until=lambda seq: seq == 2)  # both copies handled and acknowledged
        async with database.sessions() as s:
            assert await s.scalar(select(tally.c.n)) == 1
        assert await stream_messages(nats_server.url, "ibm.3301.dlq.rehab") == []
    finally:
        await nc.close()
        await consuming.stop()
        await database.dispose()
