"""A regency that ran before keeps its durable consumers: at start each service gives them
today's ack_wait and max_deliver, which subscribing alone would not."""

from __future__ import annotations

from pathlib import Path

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from pulih.contracts import stream_name
from pulih.kit.consumers import refresh_durables
from pulih.kit.database import Database
from pulih.kit.emitter import Emitter
from pulih.kit.messaging import make_broker, regency_stream_config
from pulih.kit.nats_server import NatsServer
from pulih.kit.runtime import ServiceRuntime
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


async def test_only_durables_that_differ_in_ack_wait_or_max_deliver_are_changed(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    # one durable differs in max_deliver alone, one in ack_wait alone, one in neither, and one
    # is not there yet (subscribing creates it with today's settings)
    settings = make_settings(
        tmp_path, nats_url=nats_server.url, PULIH_ACK_WAIT_SECONDS=7, PULIH_MAX_DELIVER=5
    )
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'rehab.db'}")
    runtime = ServiceRuntime("rehab", settings, database, Emitter(REGENCY))
    olds = {"rehab-max-deliver": (7, 8), "rehab-ack-wait": (30, 5), "rehab-current": (7, 5)}
    runtime.durables.extend([*olds, "rehab-missing"])
    broker = make_broker(nats_server.url, name="refresh")
    await broker.connect()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        await js.add_stream(regency_stream_config(REGENCY))
        for durable, (ack_wait, max_deliver) in olds.items():
            await js.add_consumer(
                stream_name(REGENCY),
                ConsumerConfig(
                    durable_name=durable,
                    filter_subject=f"ibm.{REGENCY}.{durable}.>",
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=ack_wait,
                    max_deliver=max_deliver,
                ),
            )
        assert sorted(await refresh_durables(broker, runtime)) == ["rehab-ack-wait", "rehab-max-deliver"]
        for durable in olds:
            config = (await js.consumer_info(stream_name(REGENCY), durable)).config
            assert (config.ack_wait, config.max_deliver) == (7, 5), durable
            assert config.filter_subject == f"ibm.{REGENCY}.{durable}.>"
        assert await refresh_durables(broker, runtime) == [], "nothing left to change"
    finally:
        await nc.close()
        await broker.stop()
        await database.dispose()
