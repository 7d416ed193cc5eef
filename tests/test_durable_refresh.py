"""A regency that ran before keeps its durable consumers: at start each service gives them
today's ack_wait and max_deliver, which subscribing alone would not."""

from __future__ import annotations

from pathlib import Path

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from pulih.contracts import stream_name
from pulih.kit.messaging import regency_stream_config
from pulih.kit.nats_server import NatsServer
from pulih.kit.testing import REGENCY, eventually, make_settings, serve
from pulih.outreach.app import build

pytestmark = pytest.mark.system


async def test_an_old_durable_gets_todays_ack_wait_and_max_deliver(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        await js.add_stream(regency_stream_config(REGENCY))
        old = ConsumerConfig(
            durable_name="outreach-referral-events",
            filter_subject=f"ibm.{REGENCY}.referral.>",
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30,
            max_deliver=8,
        )
        await js.add_consumer(stream_name(REGENCY), old)
        settings = make_settings(
            tmp_path,
            nats_url=nats_server.url,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'outreach.db'}",
            PULIH_ACK_WAIT_SECONDS=7,
            PULIH_MAX_DELIVER=5,
        )
        app = build(settings)
        async with serve(app):

            async def config() -> ConsumerConfig:
                return (await js.consumer_info(stream_name(REGENCY), "outreach-referral-events")).config

            now = await eventually(config, until=lambda c: c.ack_wait == 7, timeout=20)
        assert (now.ack_wait, now.max_deliver) == (7, 5)
        assert now.filter_subject == f"ibm.{REGENCY}.referral.>"
    finally:
        await nc.close()
