"""Outreach against a real nats-server: outbox → JetStream, exactly once, with no identity."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from header_checks import contradictions
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from outreach_factories import Outreach, screening_body
from system_support import running, schema_for, stream_messages

from pulih.contracts import parse_event
from pulih.kit.nats_server import NatsServer, free_port
from pulih.kit.outbox import OutboxRelay
from pulih.kit.testing import eventually, make_settings
from pulih.outreach.app import build

pytestmark = pytest.mark.system

IDENTITY = ("Budi", "Santoso", "3301011505900001", "81234567890", "Merdeka", "1990-05-15")


async def screen_one_client(o: Outreach) -> str:
    unit_id = await o.unit()
    agent_id = await o.agent(unit_id)
    agent = o.agent_auth(unit_id, agent_id)
    client = await o.client(unit_id, agent)
    assert client.status_code == 201, client.text
    client_id = str(client.json()["client_id"])
    await o.consent(client_id, agent)
    r = await o.http.post(f"/v1/clients/{client_id}/screenings", headers=agent, json=screening_body(agent_id))
    assert r.status_code == 201, r.text
    return client_id


async def test_one_screening_is_exactly_one_client_screened_event_without_identity(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    app = build(make_settings(tmp_path, nats_url=nats_server.url, database_url=database_url))
    async with running(app) as http:
        client_id = await screen_one_client(Outreach(http, app))
        subject = "ibm.3301.outreach.client_screened"
        messages = await eventually(
            lambda: stream_messages(nats_server.url, subject), until=lambda m: len(m) >= 1
        )
        everything = await eventually(
            lambda: stream_messages(nats_server.url, "ibm.3301.>"), until=lambda m: len(m) >= 5
        )

    assert len(messages) == 1
    msg = messages[0]
    jsonschema.Draft202012Validator(
        schema_for("ClientScreened"), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(__import__("json").loads(msg.data))
    event = parse_event(msg.data)
    assert event.subject == client_id and event.data.overall_risk == "moderate"
    assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == str(event.id)
    assert "traceparent" in msg.headers
    assert [parse_event(m.data).type.split(".")[2] for m in everything] == [
        "UnitEstablished",
        "AgentRegistered",
        "ClientRegistered",
        "ConsentRecorded",
        "ClientScreened",
    ]
    for m in everything:
        text = m.data.decode() + repr(m.headers)
        for secret in IDENTITY:
            assert secret not in text, f"{secret!r} leaked into {m.subject}"


async def test_a_relay_killed_between_publish_and_mark_leaves_exactly_one_copy(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    settings = make_settings(
        tmp_path, nats_url=nats_server.url, database_url=f"sqlite+aiosqlite:///{tmp_path}/o.db"
    )
    app = build(settings)
    async with running(app) as http:
        runtime = app.state.runtime
        await eventually(lambda: _connected(runtime))
        await runtime.relay.stop()  # hold the relay so the row waits in the outbox

        class Killed(BaseException):
            """Stands for the process dying right after the PubAck, before the mark."""

        crashing = OutboxRelay(runtime.database, _publisher(runtime))

        async def die(_: list[int]) -> None:
            raise Killed

        crashing.mark_published = die  # type: ignore[method-assign]
        o = Outreach(http, app)
        await o.unit()
        with pytest.raises(Killed):
            await crashing.relay_once()
        assert await crashing.backlog() == 1, "the row must still look unsent after the crash"

        restarted = OutboxRelay(runtime.database, _publisher(runtime))
        assert await restarted.relay_once() == 1
        assert await restarted.backlog() == 0

    messages = await stream_messages(nats_server.url, "ibm.3301.outreach.unit_established")
    assert len(messages) == 1


async def _connected(runtime: object) -> bool:
    broker = getattr(runtime, "broker", None)
    return broker is not None and broker.connection.is_connected


def _publisher(runtime: object):  # type: ignore[no-untyped-def]
    from pulih.kit.messaging import stream_publisher

    return stream_publisher(runtime.broker, "3301")  # type: ignore[attr-defined]


async def test_with_nats_down_commands_succeed_and_their_events_arrive_once_it_is_back(
    tmp_path: Path,
) -> None:
    port = free_port()
    settings = make_settings(
        tmp_path,
        nats_url=f"nats://127.0.0.1:{port}",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/o.db",
    )
    app = build(settings)
    async with running(app) as http:
        o = Outreach(http, app)
        await screen_one_client(o)
        ready = await http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["nats"] == "down"
        assert await app.state.runtime.relay.backlog() == 5

        server = NatsServer(tmp_path / "late-nats", port).start()
        try:
            messages = await eventually(
                lambda: stream_messages(server.url, "ibm.3301.>"),
                until=lambda m: len(m) >= 5,
                timeout=30,
            )
            assert (await http.get("/readyz")).status_code == 200
            await eventually(app.state.runtime.relay.backlog, until=lambda n: n == 0)
            again = await stream_messages(server.url, "ibm.3301.>")
        finally:
            server.stop()
    assert len(messages) == len(again) == 5
    assert len({m.headers["Nats-Msg-Id"] for m in again if m.headers}) == 5


async def test_every_message_s_headers_repeat_its_envelope(tmp_path: Path, nats_server: NatsServer) -> None:
    # EVENTS.md: Nats-Msg-Id = id, traceparent = the envelope's, and the correlation_id header
    # FastStream would otherwise make up = correlationid. The service traces for real (as in
    # production), which is when FastStream's telemetry middleware writes a traceparent of its own.
    app = build(
        make_settings(tmp_path, nats_url=nats_server.url, database_url=f"sqlite+aiosqlite:///{tmp_path}/o.db")
    )
    async with running(app) as http:
        await screen_one_client(Outreach(http, app))
        messages = await eventually(
            lambda: stream_messages(nats_server.url, "ibm.3301.>"), until=lambda m: len(m) >= 5
        )
    assert isinstance(trace.get_tracer_provider(), TracerProvider)
    bodies = [json.loads(m.data) for m in messages]
    assert all(b.get("traceparent") and b.get("correlationid") for b in bodies)
    assert [contradictions(m) for m in messages] == [[] for _ in messages]
    # the header is there, so FastStream made none up
    assert [(m.headers or {}).get("correlation_id") for m in messages] == [b["correlationid"] for b in bodies]
