"""The clinic NATS users of deploy/nats/ against a real nats-server: a clinic reads only the
referrals addressed to it, through its own durable consumer, and publishes only as itself."""

from __future__ import annotations

import asyncio
import json
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

from pulih.kit.nats_server import NatsServer, nats_server_binary

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
        assert [m.data for m in messages] == [b"referral for A"]
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


def test_the_regency_config_of_deploy_loads_the_generated_users(tmp_path: Path) -> None:
    conf = tmp_path / "regency.conf"
    conf.write_text((ROOT / "deploy" / "nats" / "regency.conf").read_text())
    missing = subprocess.run([nats_server_binary(), "-t", "-c", str(conf)], capture_output=True, text=True)
    assert missing.returncode != 0, "the regency config must not start without its users"
    (tmp_path / "users.conf").write_text(clinic_users.authorization_block("3301", "s3cret", {A: "a", B: "b"}))
    valid = subprocess.run([nats_server_binary(), "-t", "-c", str(conf)], capture_output=True, text=True)
    assert valid.returncode == 0, valid.stdout + valid.stderr
