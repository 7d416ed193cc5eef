"""The province's NATS cluster as deploy/k8s runs it, here as three local processes (its nats.conf
from the ConfigMap, each node's environment as the StatefulSet gives it, only the addresses, the
store and the leaf certificate's mount moved to this machine): the nodes route to each other with
the route password; a regency's services log in as its own user and make its stream R3
(``PULIH_STREAM_REPLICAS`` of its ConfigMap). Without the setting a new stream is R1 and an
existing one keeps its replicas. Every node links each regency to the national hub (rendered by
``pulih federation render``, TLS on its leaf port): the regency's aggregates reach ``NATIONAL``
once each, and nothing else of its stream answers the hub."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
from deploy_support import (
    K8S,
    container_env,
    containers,
    find,
    kustomize,
    leaf_certificate,
    with_leaf_mounted,
)
from federation_support import (
    ConfiguredServer,
    aggregate,
    local_federation,
    publish_event,
    regency_event,
    stream_bodies,
)
from nats.js.errors import Error as JetStreamError

from pulih.contracts import stream_name
from pulih.contracts.events import ClientScreened, SessionHeld
from pulih.kit.federation import names
from pulih.kit.federation.national_stream import declare_national_streams
from pulih.kit.federation.render import TlsFiles, render_hub, write_files
from pulih.kit.federation.secrets import Secrets
from pulih.kit.messaging import StreamLimits, ensure_regency_stream, make_broker, regency_stream_config
from pulih.kit.nats_server import free_port, nats_server_binary, port_open, stop_process
from pulih.kit.testing import eventually, make_settings

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


@dataclass(frozen=True)
class NationalHub:
    """The hub a province's links dial: its leaf address and the passwords of the federation."""

    leaf_address: str
    secrets: Secrets
    server: ConfiguredServer | None = None

    @property
    def admin_url(self) -> str:
        assert self.server is not None
        return f"nats://{names.HUB_ADMIN_USER}:{self.secrets.hub_admin()}@127.0.0.1:{self.server.port}"


def set_value(docs: list[dict[str, Any]], kind: str, name: str, key: str, value: str) -> None:
    """Set ``key`` of a ConfigMap's or Secret's data, as the operator would."""
    doc = find(docs, kind, name)
    doc["data"][key] = base64.b64encode(value.encode()).decode() if kind == "Secret" else value


@contextmanager
def province_cluster(tmp_path: Path, hub: NationalHub, leaf: Path) -> Iterator[Cluster]:
    """The three nodes, each linking regency 3301 to ``hub`` with the leaf certificate in ``leaf``
    (where the pod mounts the Secret nats-leaf-tls)."""
    docs = kustomize(K8S / "nats")
    set_value(docs, "ConfigMap", "nats-federation", "PULIH_HUB_LEAF", hub.leaf_address)
    set_value(docs, "Secret", "nats-secrets", f"PULIH_{REGENCY}_LINK_PASSWORD", hub.secrets.link(REGENCY))
    config = with_leaf_mounted(find(docs, "ConfigMap", "nats-config")["data"]["nats.conf"], docs, leaf)
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


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """The province's cluster; its links dial a hub address where nothing listens."""
    unlinked = NationalHub(f"127.0.0.1:{free_port()}", Secrets.load_or_create(tmp_path / "secrets.json"))
    with province_cluster(tmp_path, unlinked, leaf_certificate(tmp_path / "tls")) as running:
        yield running


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[NationalHub]:
    """The national hub with a source for 3301 to come, rendered as ``pulih federation render``
    does, its leaf port requiring a certificate of the national CA (as deploy/README.md installs
    it); the province's leaf certificate beside it in ``tmp_path/tls/leaf``."""
    from referral_regency import deploy_module

    certificates = deploy_module("deploy/tls/issue_certificates.py", "issue_certificates")
    leaf_certificate(tmp_path / "tls")
    hub_tls = tmp_path / "tls" / "hub"
    certificates.issue_server(hub_tls, tmp_path / "tls" / "national-ca", ["127.0.0.1"])
    fed = local_federation([REGENCY])
    secrets = Secrets.load_or_create(tmp_path / "secrets.json")
    monitor = free_port()
    directory = tmp_path / "hub"
    tls = TlsFiles(
        str(hub_tls / "server.pem"), str(hub_tls / "server-key.pem"), str(hub_tls / "ca.pem"), verify=True
    )
    files = render_hub(
        fed,
        secrets,
        listen_host="127.0.0.1",
        store_dir=directory / "store",
        tls=tls,
        sync_always=False,
        monitor_ports=[monitor],
    )
    write_files(directory, files)
    server = ConfiguredServer(
        "hub", directory / "hub.conf", fed.hub.client_port, monitor, directory / "hub.log"
    )
    server.start()
    try:
        yield NationalHub(f"127.0.0.1:{fed.hub.leaf_port}", secrets, server)
    finally:
        server.stop()


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


QUIET = 2.0
"""How long something that must not happen is watched for (seconds)."""


async def national_subjects(hub: NationalHub) -> list[str]:
    return [subject for subject, _ in await stream_bodies(hub.admin_url, names.NATIONAL_STREAM)]


async def test_every_node_links_the_regency_to_the_hub_and_only_its_aggregates_cross(
    tmp_path: Path, hub: NationalHub
) -> None:
    assert hub.server is not None
    with province_cluster(tmp_path, hub, tmp_path / "tls" / "leaf") as cluster:

        async def links() -> list[dict[str, Any]]:
            assert hub.server is not None
            return list((await hub.server.leafz()).get("leafs") or [])

        linked = await eventually(links, until=lambda found: len(found) == 3, timeout=30)
        assert sorted(leaf["name"] for leaf in linked) == ["nats-0", "nats-1", "nats-2"]
        assert {leaf["account"] for leaf in linked} == {names.hub_link_account(REGENCY)}

        assert await ensured(cluster.url(), REGENCY, StreamLimits(replicas=cluster.replicas)) == 3
        nc = await nats.connect(cluster.url().split(","), connect_timeout=3)
        try:
            js = nc.jetstream()
            sent = []
            for period in ("2026-07", "2026-08", "2026-09"):
                await publish_event(js, regency_event(ClientScreened, REGENCY))
                await publish_event(js, regency_event(SessionHeld, REGENCY))
                event = aggregate(REGENCY, period=period)
                await publish_event(js, event)
                sent.append(str(event.id))
        finally:
            await nc.close()

        admin = await nats.connect(hub.admin_url, connect_timeout=3)
        try:
            await declare_national_streams(admin.jetstream(timeout=5), [REGENCY])
            got = await eventually(
                lambda: stream_bodies(hub.admin_url, names.NATIONAL_STREAM),
                until=lambda m: len(m) >= 3,
                timeout=30,
            )
            assert [body["id"] for _, body in got] == sent
            # three links, yet each aggregate once: watched a while, nothing more arrives
            await asyncio.sleep(QUIET)
            assert await national_subjects(hub) == [names.aggregate_subject(REGENCY)] * 3
        finally:
            await admin.close()

        # what the hub may ask through the links, asked as the link's own account on the hub: a
        # consumer on the aggregates is answered, nothing else of the regency's stream is
        link_user = f"{names.link_user(REGENCY)}:{hub.secrets.link(REGENCY)}"
        link = await nats.connect(f"nats://{link_user}@127.0.0.1:{hub.server.port}", connect_timeout=3)
        try:
            api, stream = names.js_api(REGENCY), stream_name(REGENCY)
            config = {"name": "probe", "ack_policy": "explicit", "inactive_threshold": 5_000_000_000}
            answer = await link.request(
                f"{api}.CONSUMER.CREATE.{stream}.probe.{names.aggregate_subject(REGENCY)}",
                json.dumps(
                    {
                        "stream_name": stream,
                        "config": config | {"filter_subject": names.aggregate_subject(REGENCY)},
                    }
                ).encode(),
                timeout=5,
            )
            assert json.loads(answer.data)["name"] == "probe"
            screenings = f"ibm.{REGENCY}.outreach.client_screened"
            for request, body in (
                (f"{api}.STREAM.INFO.{stream}", {}),
                (
                    f"{api}.CONSUMER.CREATE.{stream}.probe2.{screenings}",
                    {
                        "stream_name": stream,
                        "config": config | {"name": "probe2", "filter_subject": screenings},
                    },
                ),
            ):
                with pytest.raises((nats.errors.NoRespondersError, nats.errors.TimeoutError)):
                    await link.request(request, json.dumps(body).encode(), timeout=1)
        finally:
            await link.close()
