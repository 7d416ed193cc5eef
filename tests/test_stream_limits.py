"""The regency stream's limits against a real nats-server: a message above the size limit is
refused, a full stream refuses new events and keeps every stored one, and the outbox holds what
the stream refused until there is room again."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from faststream.nats import NatsBroker
from nats.aio.client import Client as NatsClient
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StoreCompression, StreamConfig
from nats.js.errors import APIError

from pulih.contracts import CloudEvent, Event, new_event, stream_name, subject_for
from pulih.contracts.codes import Indicator, UnitPhase
from pulih.contracts.events.dead_letters import dead_letter_of
from pulih.contracts.events.outreach import ClientErased
from pulih.contracts.events.reporting import AggregateReported
from pulih.kit.database import Database, kit_metadata
from pulih.kit.messaging import StreamLimits, ensure_regency_stream, make_broker, stream_publisher
from pulih.kit.nats_server import NatsServer
from pulih.kit.outbox import OutboxRelay, add_to_outbox
from pulih.kit.settings import Settings
from pulih.kit.testing import REGENCY, make_settings

pytestmark = pytest.mark.system

STREAM = stream_name(REGENCY)
MESSAGE_TOO_BIG = 10054
"""JetStream's error code for "message size exceeds maximum allowed"."""
STREAM_FULL = 10077
"""JetStream's error code for "maximum bytes exceeded" (a full stream with ``discard: new``)."""


@pytest.fixture
async def broker(nats_server: NatsServer) -> AsyncIterator[NatsBroker]:
    connected = make_broker(nats_server.url, name="stream-limits-test")
    await connected.connect()
    try:
        yield connected
    finally:
        await connected.stop()


def nc(broker: NatsBroker) -> NatsClient:
    return broker.connection


def erased() -> CloudEvent[Event]:
    return new_event(ClientErased(client_id=uuid.uuid4(), on=date(2026, 3, 1)), regency=REGENCY)


def largest_pulih_event() -> CloudEvent[Event]:
    """AggregateReported with every indicator and phase at a six-digit count: Pulih's largest."""
    return new_event(
        AggregateReported(
            regency=REGENCY,
            period="2026-03",
            generated_at=datetime.now(UTC),
            indicators=dict.fromkeys(Indicator, 999_999),
            units_by_phase=dict.fromkeys(UnitPhase, 999_999),
            suppressed_below=5,
        ),
        regency=REGENCY,
        correlationid=str(uuid.uuid4()),
    )


async def publish(broker: NatsBroker, event: CloudEvent[Event], payload: bytes | None = None) -> None:
    await (
        nc(broker)
        .jetstream()
        .publish(
            subject_for(event, REGENCY),
            payload if payload is not None else event.to_json(),
            stream=STREAM,
            headers={"Nats-Msg-Id": str(event.id)},
        )
    )


async def stored(broker: NatsBroker) -> list[bytes]:
    """Every payload in the stream, in order."""
    js = nc(broker).jetstream()
    info = await js.stream_info(STREAM)
    return [
        (await js.get_msg(STREAM, seq)).data or b""
        for seq in range(info.state.first_seq, info.state.last_seq + 1)
    ]


async def test_the_stream_takes_its_limits_from_the_settings(tmp_path: Path, broker: NatsBroker) -> None:
    settings = make_settings(
        tmp_path, nats_url="nats://x", PULIH_STREAM_MAX_BYTES="2MiB", PULIH_STREAM_MAX_MSG_SIZE="256KiB"
    )
    await ensure_regency_stream(broker, REGENCY, StreamLimits.from_settings(settings))
    config = (await nc(broker).jetstream().stream_info(STREAM)).config
    assert (config.max_bytes, config.max_msg_size) == (2 * 1024**2, 256 * 1024)
    assert (config.discard, config.retention) == (DiscardPolicy.NEW, RetentionPolicy.LIMITS)
    assert (config.max_age, config.max_msgs) == (0, -1), "no limit may delete an unread event"


def largest_dead_letter() -> CloudEvent[Event]:
    """A dead letter of a 64 KiB message of control characters, each escaped to six bytes, with
    the longest reason, escaped too: the largest message Pulih itself puts in the stream."""
    return new_event(
        dead_letter_of(
            "referral",
            consumer="referral.clinic-answers",
            subject=f"ibm.{REGENCY}.clinic.klinik-pratama-sehat.referral_accepted",
            stream_seq=1,
            attempts=8,
            error="invalid_event",
            reason="\x01" * 10_000,
            payload=b"\x01" * 64 * 1024,
        ),
        regency=REGENCY,
    )


def test_the_limits_hold_pulihs_largest_event_and_largest_dead_letter(tmp_path: Path) -> None:
    limits = StreamLimits.from_settings(make_settings(tmp_path, nats_url="nats://x"))
    assert (limits.max_bytes, limits.max_msg_size) == (1024**3, 128 * 1024)
    headers = 1024  # the envelope's headers, the Nats-Msg-Id and the dead letter's reason header
    smallest_allowed = 96 * 1024
    assert len(largest_pulih_event().to_json()) * 64 < smallest_allowed
    assert len(largest_dead_letter().to_json()) + headers < smallest_allowed
    with pytest.raises(ValueError, match="PULIH_STREAM_MAX_MSG_SIZE"):
        Settings(PULIH_STREAM_MAX_MSG_SIZE=smallest_allowed - 1)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PULIH_STREAM_MAX_MSG_SIZE", "2MiB"),  # above any sensible max_payload of the server
        ("PULIH_STREAM_MAX_MSG_SIZE", "64KiB"),  # below Pulih's largest dead letter
        ("PULIH_STREAM_MAX_BYTES", "100KiB"),
        ("PULIH_STREAM_MAX_BYTES", "-1"),  # a stream without a size limit fills the disk instead
    ],
)
def test_settings_refuse_limits_that_cannot_work(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable):
        Settings()


async def test_a_message_above_the_size_limit_is_refused_and_not_stored(broker: NatsBroker) -> None:
    await ensure_regency_stream(broker, REGENCY, StreamLimits(max_bytes=1024**2, max_msg_size=4096))
    await publish(broker, largest_pulih_event())
    junk = erased()
    with pytest.raises(APIError) as refused:
        await publish(broker, junk, b"x" * 4097)
    assert refused.value.err_code == MESSAGE_TOO_BIG
    [kept] = await stored(broker)
    assert b"AggregateReported" in kept


async def test_a_full_stream_refuses_new_events_and_keeps_every_stored_one(broker: NatsBroker) -> None:
    await ensure_regency_stream(broker, REGENCY, StreamLimits(max_bytes=4096, max_msg_size=1024))
    accepted: list[bytes] = []
    with pytest.raises(APIError) as refused:
        for _ in range(100):
            event = erased()
            await publish(broker, event)
            accepted.append(event.to_json())
    assert refused.value.err_code == STREAM_FULL
    assert len(accepted) >= 5
    assert await stored(broker) == accepted, "a full stream must not drop the oldest events"
    with pytest.raises(APIError):
        await publish(broker, erased())
    assert await stored(broker) == accepted


async def test_the_outbox_keeps_what_a_full_stream_refuses_and_publishes_it_once_there_is_room(
    tmp_path: Path, broker: NatsBroker
) -> None:
    await ensure_regency_stream(broker, REGENCY, StreamLimits(max_bytes=4096, max_msg_size=1024))
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(kit_metadata.create_all)
    events = [erased() for _ in range(20)]  # about twice what 4096 bytes hold
    async with database.transaction() as session:
        for event in events:
            await add_to_outbox(session, event, subject_for(event, REGENCY))
    relay = OutboxRelay(database, stream_publisher(broker, REGENCY, timeout=2))
    with pytest.raises(APIError):
        await relay.relay_once()
    published = len(await stored(broker))
    assert 0 < published < len(events)
    assert await relay.backlog() == len(events) - published, "refused events stay in the outbox"

    await ensure_regency_stream(broker, REGENCY, StreamLimits(max_bytes=1024**2, max_msg_size=1024))
    assert await relay.relay_once() == len(events) - published
    assert await relay.backlog() == 0
    assert await stored(broker) == [event.to_json() for event in events], "in the outbox's order"
    await database.dispose()


async def test_an_existing_stream_without_limits_gets_them_and_loses_nothing(
    broker: NatsBroker, caplog: pytest.LogCaptureFixture
) -> None:
    # The stream as Pulih made it before: no size limit, discard old, and compressed by an operator.
    js = nc(broker).jetstream()
    await js.add_stream(
        StreamConfig(
            name=STREAM,
            subjects=[f"ibm.{REGENCY}.>"],
            storage=StorageType.FILE,
            duplicate_window=600,
            compression=StoreCompression.S2,
        )
    )
    events = [erased() for _ in range(40)]
    for event in events:
        await publish(broker, event)
    assert (await js.stream_info(STREAM)).state.bytes > 4096

    # Limits below what it already holds: nothing is deleted, new events are refused.
    with caplog.at_level(logging.INFO, logger="pulih.messaging"):
        await ensure_regency_stream(broker, REGENCY, StreamLimits(max_bytes=4096, max_msg_size=1024))
    info = await js.stream_info(STREAM)
    assert (info.config.max_bytes, info.config.max_msg_size, info.config.discard) == (
        4096,
        1024,
        DiscardPolicy.NEW,
    )
    assert info.config.compression == StoreCompression.S2, "an operator's own settings are kept"
    assert await stored(broker) == [event.to_json() for event in events]
    assert any("refuses new events" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    with pytest.raises(APIError) as refused:
        await publish(broker, erased())
    assert refused.value.err_code == STREAM_FULL

    # Running it again changes nothing.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pulih.messaging"):
        await ensure_regency_stream(broker, REGENCY, StreamLimits(max_bytes=4096, max_msg_size=1024))
    assert not [r for r in caplog.records if r.getMessage().startswith("updated stream")]
    assert (await js.stream_info(STREAM)).config == info.config
    assert await stored(broker) == [event.to_json() for event in events]
