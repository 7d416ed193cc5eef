"""``PULIH_STREAM_REPLICAS``: on a 3-node JetStream cluster (as deploy/k8s runs it) the services make
the regency stream R3; unset, a new stream is R1 and an existing one keeps its operator's replicas."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.js.errors import Error as JetStreamError

from pulih.contracts import stream_name
from pulih.kit.messaging import StreamLimits, ensure_regency_stream, make_broker, regency_stream_config
from pulih.kit.nats_server import NatsServer, free_port
from pulih.kit.testing import make_settings

pytestmark = pytest.mark.system

REGENCY = "3301"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[NatsServer]]:
    """Three nats-server processes routed into one JetStream cluster on free ports."""
    routes = [free_port() for _ in range(3)]
    route_urls = ", ".join(f"nats-route://127.0.0.1:{port}" for port in routes)
    nodes = [
        NatsServer(
            tmp_path / f"node-{i}",
            server_name=f"nats-{i}",
            extra_config=f"cluster {{\n  name: pulih\n  listen: 127.0.0.1:{routes[i]}\n"
            f"  routes: [{route_urls}]\n}}",
        )
        for i in range(3)
    ]
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.stop()


async def ensured(url: str, limits: StreamLimits, timeout: float = 30.0) -> int:
    """Ensure the regency stream as a service does, retrying while the cluster elects its
    meta leader; return its replicas."""
    broker = make_broker(url, name="test")
    await broker.connect()
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                await ensure_regency_stream(broker, REGENCY, limits)
                info = await broker.connection.jetstream().stream_info(stream_name(REGENCY))
                return int(info.config.num_replicas or 1)
            except (JetStreamError, TimeoutError, nats.errors.Error):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
    finally:
        await broker.stop()


def test_the_setting_is_read_and_a_new_stream_is_r1_without_it(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, nats_url="nats://x", PULIH_STREAM_REPLICAS=3)
    assert StreamLimits.from_settings(settings).replicas == 3
    assert regency_stream_config(REGENCY, StreamLimits.from_settings(settings)).num_replicas == 3
    unset = StreamLimits.from_settings(make_settings(tmp_path, nats_url="nats://x"))
    assert unset.replicas is None
    assert regency_stream_config(REGENCY, unset).num_replicas == 1


async def test_on_a_three_node_cluster_the_stream_is_made_r3_and_kept(cluster: list[NatsServer]) -> None:
    url = ",".join(node.url for node in cluster)
    assert await ensured(url, StreamLimits()) == 1  # unset: a new stream is R1
    assert await ensured(url, StreamLimits(replicas=3)) == 3  # set: brought to R3
    assert await ensured(url, StreamLimits()) == 3  # unset again: the replicas are kept
