"""The national link against real nats-servers: a hub and regencies 3301 and 3302, each from the
configs ``pulih federation render`` writes. What crosses is the regencies' aggregates and nothing
else, and the servers, not Pulih's code, keep it so: a hub with its own administrator's
credentials cannot reach into a regency, a regency cannot offer aggregates under another's code
(its link lands in its own hub account ``R<code>``, from which ``NATIONAL`` imports only that
code's subjects), the national user reads the aggregates and nothing else, a link cut for a while
catches up exactly once, and ``NATIONAL`` declared before any link is up sources every regency
once the links come."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import nats
import pytest
from federation_support import (
    ConfiguredServer,
    RunningFederation,
    aggregate,
    publish_event,
    regency_event,
    running_federation,
    stream_bodies,
)
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NoStreamResponseError

from pulih.contracts import CloudEvent, Event
from pulih.contracts.events import AggregateReported, ClientScreened, ReferredToClinic, SessionHeld
from pulih.contracts.registry import parse_event
from pulih.kit.federation import names
from pulih.kit.federation.national_stream import national_stream_config
from pulih.kit.federation.render import render_link, render_regency, write_files
from pulih.kit.nats_server import free_port
from pulih.kit.testing import eventually

pytestmark = [pytest.mark.system, pytest.mark.slow]

CODES = ("3301", "3302")
PRIVATE_EVENTS: tuple[type[Event], ...] = (ClientScreened, SessionHeld, ReferredToClinic)
"""What a regency's stream holds besides aggregates: screenings, sessions, referrals."""
PRIVATE_FIELDS = {
    "client_id",
    "screening_id",
    "substances",
    "session_id",
    "enrollment_id",
    "referral_id",
    "clinic_id",
    "consent_id",
    "agent_id",
    "unit_id",
}
AGGREGATE_SUBJECT = re.compile(r"^ibm\.[0-9]{4}\.reporting\.aggregate_reported$")
T = TypeVar("T")
QUIET = 1.5
"""How long something that must not happen is watched for (seconds)."""


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFederation]:
    with running_federation(tmp_path_factory.mktemp("federation"), CODES) as fed:
        yield fed


@pytest.fixture
async def linked(federation: RunningFederation) -> RunningFederation:
    """The federation with the regencies' streams and NATIONAL declared, every link up."""
    for node in federation.regencies.values():
        await node.declare_stream()
    await federation.declare_national()
    for code in federation.regencies:
        await federation.wait_linked(code)
    return federation


@pytest.fixture
async def hub(linked: RunningFederation) -> AsyncIterator[NatsClient]:
    """A connection to the hub with its administrator's credentials."""
    nc = await linked.hub_admin()
    yield nc
    await nc.close()


async def publish(fed: RunningFederation, code: str, *events: CloudEvent[Any]) -> None:
    nc = await fed.regencies[code].connect()
    try:
        js = nc.jetstream()
        for event in events:
            await publish_event(js, event)
    finally:
        await nc.close()


async def national_ids(fed: RunningFederation) -> Counter[str]:
    """How many times each event id is in NATIONAL."""
    return Counter(str(body.get("id")) for _, body in await fed.national_messages())


async def arrived(fed: RunningFederation, *events: CloudEvent[Any], timeout: float = 20.0) -> Counter[str]:
    """Wait until every one of ``events`` is in NATIONAL; return the ids NATIONAL holds."""
    wanted = {str(e.id) for e in events}
    return await eventually(lambda: national_ids(fed), until=lambda ids: wanted <= set(ids), timeout=timeout)


async def stays(probe: Callable[[], Awaitable[T]], holds: Callable[[T], bool], seconds: float = QUIET) -> T:
    """Watch ``probe`` for ``seconds``: ``holds`` must be true of every answer (an absence can only
    be watched for a while)."""
    deadline = time.monotonic() + seconds
    while True:
        value = await probe()
        assert holds(value), value
        if time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


def private_values(events: list[CloudEvent[Any]]) -> set[str]:
    """Every id a private event carries (client, screening, session, referral, …)."""
    found = set()
    for event in events:
        for key, value in event.data.model_dump(mode="json").items():
            if key.endswith("_id") and isinstance(value, str) and key != "clinic_id":
                found.add(value)
    return found


def keys_of(value: object) -> set[str]:
    """Every key of a JSON document, however deep."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_of(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_of(v)}
    return set()


async def stream_subjects(js_url: str, stream: str) -> list[str]:
    return [subject for subject, _ in await stream_bodies(js_url, stream)]


async def test_only_aggregates_cross_to_the_hub(linked: RunningFederation, hub: NatsClient) -> None:
    fed = linked
    seen: list[Msg] = []

    async def collect(msg: Msg) -> None:
        seen.append(msg)

    await hub.subscribe(">", cb=collect)
    await hub.flush()
    private = {code: [regency_event(model, code) for model in PRIVATE_EVENTS] for code in CODES}
    aggregates = {code: [aggregate(code, "2026-07"), aggregate(code, "2026-08")] for code in CODES}
    for code in CODES:  # the private events first: had they crossed, they would be in before these
        await publish(fed, code, *private[code], *aggregates[code])
    await arrived(fed, *(a for code in CODES for a in aggregates[code]))
    await hub.flush()

    secrets = private_values([e for events in private.values() for e in events])
    assert len(secrets) >= 15
    delivered = []
    for msg in seen:
        body = msg.data or b""
        assert not any(s.encode() in body for s in secrets), (msg.subject, body[:200])
        text = body.decode()
        if msg.subject.startswith(("$JS.", "$JSC.", "_INBOX.")):  # JetStream's requests and answers
            assert not body or not keys_of(json.loads(body)) & PRIVATE_FIELDS, (msg.subject, text[:300])
            named = re.findall(r"ibm\.[0-9a-z_.*>]+", text)
            assert all(AGGREGATE_SUBJECT.match(s) for s in named), (msg.subject, text[:300])
            continue
        if not body:  # flow control and heartbeats of a source's consumer
            assert (msg.headers or {}).get("Status"), msg.subject
            continue
        assert not keys_of(json.loads(body)) & PRIVATE_FIELDS, (msg.subject, text[:300])
        event = parse_event(body)
        assert isinstance(event.data, AggregateReported), msg.subject
        delivered.append(str(event.id))
    # the subscriber did see the aggregates cross (it could have caught anything else)
    assert {str(a.id) for events in aggregates.values() for a in events} <= set(delivered)

    js = hub.jetstream()
    streams = sorted([info.config.name or "" async for info in _streams(js)])
    assert streams == [names.NATIONAL_STREAM, names.NATIONAL_DLQ_STREAM]
    national = await stream_subjects(fed.hub_admin_url, names.NATIONAL_STREAM)
    assert national and all(AGGREGATE_SUBJECT.match(s) for s in national), set(national)
    assert {s.split(".")[1] for s in national} == set(CODES)
    dlq = await stream_subjects(fed.hub_admin_url, names.NATIONAL_DLQ_STREAM)
    assert all(s.startswith("national.dlq.") for s in dlq)


async def _streams(js: Any) -> AsyncIterator[Any]:
    for info in await js.streams_info():
        yield info


async def refused(nc: NatsClient, subject: str, body: dict[str, Any]) -> str:
    """How the hub's request on ``subject`` ended: no responder, no answer, or an error answer."""
    try:
        answer = await nc.request(subject, json.dumps(body).encode(), timeout=1)
    except nats.errors.NoRespondersError:
        return "no responders"
    except nats.errors.TimeoutError:
        return "timeout"
    error = json.loads(answer.data).get("error")
    assert error, f"{subject} answered {answer.data[:300]!r}"
    return f"error {error.get('err_code')}"


async def test_a_hub_with_its_own_credentials_cannot_reach_into_a_regency(
    linked: RunningFederation, hub: NatsClient
) -> None:
    fed, code = linked, "3301"
    stream, api = names.regency_stream(code), names.js_api(code)
    regency = await fed.regencies[code].connect()
    rjs = regency.jetstream()
    try:
        before = {c.name for c in await rjs.consumers_info(stream)}

        def spy(name: str, filter_subject: str | None = None) -> dict[str, Any]:
            config: dict[str, Any] = {"name": name, "durable_name": name, "ack_policy": "none"}
            config["deliver_subject"] = f"{names.deliver_prefix(code)}.{name}"
            if filter_subject:
                config["filter_subject"] = filter_subject
            return {"stream_name": stream, "config": config}

        attempts = {
            f"{api}.CONSUMER.CREATE.{stream}": spy("spy-all"),
            f"{api}.CONSUMER.CREATE.{stream}.spy-all.ibm.{code}.>": spy("spy-all", f"ibm.{code}.>"),
            f"{api}.CONSUMER.DURABLE.CREATE.{stream}.spy-durable": spy("spy-durable"),
            f"{api}.CONSUMER.CREATE.{stream}.spy-outreach.ibm.{code}.outreach.>": spy(
                "spy-outreach", f"ibm.{code}.outreach.>"
            ),
            # the subject the link lets through, with a wider filter in the body: JetStream says no
            f"{api}.CONSUMER.CREATE.{stream}.spy-body.{names.aggregate_subject(code)}": spy(
                "spy-body", f"ibm.{code}.>"
            ),
            f"{api}.STREAM.INFO.{stream}": {},
            f"{api}.STREAM.MSG.GET.{stream}": {"seq": 1},
            f"{api}.DIRECT.GET.{stream}": {"seq": 1},
            f"{api}.STREAM.PURGE.{stream}": {},
            f"{api}.STREAM.DELETE.{stream}": {},
            f"{api}.CONSUMER.LIST.{stream}": {},
        }
        outcomes = {subject: await refused(hub, subject, body) for subject, body in attempts.items()}
        assert all(outcomes.values()), outcomes
        with pytest.raises(Exception):  # noqa: B017 - whichever way nats-py reports it
            await hub.jetstream(domain=names.domain(code)).add_consumer(
                stream, ConsumerConfig(durable_name="spy-js", deliver_subject="anything")
            )
        after = await rjs.consumers_info(stream)
        assert {c.name for c in after} == before, "no consumer was made on the regency's stream"
        assert all(c.config.filter_subject == names.aggregate_subject(code) for c in after)

        # a subscriber at the hub hears nothing of the regency while the regency works
        heard: list[Msg] = []

        async def listen(msg: Msg) -> None:
            heard.append(msg)

        for subject in (f"ibm.{code}.>", "ibm.>"):
            await hub.subscribe(subject, cb=listen)
        await hub.flush()
        sentinel = aggregate(code, "2026-06")
        await publish(fed, code, *(regency_event(m, code) for m in PRIVATE_EVENTS), sentinel)
        await arrived(fed, sentinel)
        await hub.flush()
        assert heard == []

        # what the hub publishes on the regency's subjects is stored nowhere
        stored_before = (await rjs.stream_info(stream)).state.messages
        forged = regency_event(ClientScreened, code)
        await hub.publish(f"ibm.{code}.outreach.client_screened", forged.to_json())
        with pytest.raises((NoStreamResponseError, nats.errors.TimeoutError)):
            await hub.jetstream(timeout=1).publish(f"ibm.{code}.outreach.client_screened", forged.to_json())
        await hub.flush()

        async def stored() -> int:
            return (await rjs.stream_info(stream)).state.messages

        await stays(stored, lambda n: n == stored_before)
    finally:
        await regency.close()


async def test_a_regency_cannot_offer_aggregates_under_another_regencys_code(tmp_path: Path) -> None:
    with running_federation(tmp_path / "federation", CODES) as fed:
        await fed.regencies["3301"].declare_stream()
        # 3302's own server is away; a rogue server, rendered as 3302's (domain r3302, stream
        # IBM_3302 with a forged aggregate), links with 3301's link credentials: the hub puts it
        # in 3301's account R3301, from which NATIONAL imports only 3301's subjects
        fed.regencies["3302"].server.stop()
        await fed.wait_linked("3302", linked=False)
        rogue, rogue_port = rogue_leaf(fed, tmp_path / "rogue", credentials_of="3301")
        try:
            await fed.wait_linked("3301", server_name="rogue")
            [leaf] = [leaf for leaf in (await fed.hub.leafz())["leafs"] if leaf["name"] == "rogue"]
            assert leaf["account"] == names.hub_link_account("3301")
            forged = aggregate("3302", "2026-05")
            rnc = await nats.connect(f"nats://pulih:{fed.secrets.service('3302')}@127.0.0.1:{rogue_port}")
            try:
                rjs = rnc.jetstream()
                await rjs.add_stream(name="IBM_3302", subjects=["ibm.3302.>"])
                await publish_event(rjs, forged)
            finally:
                await rnc.close()
            # NATIONAL's sources make their first attempt now, 3301's and 3302's alike
            await fed.declare_national()
            sentinel = aggregate("3301", "2026-05")
            await publish(fed, "3301", sentinel)
            await arrived(fed, sentinel)
            await stays(lambda: national_ids(fed), lambda ids: str(forged.id) not in ids)

            # 3301's services publish an aggregate on 3302's subject: nothing anywhere takes it
            also_forged = aggregate("3302", "2026-04")
            nc = await fed.regencies["3301"].connect()
            try:
                with pytest.raises(NoStreamResponseError):
                    await publish_event(nc.jetstream(), also_forged)
                await nc.publish(names.aggregate_subject("3302"), also_forged.to_json())
                await nc.flush()
            finally:
                await nc.close()
            sentinel = aggregate("3301", "2026-04")
            await publish(fed, "3301", sentinel)
            assert str(also_forged.id) not in await arrived(fed, sentinel)
            held = await stream_bodies(fed.regencies["3301"].service_url, names.regency_stream("3301"))
            assert str(also_forged.id) not in {body.get("id") for _, body in held}
            rogue_url = f"nats://pulih:{fed.secrets.service('3302')}@127.0.0.1:{rogue_port}"
            assert [body["id"] for _, body in await stream_bodies(rogue_url, "IBM_3302")] == [str(forged.id)]

            # the test could fail: with 3302's own link credentials the same server is heard
            write_files(
                tmp_path / "rogue",
                {
                    "link.conf": render_link(
                        fed.fed, "3302", fed.secrets, hub_leaf_urls=fed.fed.hub.leaf_addresses()
                    )
                },
            )
            rogue.reload()
            await fed.wait_linked("3302", server_name="rogue")
            hub = await fed.hub_admin()
            try:
                control = national_stream_config(["3302"]).evolve(name="CONTROL")
                await hub.jetstream().add_stream(control)
                heard = await eventually(
                    lambda: stream_bodies(fed.hub_admin_url, "CONTROL"), until=bool, timeout=15
                )
                assert [body["id"] for _, body in heard] == [str(forged.id)]
            finally:
                await hub.close()
        finally:
            rogue.stop()


def rogue_leaf(
    fed: RunningFederation, directory: Path, *, credentials_of: str
) -> tuple[ConfiguredServer, int]:
    """A server rendered as regency 3302's (domain r3302, its accounts) whose link logs in with
    ``credentials_of``'s link user and password; returns (server, client port)."""
    port = free_port()
    files = render_regency(
        fed.fed,
        "3302",
        fed.secrets,
        listen_host="127.0.0.1",
        client_port=port,
        store_dir=directory / "store",
        hub_leaf_urls=fed.fed.hub.leaf_addresses(),
        sync_always=False,
    )
    files["nats.conf"] = files["nats.conf"].replace('server_name: "r3302"', 'server_name: "rogue"')
    files["link.conf"] = files["link.conf"].replace(
        f"r3302:{fed.secrets.link('3302')}@",
        f"{names.link_user(credentials_of)}:{fed.secrets.link(credentials_of)}@",
    )
    assert credentials_of == "3302" or fed.secrets.link("3302") not in files["link.conf"]
    write_files(directory, files)
    server = ConfiguredServer(
        "rogue", directory / "nats.conf", port, free_port(), directory / "rogue.log"
    ).start()
    return server, port


async def test_a_link_down_for_a_while_catches_up_exactly_once(
    linked: RunningFederation, hub: NatsClient
) -> None:
    fed, node = linked, linked.regencies["3301"]
    flow_control: list[Msg] = []

    async def count(msg: Msg) -> None:
        flow_control.append(msg)

    await hub.subscribe("$JS.FC.>", cb=count)
    node.link_down()
    try:
        await fed.wait_linked("3301", linked=False)
        meanwhile = [aggregate("3301", "2026-10", revision=r) for r in range(1, 2001)]
        nc = await node.connect()
        try:
            js = nc.jetstream()
            acks = [
                js.publish(names.aggregate_subject("3301"), e.to_json(), headers={"Nats-Msg-Id": str(e.id)})
                for e in meanwhile
            ]
            for chunk in range(0, len(acks), 200):
                await asyncio.gather(*acks[chunk : chunk + 200])
        finally:
            await nc.close()
        # 3302 still reports; 3301's aggregates wait in 3301's stream
        sentinel = aggregate("3302", "2026-10")
        await publish(fed, "3302", sentinel)
        ids = await arrived(fed, sentinel)
        assert not {str(e.id) for e in meanwhile} & set(ids)
    finally:
        node.link_up()
    await fed.wait_linked("3301")
    ids = await arrived(fed, *meanwhile, timeout=60)
    assert all(ids[str(e.id)] == 1 for e in meanwhile)
    assert len(flow_control) > 0, "the catch-up went through flow control"
    await stays(
        lambda: national_ids(fed), lambda now: all(now[str(e.id)] == 1 for e in meanwhile), seconds=1.0
    )


async def test_the_national_user_reads_aggregates_and_nothing_else(linked: RunningFederation) -> None:
    fed = linked
    sentinel = aggregate("3302", "2026-04")
    await publish(fed, "3302", sentinel)
    await arrived(fed, sentinel)
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await nats.connect(fed.national_url.split(","), error_cb=on_error)
    try:
        js = nc.jetstream(timeout=2)
        config = ConsumerConfig(
            durable_name=names.NATIONAL_DURABLE,
            filter_subject=names.NATIONAL_FILTER,
            ack_policy=AckPolicy.EXPLICIT,
        )
        await js.add_consumer(names.NATIONAL_STREAM, config)
        await js.add_consumer(names.NATIONAL_STREAM, config.evolve(name=names.NATIONAL_DURABLE))
        sub = await js.pull_subscribe_bind(names.NATIONAL_DURABLE, names.NATIONAL_STREAM)
        messages = await sub.fetch(5, timeout=2)
        assert messages and all(AGGREGATE_SUBJECT.match(m.subject) for m in messages)
        for m in messages:
            await m.ack()
        assert (await js.stream_info(names.NATIONAL_STREAM)).state.messages > 0
        ack = await js.publish(names.NATIONAL_DLQ_REPORTING, b'{"dead": "letter"}')
        assert ack.stream == names.NATIONAL_DLQ_STREAM
        assert errors == []

        async def violations(action: Callable[[], Awaitable[object]]) -> list[str]:
            before = len(errors)
            with contextlib.suppress(nats.errors.TimeoutError, nats.errors.NoRespondersError):
                await action()
            await nc.flush()
            await eventually(lambda: _count(errors), until=lambda n: n > before, timeout=3)
            return errors[before:]

        refused_publishes = [
            f"$JS.API.CONSUMER.DURABLE.CREATE.{names.NATIONAL_STREAM}.another",
            f"$JS.API.CONSUMER.CREATE.{names.NATIONAL_STREAM}.another.{names.NATIONAL_FILTER}",
            f"$JS.API.CONSUMER.CREATE.{names.NATIONAL_STREAM}",
            f"$JS.API.STREAM.MSG.GET.{names.NATIONAL_STREAM}",
            f"$JS.API.STREAM.MSG.GET.{names.NATIONAL_DLQ_STREAM}",
            f"$JS.API.DIRECT.GET.{names.NATIONAL_DLQ_STREAM}",
            f"$JS.API.STREAM.INFO.{names.NATIONAL_DLQ_STREAM}",
            "$JS.API.STREAM.NAMES",
            f"$JS.API.STREAM.DELETE.{names.NATIONAL_STREAM}",
            f"$JS.API.STREAM.UPDATE.{names.NATIONAL_STREAM}",
            f"$JS.API.CONSUMER.DELETE.{names.NATIONAL_STREAM}.{names.NATIONAL_DURABLE}",
            "$JS.r3301.API.STREAM.INFO.IBM_3301",
            names.aggregate_subject("3301"),
            f"{names.deliver_prefix('3301')}.forged",
            "national.dlq.other",
        ]
        for subject in refused_publishes:
            found = await violations(lambda s=subject: nc.publish(s, b"{}"))  # type: ignore[misc]
            assert "permissions violation" in found[0].lower(), (subject, found)
        for subject in (">", "ibm.>", "national.deliver.>", f"$JS.ACK.{names.NATIONAL_STREAM}.>"):
            found = await violations(lambda s=subject: nc.subscribe(s))  # type: ignore[misc]
            assert "permissions violation" in found[0].lower(), (subject, found)
    finally:
        await nc.close()


async def _count(items: list[str]) -> int:
    return len(items)


async def test_national_declared_before_the_regencies_link_comes_up_and_sources_them(tmp_path: Path) -> None:
    """The order after a hub restart, or when a regency's link is late: ``NATIONAL`` and its
    sources exist before any link. The hub keeps running (nats-server 2.15.1 panicked in
    ``trySetupSourceConsumer`` in this order when every link shared the account of ``NATIONAL``),
    and once the links are up the aggregates arrive, each once."""
    with running_federation(tmp_path / "federation", CODES, link_up=False) as fed:
        waiting = {code: [aggregate(code, "2026-02"), aggregate(code, "2026-03")] for code in CODES}
        for code in CODES:
            await fed.regencies[code].declare_stream()
            await publish(fed, code, *waiting[code])
        await fed.declare_national()
        assert await fed.national_count() == 0
        for code in CODES:
            fed.regencies[code].link_up()
        for code in CODES:
            await fed.wait_linked(code)
            assert fed.hub.process is not None and fed.hub.process.poll() is None, "the hub died"
        events = [e for code in CODES for e in waiting[code]]
        ids = await arrived(fed, *events, timeout=45)
        assert all(ids[str(e.id)] == 1 for e in events) and len(ids) == len(events)
        leafs = (await fed.hub.leafz())["leafs"]
        assert {(leaf["name"], leaf["account"]) for leaf in leafs} == {
            (names.domain(code), names.hub_link_account(code)) for code in CODES
        }
        log = fed.hub.log_file.read_text(errors="replace")
        assert "panic" not in log and "[FTL]" not in log
