"""The national view's consumer of ``NATIONAL`` against a real nats-server, fed what a careless or
hostile regency could put on its aggregate subject: malformed JSON, a negative count, an identity
key, another regency's figures, an event that is not an aggregate at all, another regency's
aggregate sent through its link (a regency server lying about the subject), an aggregate that
came through no link. Each is dead-lettered
on ``national.dlq.reporting`` with its reason and counts nowhere; the aggregates around them are
counted; a replay of the whole stream (the durable deleted) changes no figure and adds no letter.

Two plain servers stand in for the federation (:func:`stand_in`): one holds a stream
``IBM_<code>`` per regency, into which the test publishes whatever it likes (a regency's server
that lies can deliver any subject); the other is the hub, whose ``NATIONAL`` sources each of them
through ``$JS.r<code>.API`` over a leaf link, as at the real hub, so every message carries the
``Nats-Stream-Source`` the hub stamps (which no publisher can set: the server refuses it). The
hub's ``NATIONAL`` also takes the aggregate subjects directly, for one aggregate that came
through no link at all."""

from __future__ import annotations

import importlib.util
import json
import sys
from functools import partial
from pathlib import Path
from typing import Any

import nats
import pytest
from national_seed import aggregate
from nats.aio.client import Client as NatsClient
from nats.js.api import ExternalStream, StreamConfig, StreamSource, SubjectTransform
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from pulih.contracts import new_event
from pulih.contracts.events.outreach import ClientScreened
from pulih.kit.auth import NATIONAL_SCOPE, issue_token
from pulih.kit.federation import names
from pulih.kit.nats_server import NatsServer, free_port
from pulih.kit.testing import JWT_SECRET, eventually, make_settings, serve
from pulih.reporting.app import build
from pulih.reporting.national.provenance import source_name, source_of

pytestmark = [pytest.mark.system, pytest.mark.slow]

HEADERS = {
    "Authorization": f"Bearer {issue_token(JWT_SECRET, sub='bnn', role='national', regency=NATIONAL_SCOPE)}"
}


def _sample_screening() -> ClientScreened:
    """A real ``ClientScreened`` (contracts' samples), as a regency's outreach would publish it."""
    path = Path(__file__).resolve().parents[3] / "contracts" / "tests" / "event_samples.py"
    spec = importlib.util.spec_from_file_location("event_samples", path)
    assert spec is not None and spec.loader is not None
    module = sys.modules.setdefault("event_samples", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    screening = module.sample(ClientScreened)
    assert isinstance(screening, ClientScreened)
    return screening


STAGED = ("3301", "3303", "7471")
"""The regencies whose streams the stand-in holds."""


def stand_in(tmp_path: Path) -> tuple[NatsServer, NatsServer]:
    """(regencies, hub), not started: the regencies' server answers ``$JS.r<code>.API`` for each
    code of :data:`STAGED` (mapped to its own JetStream, as a regency's link maps it) on its leaf
    port, which the hub dials."""
    mappings = "\n".join(f'  "{names.js_api(code)}.>": "$JS.API.>"' for code in STAGED)
    leaf_port = free_port()
    regencies = NatsServer(
        tmp_path / "regencies",
        server_name="regencies",
        domain="stand-in",
        extra_config=f"mappings = {{\n{mappings}\n}}\nleafnodes {{ listen: 127.0.0.1:{leaf_port} }}",
    )
    hub = NatsServer(
        tmp_path / "hub",
        server_name="hub",
        domain=names.HUB_DOMAIN,
        extra_config=f'leafnodes {{ remotes = [ {{ url: "nats-leaf://127.0.0.1:{leaf_port}" }} ] }}',
    )
    return regencies, hub


def staged(code: str) -> str:
    """The subject a message sourced from ``code``'s stream has before the hub's transform."""
    return f"stage.{code}"


def national_config() -> StreamConfig:
    """``NATIONAL`` as at the hub (a source per regency, through ``$JS.r<code>.API``), plus the
    aggregate subjects of its own; each source transforms ``stage.<code>.<subject>`` back to
    ``<subject>``, whatever regency that subject names."""
    tokens = ".".join(f"{{{{wildcard({i})}}}}" for i in range(1, 5))
    return StreamConfig(
        name=names.NATIONAL_STREAM,
        subjects=[names.NATIONAL_FILTER],
        sources=[
            StreamSource(
                name=names.regency_stream(code),
                external=ExternalStream(api=names.js_api(code), deliver=names.deliver_prefix(code)),
                subject_transforms=[SubjectTransform(src=f"{staged(code)}.*.*.*.*", dest=tokens)],
            )
            for code in STAGED
        ],
    )


def envelope(code: str, **data: Any) -> dict[str, Any]:
    """An aggregate of ``code`` for 2026-10 as JSON, to be spoiled by the test."""
    body: dict[str, Any] = json.loads(new_event(aggregate(code, "2026-10", **data), regency=code).to_json())
    return body


def _stream_info(code: str) -> str:
    """The stream-info request for ``IBM_<code>`` as the hub sends it, through ``$JS.r<code>.API``."""
    return f"{names.js_api(code)}.STREAM.INFO.{names.regency_stream(code)}"


async def _answers(connection: NatsClient, subject: str) -> bool:
    try:
        await connection.request(subject, b"", timeout=0.5)
    except Exception:
        return False
    return True


async def drained(js: JetStreamContext) -> bool:
    """Whether the national durable has been delivered and has settled every message ``NATIONAL``
    holds (the message with an identity is erased from it once read: it may be the last one)."""
    try:
        info = await js.consumer_info(names.NATIONAL_STREAM, names.NATIONAL_DURABLE)
    except NotFoundError:
        return False
    return info.delivered.consumer_seq > 0 and info.num_pending == 0 and info.num_ack_pending == 0


async def letters(js: JetStreamContext) -> list[tuple[str, str, str]]:
    """(subject, envelope regency, error) of every dead letter in ``NATIONAL_DLQ``."""
    count = (await js.stream_info(names.NATIONAL_DLQ_STREAM)).state.messages
    found = []
    for seq in range(1, count + 1):
        message = await js.get_msg(names.NATIONAL_DLQ_STREAM, seq)
        body = json.loads(message.data or b"{}")
        found.append((message.subject, body["regency"], body["data"]["error"]))
    return found


async def test_what_is_not_a_regencys_own_aggregate_is_dead_lettered_and_the_rest_counted(
    tmp_path: Path, database_url: str
) -> None:
    negative = envelope("3301", revision=3)
    negative["data"]["indicators"]["dropouts"] = -5
    identity = envelope("3303")
    identity["data"]["nik"] = "3301010101010001"
    forged = new_event(aggregate("3302", "2026-10", revision=9, base=1000), regency="3302")
    screening = new_event(_sample_screening(), regency="3301")
    extra = envelope("7471", base=30)
    extra["data"]["comment"] = "a field of a later version"
    extra["dataschema"] = "https://example.org/later"
    through_3301 = new_event(aggregate("3302", "2026-10", revision=8, base=2000), regency="3302")
    unsourced = new_event(aggregate("3302", "2026-10", revision=7, base=3000), regency="3302")
    # (subject's regency, body, the link the hub says it came through: None for no header)
    messages: list[tuple[str, bytes, str | None]] = [
        ("3301", b"{not json", "3301"),
        ("3301", json.dumps(negative).encode(), "3301"),
        ("3303", json.dumps(identity).encode(), "3303"),
        ("3301", forged.to_json(), "3301"),
        ("3301", screening.to_json(), "3301"),
        ("3302", through_3301.to_json(), "3301"),  # 3301's server claiming 3302's subject
        ("3302", unsourced.to_json(), None),
        ("7471", json.dumps(extra).encode(), "7471"),
        ("3301", new_event(aggregate("3301", "2026-10", base=10), regency="3301").to_json(), "3301"),
    ]
    regencies, hub = stand_in(tmp_path)
    with regencies, hub:
        await _check_the_consumer(tmp_path, database_url, regencies, hub, messages)


async def _check_the_consumer(
    tmp_path: Path,
    database_url: str,
    regencies: NatsServer,
    hub: NatsServer,
    messages: list[tuple[str, bytes, str | None]],
) -> None:
    staging = await nats.connect(regencies.url)
    connection = await nats.connect(hub.url)
    try:
        js = connection.jetstream()
        stage = staging.jetstream()
        for code in STAGED:
            await stage.add_stream(
                StreamConfig(name=names.regency_stream(code), subjects=[f"{staged(code)}.>"])
            )
        for code in STAGED:  # the leaf link is up: NATIONAL's sources find their streams at once
            await eventually(partial(_answers, connection, _stream_info(code)), timeout=15)
        await js.add_stream(national_config())
        await js.add_stream(
            StreamConfig(name=names.NATIONAL_DLQ_STREAM, subjects=[names.NATIONAL_DLQ_SUBJECTS])
        )
        for code, body, link in messages:
            subject = names.aggregate_subject(code)
            if link is None:
                await js.publish(subject, body)
            else:
                await stage.publish(f"{staged(link)}.{subject}", body)
        await eventually(
            lambda: js.stream_info(names.NATIONAL_STREAM),
            until=lambda info: info.state.messages == len(messages),
            timeout=30,
        )
        stamps = []
        for seq in range(1, len(messages) + 1):
            held = await js.get_msg(names.NATIONAL_STREAM, seq)
            source = source_of(held.headers or {})
            stamps.append((held.subject, source.name if source else None))
        assert sorted(stamps, key=str) == sorted(
            ((names.aggregate_subject(code), link and source_name(link)) for code, _, link in messages),
            key=str,
        )  # the hub's stamp names the link each came through (what the test computes, nats-server's hash)
        settings = make_settings(
            tmp_path,
            nats_url=hub.url,
            database_url=database_url,
            PULIH_REPORTING_MODE="national",
            PULIH_CLOCK="manual",
            PULIH_CLOCK_START="2026-11-05",
        )
        expected_letters = sorted(
            [
                (names.NATIONAL_DLQ_REPORTING, "3301", "invalid_event"),  # not JSON
                (names.NATIONAL_DLQ_REPORTING, "3301", "invalid_event"),  # a negative count
                (names.NATIONAL_DLQ_REPORTING, "3303", "invalid_event"),  # an identity key
                (names.NATIONAL_DLQ_REPORTING, "3301", "forged_regency"),  # 3302's figures
                (names.NATIONAL_DLQ_REPORTING, "3301", "not_an_aggregate"),
                (names.NATIONAL_DLQ_REPORTING, "3302", "forged_regency"),  # through 3301's link
                (names.NATIONAL_DLQ_REPORTING, "3302", "unsourced"),
            ]
        )
        for run in ("first", "replay"):
            async with serve(build(settings)) as http:
                await eventually(lambda: drained(js), timeout=30)
                answer = await http.get(
                    "/v1/national/indicators",
                    params={"level": "regency", "from": "2026-10", "to": "2026-10", "indicator": "dropouts"},
                    headers=HEADERS,
                )
                assert answer.status_code == 200, answer.text
                assert [(r["org_unit"], r["value"], r["exact"]) for r in answer.json()["rows"]] == [
                    ("3301", 10, True),
                    ("7471", 30, True),  # fields it does not know are ignored (tolerant reader)
                ], run
                # the sources interleave: the letters' order is NATIONAL's, not the test's
                assert sorted(await letters(js)) == expected_letters, run
            # the service stopped; its durable deleted: the next start reads NATIONAL from the start
            await js.delete_consumer(names.NATIONAL_STREAM, names.NATIONAL_DURABLE)
    finally:
        await connection.close()
        await staging.close()
