"""The province's NATS cluster as deploy/k8s runs it, here as three local processes (its nats.conf
from the ConfigMap, each node's environment as the StatefulSet gives it, only the addresses and
the store moved to this machine): the nodes route to each other with the route password; a
regency's services log in as its own user and make its stream R3 (``PULIH_STREAM_REPLICAS`` of its
ConfigMap). Without the setting a new stream is R1 and an existing one keeps its replicas."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest
from deploy_support import K8S, container_env, containers, find, kustomize
from nats.js.errors import Error as JetStreamError

from pulih.contracts import stream_name
from pulih.kit.messaging import StreamLimits, ensure_regency_stream, make_broker, regency_stream_config
from pulih.kit.nats_server import free_port, nats_server_binary, port_open, stop_process
from pulih.kit.testing import make_settings

pytestmark = pytest.mark.system

REGENCY = "3301"


@dataclass
class Node:
    client_port: int
    route_port: int
    monitor_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"


@dataclass
class Cluster:
    nodes: list[Node]
    user: str
    password: str
    replicas: int

    def url(self, password: str | None = None) -> str:
        login = f"{self.user}:{password or self.password}@"
        return ",".join(node.url.replace("://", f"://{login}") for node in self.nodes)


def local_config(config: str, node: Node, store: Path) -> str:
    """The ConfigMap's nats.conf with this machine's addresses and store instead of the pod's."""
    moved = {
        "listen: 0.0.0.0:4222": f"listen: 127.0.0.1:{node.client_port}",
        "http: 0.0.0.0:8222": f"http: 127.0.0.1:{node.monitor_port}",
        "listen: 0.0.0.0:6222": f"listen: 127.0.0.1:{node.route_port}",
        "store_dir: /data": f'store_dir: "{store}"',
        "pid_file: /var/run/nats/nats.pid": f'pid_file: "{store / "nats.pid"}"',
        "max_file_store: 45GB": "max_file_store: 2GB",
    }
    for pod, here in moved.items():
        assert pod in config, f"nats.conf no longer has {pod!r}"
        config = config.replace(pod, here)
    return config


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    docs = kustomize(K8S / "nats")
    config = find(docs, "ConfigMap", "nats-config")["data"]["nats.conf"]
    (container,) = containers(find(docs, "StatefulSet", "nats"))
    regency = kustomize(K8S / f"r{REGENCY}")
    settings = find(regency, "ConfigMap", "pulih-settings")["data"]
    user = find(regency, "ConfigMap", "pulih-regency")["data"]["NATS_USER"]
    nodes = [Node(free_port(), free_port(), free_port()) for _ in range(3)]
    try:
        for i, node in enumerate(nodes):
            env = container_env(docs, container, pod_name=f"nats-{i}")
            for n, other in enumerate(nodes, start=1):  # nats-<n-1>.nats-headless:6222, here
                env[f"ROUTE_{n}"] = re.sub(r"@[^@]+$", f"@127.0.0.1:{other.route_port}", env[f"ROUTE_{n}"])
            store = tmp_path / f"nats-{i}"
            store.mkdir()
            (store / "nats.conf").write_text(local_config(config, node, store))
            with (store / "log").open("wb") as log:
                node.process = subprocess.Popen(
                    [nats_server_binary(), "-c", str(store / "nats.conf")],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        deadline = time.monotonic() + 30
        for i, node in enumerate(nodes):
            while not port_open("127.0.0.1", node.client_port):
                assert node.process is not None and node.process.poll() is None, (
                    tmp_path / f"nats-{i}" / "log"
                ).read_text()
                assert time.monotonic() < deadline, f"nats-{i} did not listen"
                time.sleep(0.05)
        yield Cluster(
            nodes, user, env[f"PULIH_{REGENCY}_NATS_PASSWORD"], int(settings["PULIH_STREAM_REPLICAS"])
        )
    finally:
        for node in nodes:
            if node.process is not None:
                stop_process(node.process)


async def ensured(url: str, code: str, limits: StreamLimits, timeout: float = 60.0) -> int:
    """Ensure a regency stream as a service does at start, retrying while the cluster elects its
    meta leader; return its replicas."""
    broker = make_broker(url, name="test")
    await broker.connect()
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                await ensure_regency_stream(broker, code, limits)
                info = await broker.connection.jetstream().stream_info(stream_name(code))
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


async def test_the_regency_stream_is_r3_on_the_kubernetes_nats_cluster(cluster: Cluster) -> None:
    assert cluster.replicas == 3
    url = cluster.url()
    assert await ensured(url, REGENCY, StreamLimits(replicas=cluster.replicas)) == 3
    assert await ensured(url, REGENCY, StreamLimits()) == 3  # unset: an existing stream keeps R3
    assert await ensured(url, "3302", StreamLimits()) == 1  # unset: a new stream is R1
    assert await ensured(url, "3302", StreamLimits(replicas=3)) == 3  # set: brought to R3

    nc = await nats.connect(cluster.nodes[2].url, user=cluster.user, password=cluster.password)
    try:
        info = await nc.jetstream().stream_info(stream_name(REGENCY))
        assert info.cluster is not None and len(info.cluster.replicas or []) == 2  # and the leader
    finally:
        await nc.close()
    with pytest.raises(Exception, match=r"[Aa]uthorization"):
        await nats.connect(cluster.nodes[0].url, user=cluster.user, password="wrong", allow_reconnect=False)
