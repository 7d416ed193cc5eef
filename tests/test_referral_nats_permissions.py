"""The clinic NATS users of deploy/nats/ against a real nats-server: a clinic reads only the
events addressed to it (its referrals, and the rejections of its own answers), through its own
durable consumer, publishes only as itself, and no message bigger than the clinics' limit."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import AckPolicy, ConsumerConfig
from referral_regency import CLINIC_PASSWORDS, ROOT, SERVICE_PASSWORD, clinic_users, secured_nats
from system_support import stream_messages

from pulih.kit.federation.render import render_regency, write_files
from pulih.kit.federation.secrets import Secrets
from pulih.kit.federation.topology import load_federation
from pulih.kit.nats_server import NatsServer, nats_server_binary
from pulih.kit.testing import eventually

pytestmark = pytest.mark.system

A, B = "klinik-pratama-sehat", "rsud-cilacap"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    srv = secured_nats(tmp_path / "nats").start()
    try:
        service = await nats.connect(srv.url, user="pulih", password=SERVICE_PASSWORD)
        js = service.jetstream()
        await js.add_stream(name="IBM_3301", subjects=["ibm.3301.>"])
        await js.publish(f"ibm.3301.referral.referred_to_clinic.{A}", b"referral for A")
        await js.publish(f"ibm.3301.referral.referred_to_clinic.{B}", b"referral for B")
        await js.publish(f"ibm.3301.referral.answer_rejected.{A}", b"A's answer rejected")
        await js.publish(f"ibm.3301.referral.answer_rejected.{B}", b"B's answer rejected")
        await js.publish("ibm.3301.outreach.client_screened", b"a screening")
        await service.close()
        yield srv
    finally:
        srv.stop()


class Clinic:
    def __init__(self, nc: NatsClient, errors: list[str]) -> None:
        self.nc, self.errors = nc, errors

    async def violations(self, action: Any) -> list[str]:
        """Run ``action`` and return the permission violations the server reported for it."""
        before = len(self.errors)
        await action()
        await self.nc.flush()
        await asyncio.sleep(0.3)  # the server reports a violation asynchronously (-ERR)
        return self.errors[before:]


async def connect(server: NatsServer, clinic_id: str, *, inbox_prefix: str | None = None) -> Clinic:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await nats.connect(
        server.url,
        user=clinic_users.consumer_name(clinic_id),
        password=CLINIC_PASSWORDS[clinic_id],
        inbox_prefix=inbox_prefix or clinic_users.inbox_prefix(clinic_id),
        error_cb=on_error,
    )
    return Clinic(nc, errors)


async def test_a_clinic_reads_its_own_referrals_through_its_own_durable_consumer(server: NatsServer) -> None:
    a = await connect(server, A)
    try:
        sub = await a.nc.jetstream().pull_subscribe(
            f"ibm.3301.referral.*.{A}",
            durable=f"clinic-{A}",
            stream="IBM_3301",
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT),
        )
        messages = await sub.fetch(10, timeout=2)
        assert [m.data for m in messages] == [b"referral for A", b"A's answer rejected"]
        for m in messages:
            await m.ack()
        violations = await a.violations(
            lambda: a.nc.publish(f"ibm.3301.clinic.{A}.referral_accepted", b"A's answer")
        )
        assert violations == []
    finally:
        await a.nc.close()
    answers = await stream_messages(
        f"nats://pulih:{SERVICE_PASSWORD}@127.0.0.1:{server.port}", "ibm.3301.clinic.>"
    )
    assert [m.data for m in answers] == [b"A's answer"]


async def test_clinic_a_cannot_make_a_consumer_on_clinic_bs_referrals(server: NatsServer) -> None:
    a = await connect(server, A)
    js = a.nc.jetstream()
    try:
        for durable, filter_subject in (
            (f"clinic-{A}", f"ibm.3301.referral.*.{B}"),
            (f"clinic-{A}", f"ibm.3301.referral.answer_rejected.{B}"),
            (f"clinic-{B}", f"ibm.3301.referral.*.{B}"),
            (f"clinic-{A}", "ibm.3301.>"),
            (f"clinic-{A}", "ibm.3301.outreach.>"),
        ):
            config = ConsumerConfig(name=durable, durable_name=durable, filter_subject=filter_subject)
            with pytest.raises(nats.errors.TimeoutError):  # the request never reaches JetStream
                await js._jsm.add_consumer("IBM_3301", config=config, timeout=1)
        # its own create subject with another filter in the body: JetStream refuses it
        body = {
            "stream_name": "IBM_3301",
            "config": {"name": f"clinic-{A}", "durable_name": f"clinic-{A}", "filter_subject": "ibm.3301.>"},
        }
        answer = await a.nc.request(
            f"$JS.API.CONSUMER.CREATE.IBM_3301.clinic-{A}.ibm.3301.referral.*.{A}", json.dumps(body).encode()
        )
        assert json.loads(answer.data)["error"]["err_code"] == 10131
        # an ephemeral consumer, or reading B's or a raw stream message, is not allowed either
        for subject in (
            "$JS.API.CONSUMER.CREATE.IBM_3301",
            f"$JS.API.CONSUMER.MSG.NEXT.IBM_3301.clinic-{B}",
            "$JS.API.STREAM.MSG.GET.IBM_3301",
            "$JS.API.DIRECT.GET.IBM_3301",
        ):
            assert await a.violations(lambda s=subject: a.nc.publish(s, b"{}")), subject
    finally:
        await a.nc.close()


async def test_clinic_a_cannot_subscribe_to_b_or_to_anything_else_of_the_regency(server: NatsServer) -> None:
    a = await connect(server, A)
    try:
        for subject in (
            f"ibm.3301.referral.*.{B}",
            f"ibm.3301.referral.referred_to_clinic.{B}",
            f"ibm.3301.referral.answer_rejected.{B}",
            f"ibm.3301.referral.answer_rejected.{A}",  # its own, too: only through its consumer
            "ibm.3301.>",
            "ibm.3301.outreach.>",
            "ibm.3301.dlq.>",
            "_INBOX.>",  # Pulih's services' replies
            f"{clinic_users.inbox_prefix(B)}.>",  # B's pulled referrals
            ">",
        ):
            violations = await a.violations(lambda s=subject: a.nc.subscribe(s))
            assert violations and "permissions violation" in violations[0], subject
    finally:
        await a.nc.close()


async def test_clinic_a_cannot_publish_an_answer_as_clinic_b_or_as_a_service(server: NatsServer) -> None:
    a = await connect(server, A)
    try:
        for subject in (
            f"ibm.3301.clinic.{B}.referral_accepted",
            "ibm.3301.referral.referral_closed.klinik-pratama-sehat",
            "ibm.3301.outreach.client_registered",
        ):
            violations = await a.violations(lambda s=subject: a.nc.publish(s, b"forged"))
            assert violations and "permissions violation" in violations[0], subject
    finally:
        await a.nc.close()
    forged = await stream_messages(
        f"nats://pulih:{SERVICE_PASSWORD}@127.0.0.1:{server.port}", "ibm.3301.clinic.>"
    )
    assert forged == []


async def test_a_clinic_with_the_shared_inbox_prefix_cannot_even_get_answers(server: NatsServer) -> None:
    a = await connect(server, A, inbox_prefix="_INBOX")
    try:
        with pytest.raises(nats.errors.TimeoutError):
            await a.nc.jetstream().pull_subscribe(
                f"ibm.3301.referral.*.{A}", durable=f"clinic-{A}", stream="IBM_3301"
            )
    finally:
        await a.nc.close()


def test_the_generator_refuses_a_clinic_id_that_is_not_a_slug() -> None:
    with pytest.raises(ValueError):
        clinic_users.clinic_permissions("3301", "klinik.*")
    with pytest.raises(ValueError):
        clinic_users.clinic_permissions("33.01", "klinik-a")


def refusal_of_a_publish(server: NatsServer, user: str, password: str, subject: str, size: int) -> str:
    """What the server answers a client that announces a message of ``size`` bytes (the NATS
    protocol, spoken by hand: the server judges the size from the ``PUB`` line alone)."""
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        replies = sock.makefile("rb")
        assert replies.readline().startswith(b"INFO ")
        connect = {"user": user, "pass": password, "verbose": False, "pedantic": False}
        sock.sendall(f"CONNECT {json.dumps(connect)}\r\nPING\r\n".encode())
        assert replies.readline().strip() == b"PONG"
        sock.sendall(f"PUB {subject} {size}\r\n".encode())
        return replies.readline().decode().strip()


async def test_the_server_refuses_a_clinic_message_over_the_clinics_limit(server: NatsServer) -> None:
    limit = clinic_users.CLINIC_MAX_PAYLOAD
    user, password = clinic_users.consumer_name(A), CLINIC_PASSWORDS[A]
    for size in (limit + 1, 900 * 1024):
        refusal = refusal_of_a_publish(server, user, password, f"ibm.3301.clinic.{A}.referral_accepted", size)
        assert refusal == "-ERR 'Maximum Payload Violation'", size

    # with a client library: the connection is closed and nothing is stored
    errors: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    nc = await nats.connect(
        server.url,
        user=user,
        password=password,
        inbox_prefix=clinic_users.inbox_prefix(A),
        allow_reconnect=False,
        error_cb=on_error,
    )

    async def closed() -> bool:
        return nc.is_closed

    try:
        await nc.publish(f"ibm.3301.clinic.{A}.junk", b"x" * 900 * 1024)
        await eventually(closed)
    finally:
        await nc.close()
    # a message of exactly the limit goes through; Pulih's services are not bound by it
    a = await connect(server, A)
    try:
        ack = await a.nc.jetstream().publish(f"ibm.3301.clinic.{A}.referral_accepted", b"y" * (limit - 200))
        assert ack.stream == "IBM_3301"
        await a.nc.publish(f"ibm.3301.clinic.{A}.referral_accepted", b"z" * limit)
        await a.nc.flush(timeout=2)
    finally:
        await a.nc.close()
    service = await nats.connect(server.url, user="pulih", password=SERVICE_PASSWORD)
    try:
        await service.jetstream().publish("ibm.3301.dlq.referral", b"d" * (limit * 4))
    finally:
        await service.close()
    url = f"nats://pulih:{SERVICE_PASSWORD}@127.0.0.1:{server.port}"
    stored = await eventually(lambda: stream_messages(url, "ibm.3301.clinic.>"), until=lambda m: len(m) == 2)
    assert sorted(len(m.data) for m in stored) == [limit - 200, limit]


def test_the_generator_refuses_a_clinic_limit_too_small_for_an_answer() -> None:
    with pytest.raises(ValueError):
        clinic_users.accounts_block("3301", "s", {A: "a"}, clinic_max_payload=512)


def test_a_rendered_regency_server_loads_the_hand_made_accounts(tmp_path: Path) -> None:
    """clinic_users.py's block in place of the accounts.conf ``pulih federation render`` writes
    (the link cut, as the block has no LINK account): the server starts with it, not without."""
    fed = load_federation(ROOT / "deploy" / "federation.toml")
    files = render_regency(fed, "3301", Secrets.load_or_create(tmp_path / "secrets.json"), link_up=False)
    files.pop("accounts.conf")
    conf = write_files(tmp_path / "r3301", files)[0]
    assert conf.name == "nats.conf"
    missing = subprocess.run([nats_server_binary(), "-t", "-c", str(conf)], capture_output=True, text=True)
    assert missing.returncode != 0, "the regency config must not start without its accounts"
    (conf.parent / "accounts.conf").write_text(
        clinic_users.accounts_block("3301", "s3cret", {A: "a", B: "b"})
    )
    valid = subprocess.run([nats_server_binary(), "-t", "-c", str(conf)], capture_output=True, text=True)
    assert valid.returncode == 0, valid.stdout + valid.stderr
