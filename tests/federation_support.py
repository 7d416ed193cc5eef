"""A federation for system tests: the national hub (one server, or a 3-node cluster) and regency
servers, each a real ``nats-server`` started from the configs ``pulih.kit.federation.render``
renders, on free ports, with its own store.

    with running_federation(tmp_path, ["3301", "3302"]) as fed:
        await fed.declare_national()
        ...publish with fed.regencies["3301"].service_url ...
        await fed.wait_national(count=2)

Credentials: ``fed.hub_admin_url`` (user ``hub``), ``fed.national_url`` (user ``national``, what
the national reporting uses), ``fed.regencies[code].service_url`` (user ``pulih`` of the
regency's services), ``fed.secrets`` for the rest.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import nats
from nats.aio.client import Client as NatsClient
from nats.js.api import DeliverPolicy, PubAck, StreamInfo
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from pulih.contracts import CloudEvent, Event, new_event, subject_for
from pulih.contracts.events import AggregateReported
from pulih.kit.federation import names
from pulih.kit.federation.national_stream import declare_national_streams
from pulih.kit.federation.render import render_hub, render_link, render_regency, write_files
from pulih.kit.federation.secrets import Secrets
from pulih.kit.federation.topology import Federation, Hub, HubNode, load_federation
from pulih.kit.messaging import regency_stream_config
from pulih.kit.nats_server import ServerProcess, free_port, nats_server_binary, port_open
from pulih.kit.testing import eventually

ROOT = Path(__file__).resolve().parents[1]
FEDERATION_FILE = ROOT / "deploy" / "federation.toml"
HOST = "127.0.0.1"
E = TypeVar("E", bound=Event)


def _event_samples() -> Any:
    """contracts/tests/event_samples.py: a valid event of every kind, with fresh ids."""
    spec = importlib.util.spec_from_file_location(
        "event_samples", ROOT / "contracts" / "tests" / "event_samples.py"
    )
    assert spec is not None and spec.loader is not None
    module = sys.modules.setdefault("event_samples", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module


_samples = _event_samples()


def regency_event(model: type[E], code: str, **overrides: Any) -> CloudEvent[E]:
    """A realistic ``model`` event of regency ``code`` in its envelope (fresh ids; ``overrides``
    replace fields of the data)."""
    if model is AggregateReported:
        overrides.setdefault("regency", code)
    return new_event(_samples.sample(model, **overrides), regency=code)


def aggregate(
    code: str, period: str = "2026-09", revision: int = 1, **overrides: Any
) -> CloudEvent[AggregateReported]:
    """An ``AggregateReported`` of regency ``code`` for ``period``."""
    return regency_event(AggregateReported, code, period=period, revision=revision, **overrides)


async def publish_event(js: JetStreamContext, event: CloudEvent[Event], code: str | None = None) -> PubAck:
    """Publish ``event`` on its subject in regency ``code`` (its own by default), as the outbox
    relay does (``Nats-Msg-Id`` = the event id)."""
    subject = subject_for(event, code or event.regency)
    return await js.publish(subject, event.to_json(), headers={"Nats-Msg-Id": str(event.id)})


@dataclass
class ConfiguredServer(ServerProcess):
    """A ``nats-server`` process run from a config file written elsewhere."""

    name: str
    config: Path
    port: int
    monitor_port: int
    log_file: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The client URL, without credentials."""
        return f"nats://{HOST}:{self.port}"

    @property
    def monitor_url(self) -> str:
        """The HTTP monitoring endpoint (``/leafz``, ``/jsz``, ``/routez``)."""
        return f"http://{HOST}:{self.monitor_port}"

    def launch(self) -> None:
        """Start the process without waiting for it."""
        if port_open(HOST, self.port):
            raise RuntimeError(f"port {self.port} is already in use")
        log = self.log_file.open("ab")
        self.process = subprocess.Popen(
            [nats_server_binary(), "-c", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_listening(self, timeout: float = 15.0) -> None:
        """Wait until it accepts connections (``RuntimeError`` if it exited)."""
        deadline = time.monotonic() + timeout
        while not port_open(HOST, self.port):
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"nats-server {self.name} exited; see {self.log_file}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"nats-server {self.name} did not listen on {self.port}")
            time.sleep(0.05)

    def start(self) -> ConfiguredServer:
        """Start the process and wait until it accepts connections."""
        self.launch()
        self.wait_listening()
        return self

    def reload(self) -> None:
        """Make the server read its config files again (SIGHUP, as ``nats-server --signal reload``)."""
        assert self.process is not None and self.process.poll() is None, f"{self.name} is not running"
        os.kill(self.process.pid, signal.SIGHUP)

    async def leafz(self) -> dict[str, Any]:
        """The server's ``/leafz`` monitoring answer."""
        async with httpx.AsyncClient() as http:
            return dict((await http.get(f"{self.monitor_url}/leafz")).json())


@dataclass
class RegencyNode:
    """One regency's server and what its clients log in with."""

    code: str
    directory: Path
    server: ConfiguredServer
    secrets: Secrets
    fed: Federation
    hub_leaf_addresses: list[str]

    @property
    def service_url(self) -> str:
        """The URL Pulih's services connect with (user ``pulih``, account ``PULIH``)."""
        return f"nats://{names.SERVICE_USER}:{self.secrets.service(self.code)}@{HOST}:{self.server.port}"

    async def connect(self) -> NatsClient:
        """A connection as Pulih's services."""
        return await nats.connect(self.service_url, connect_timeout=2)

    async def declare_stream(self) -> None:
        """Declare the regency's stream ``IBM_<code>`` as the services do (idempotent)."""
        nc = await self.connect()
        try:
            js = nc.jetstream()
            try:
                await js.stream_info(names.regency_stream(self.code))
            except NotFoundError:
                await js.add_stream(regency_stream_config(self.code))
        finally:
            await nc.close()

    def clinic_credentials(self, clinic_id: str) -> tuple[str, str]:
        """(user, password) of one of the regency's clinics."""
        return f"clinic-{clinic_id}", self.secrets.clinic(self.code, clinic_id)

    def set_link(self, up: bool) -> None:
        """Render ``link.conf`` up or down and reload the server: the link is restored or cut."""
        text = render_link(self.fed, self.code, self.secrets, hub_leaf_urls=self.hub_leaf_addresses, up=up)
        write_files(self.directory, {"link.conf": text})
        self.server.reload()

    def link_down(self) -> None:
        """Cut the regency's link to the hub."""
        self.set_link(False)

    def link_up(self) -> None:
        """Restore the regency's link to the hub."""
        self.set_link(True)


@dataclass
class RunningFederation:
    """A hub and regencies, running; see :func:`running_federation`."""

    fed: Federation
    secrets: Secrets
    directory: Path
    hub_servers: list[ConfiguredServer]
    regencies: dict[str, RegencyNode] = field(default_factory=dict)

    @property
    def hub(self) -> ConfiguredServer:
        """The hub's (first) server."""
        return self.hub_servers[0]

    def _hub_url(self, user: str, password: str) -> str:
        return ",".join(f"nats://{user}:{password}@{HOST}:{s.port}" for s in self.hub_servers if s.process)

    @property
    def hub_admin_url(self) -> str:
        """The hub's administrator (user ``hub``): every running hub server, comma-separated."""
        return self._hub_url(names.HUB_ADMIN_USER, self.secrets.hub_admin())

    @property
    def national_url(self) -> str:
        """The national reporting's user ``national`` at the hub (every running hub server)."""
        return self._hub_url(names.NATIONAL_USER, self.secrets.national())

    @property
    def replicas(self) -> int:
        """How many copies the national streams keep (3 on a cluster)."""
        return self.fed.hub.replicas

    async def hub_admin(self) -> NatsClient:
        """A connection to the hub as its administrator."""
        return await nats.connect(self.hub_admin_url.split(","), connect_timeout=2)

    async def declare_national(self, codes: Sequence[str] | None = None, timeout: float = 20.0) -> StreamInfo:
        """Declare ``NATIONAL`` (sources of ``codes``, by default every regency) and
        ``NATIONAL_DLQ``, retrying while a cluster elects its leaders."""
        nc = await self.hub_admin()
        try:
            js = nc.jetstream(timeout=5)
            deadline = time.monotonic() + timeout
            while True:
                try:
                    return await declare_national_streams(js, codes or self.fed.codes, self.replicas)
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        finally:
            await nc.close()

    async def national_info(self) -> StreamInfo | None:
        """``NATIONAL``'s info, or None before it is declared (or while the hub is unreachable)."""
        nc = await self.hub_admin()
        try:
            return await nc.jetstream(timeout=5).stream_info(names.NATIONAL_STREAM)
        except (NotFoundError, nats.errors.TimeoutError, nats.errors.NoRespondersError):
            return None
        finally:
            await nc.close()

    async def national_count(self) -> int:
        """How many messages ``NATIONAL`` holds (0 before it is declared)."""
        info = await self.national_info()
        return info.state.messages if info is not None else 0

    async def wait_national(self, count: int, timeout: float = 20.0) -> int:
        """Wait until ``NATIONAL`` holds at least ``count`` messages; return how many it holds."""
        return await eventually(self.national_count, until=lambda n: n >= count, timeout=timeout)

    async def national_messages(self) -> list[tuple[str, dict[str, Any]]]:
        """Every message of ``NATIONAL`` in order: (subject, decoded JSON body)."""
        return await stream_bodies(self.hub_admin_url, names.NATIONAL_STREAM)

    async def wait_linked(
        self, code: str, linked: bool = True, timeout: float = 15.0, *, server_name: str | None = None
    ) -> None:
        """Wait until regency ``code``'s leaf link is (or, with ``linked=False``, is no longer)
        connected to the hub, as the hub's ``/leafz`` reports it (by the server name of the leaf,
        ``r<code>`` unless ``server_name``)."""
        leaf_name = server_name or names.domain(code)

        async def connected() -> bool:
            for server in self.hub_servers:
                if server.process is None:
                    continue
                with_code = [
                    leaf
                    for leaf in (await server.leafz()).get("leafs") or []
                    if leaf.get("name") == leaf_name
                ]
                if with_code:
                    return True
            return False

        await eventually(connected, until=lambda up: up == linked, timeout=timeout)

    def stop(self) -> None:
        """Stop every server (regencies first); the stores stay."""
        for node in self.regencies.values():
            node.server.stop()
        for server in self.hub_servers:
            server.stop()


async def stream_bodies(url: str, stream: str) -> list[tuple[str, dict[str, Any]]]:
    """Every message of ``stream`` (subject, JSON body; ``{}`` for an empty one), in order, read
    with an ordered consumer (``url``: comma-separated servers with credentials)."""
    nc = await nats.connect(url.split(","), connect_timeout=2)
    try:
        js = nc.jetstream(timeout=5)
        expected = (await js.stream_info(stream)).state.messages
        if expected == 0:
            return []
        sub = await js.subscribe(">", stream=stream, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
        found: list[tuple[str, dict[str, Any]]] = []
        while len(found) < expected:
            msg = await sub.next_msg(timeout=5)
            found.append((msg.subject, json.loads(msg.data or b"{}")))
        await sub.unsubscribe()
        return found
    finally:
        await nc.close()


def _server(name: str, config: Path, port: int, monitor_port: int) -> ConfiguredServer:
    return ConfiguredServer(name, config, port, monitor_port, config.parent / f"{name}.log")


def local_federation(codes: Sequence[str], *, cluster: bool = False) -> Federation:
    """The regencies ``codes`` (as ``deploy/federation.toml`` declares them, else by code) with a
    hub on free local ports: one server, or three nodes."""
    base = load_federation(FEDERATION_FILE).with_regencies(codes)
    if not cluster:
        return base.with_hub(Hub(host=HOST, client_port=free_port(), leaf_port=free_port()))
    nodes = tuple(
        HubNode(f"hub-{i}", HOST, client_port=free_port(), leaf_port=free_port(), cluster_port=free_port())
        for i in (1, 2, 3)
    )
    return base.with_hub(
        Hub(host=HOST, client_port=nodes[0].client_port, leaf_port=nodes[0].leaf_port, nodes=nodes)
    )


def start_federation(
    directory: Path,
    codes: Sequence[str] = ("3301", "3302"),
    *,
    cluster: bool = False,
    link_up: bool = True,
) -> RunningFederation:
    """Render and start the hub (``cluster``: three nodes) and a server per regency of ``codes``
    under ``directory``; each regency's link is up unless ``link_up`` is false. The caller stops
    them (:meth:`RunningFederation.stop`), or use :func:`running_federation`."""
    fed = local_federation(codes, cluster=cluster)
    secrets = Secrets.load_or_create(directory / "secrets.json")
    hub_dir = directory / "hub"
    monitor_ports = [free_port() for _ in range(3 if cluster else 1)]
    hub_files = render_hub(
        fed,
        secrets,
        listen_host=HOST,
        store_dir=hub_dir / "store",
        sync_always=False,
        monitor_ports=monitor_ports,
    )
    write_files(hub_dir, hub_files)
    ports = [n.client_port for n in fed.hub.nodes] or [fed.hub.client_port]
    running = RunningFederation(
        fed,
        secrets,
        directory,
        [
            _server(name.removesuffix(".conf"), hub_dir / name, port, monitor)
            for name, port, monitor in zip(sorted(hub_files), ports, monitor_ports, strict=True)
        ],
    )
    try:
        for server in running.hub_servers:
            server.launch()
        for server in running.hub_servers:
            server.wait_listening()
        leaf_addresses = fed.hub.leaf_addresses()
        for code in codes:
            regency_dir = directory / names.domain(code)
            port, monitor = free_port(), free_port()
            files = render_regency(
                fed,
                code,
                secrets,
                listen_host=HOST,
                client_port=port,
                store_dir=regency_dir / "store",
                hub_leaf_urls=leaf_addresses,
                link_up=link_up,
                sync_always=False,
                monitor_port=monitor,
            )
            write_files(regency_dir, files)
            server = _server(names.domain(code), regency_dir / "nats.conf", port, monitor).start()
            running.regencies[code] = RegencyNode(code, regency_dir, server, secrets, fed, leaf_addresses)
    except BaseException:
        running.stop()
        raise
    return running


@contextmanager
def running_federation(
    directory: Path, codes: Sequence[str] = ("3301", "3302"), *, cluster: bool = False, link_up: bool = True
) -> Iterator[RunningFederation]:
    """:func:`start_federation`, stopped on the way out."""
    running = start_federation(directory, codes, cluster=cluster, link_up=link_up)
    try:
        yield running
    finally:
        running.stop()
