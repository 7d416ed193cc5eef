"""A federation for benchmarks: the national hub, rendered by ``pulih.kit.federation.render``,
and the regencies' servers, on free local ports, launched in parallel. Also the aggregates a
regency publishes (realistic figures, some suppressed).

The regencies run either as one ``nats-server`` each, from the very configs ``render_regency``
renders (``per_server=1``), or several to a simulation server (``per_server`` > 1): 514
``nats-server`` processes on a 2-core machine measure the machine, not the hub. A simulation
server gives each of its regencies the accounts a regency's server has, renamed apart:
``PULIH_<code>`` (JetStream, the stream ``IBM_<code>``, the service user ``pulih-<code>``) and
``LINK_<code>`` (the mapping and imports :func:`pulih.kit.federation.accounts.link_account`
renders), and one leaf remote per ``LINK_<code>``, logging in to the hub as ``r<code>`` with that
regency's link password. The hub cannot tell the difference: it carries one leaf connection, one
account ``R<code>`` and one ``NATIONAL`` source per regency, as in production.

Not a test helper (``tests/federation_support.py`` is): nothing here asserts; it starts, watches
and stops processes, and says when one died.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from pulih.contracts import CloudEvent, new_event
from pulih.contracts.codes import Indicator, UnitPhase
from pulih.contracts.events import AggregateReported
from pulih.kit.federation import names
from pulih.kit.federation.accounts import conf_value, regency_accounts
from pulih.kit.federation.render import MAX_PAYLOAD, render_hub, render_regency, write_files
from pulih.kit.federation.secrets import Secrets
from pulih.kit.federation.topology import Federation, Hub, HubNode, Regency
from pulih.kit.nats_server import free_port, nats_server_binary, port_open

HOST = "127.0.0.1"
_TAKEN: set[int] = set()


def unused_port() -> int:
    """A free local port that this run has not handed out yet: hundreds of servers are given
    their ports before any of them binds one, so ``free_port`` alone can hand out one twice."""
    while True:
        port = free_port()
        if port not in _TAKEN:
            _TAKEN.add(port)
            return port


def regency_codes(count: int) -> list[str]:
    """``count`` regency codes spread over Indonesia's 38 provinces as Kemendagri numbers them
    (``11`` Aceh … ``96``): 514 gives 13 or 14 per province."""
    provinces = sorted(names.PROVINCES)
    return [f"{provinces[i % len(provinces)]}{1 + i // len(provinces):02d}" for i in range(count)]


def federation(codes: list[str], *, cluster: bool) -> Federation:
    """The regencies ``codes`` and a hub on free local ports (one server, or three nodes)."""
    regencies = tuple(Regency(code, f"Kabupaten {code}") for code in codes)
    if not cluster:
        return Federation(Hub(host=HOST, client_port=unused_port(), leaf_port=unused_port()), regencies)
    nodes = tuple(
        HubNode(
            f"hub-{i}", HOST, client_port=unused_port(), leaf_port=unused_port(), cluster_port=unused_port()
        )
        for i in (1, 2, 3)
    )
    hub = Hub(host=HOST, client_port=nodes[0].client_port, leaf_port=nodes[0].leaf_port, nodes=nodes)
    return Federation(hub, regencies)


@dataclass
class Process:
    """One ``nats-server`` run from a rendered config."""

    name: str
    config: Path
    port: int
    monitor_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_file(self) -> Path:
        return self.config.with_suffix(".log")

    def launch(self) -> None:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [nats_server_binary(), "-c", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_listening(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not port_open(HOST, self.port):
            if not self.alive():
                raise RuntimeError(f"nats-server {self.name} exited; see {self.log_file}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"nats-server {self.name} did not listen on {self.port}")
            time.sleep(0.05)

    def rss_kib(self, field: str = "VmRSS") -> int:
        """Resident memory (``VmRSS``) or its peak (``VmHWM``), in KiB, from /proc."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        """User and system CPU time so far, from /proc."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / 100

    def death(self) -> str:
        """The first panic or fatal line of its log (why it died), or its exit status."""
        for line in self.log_file.read_text(errors="replace").splitlines():
            if line.startswith(("panic:", "fatal error:")) or "[FTL]" in line:
                return line.strip()
        code = self.process.returncode if self.process is not None else None
        return f"exited with status {code}"

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class World:
    """The hub's servers and every regency's server, rendered and launched."""

    fed: Federation
    secrets: Secrets
    hub: list[Process]
    regencies: dict[str, Process]

    def url(self, user: str, password: str) -> list[str]:
        """The hub's client URLs (every node) with these credentials."""
        return [f"nats://{user}:{password}@{address}" for address in self.fed.hub.client_addresses()]

    def hub_admin(self) -> list[str]:
        return self.url(names.HUB_ADMIN_USER, self.secrets.hub_admin())

    def national(self) -> list[str]:
        return self.url(names.NATIONAL_USER, self.secrets.national())

    def service_url(self, code: str) -> str:
        """Regency ``code``'s services' URL (user ``pulih``, or ``pulih-<code>`` on a simulation
        server)."""
        server = self.regencies[code]
        user = names.SERVICE_USER if server.name == names.domain(code) else service_user(code)
        return f"nats://{user}:{self.secrets.service(code)}@{HOST}:{server.port}"

    def regency_servers(self) -> list[Process]:
        """Every regency or simulation server, once each."""
        return list({id(p): p for p in self.regencies.values()}.values())

    def hub_died(self) -> str | None:
        """Why a hub server died, or None while all run."""
        for server in self.hub:
            if not server.alive():
                return f"{server.name}: {server.death()}"
        return None

    def stop(self) -> None:
        for server in [*self.regency_servers(), *self.hub]:
            server.stop()


def start_hub(directory: Path, codes: list[str], *, cluster: bool) -> World:
    """Render and start the hub for ``codes`` (regency servers come later: :func:`start_regencies`)."""
    fed = federation(codes, cluster=cluster)
    secrets = Secrets.load_or_create(directory / "secrets.json")
    hub_dir = directory / "hub"
    monitors = [unused_port() for _ in range(3 if cluster else 1)]
    files = render_hub(
        fed, secrets, listen_host=HOST, store_dir=hub_dir / "store", sync_always=False, monitor_ports=monitors
    )
    write_files(hub_dir, files)
    ports = [int(address.rsplit(":", 1)[1]) for address in fed.hub.client_addresses()]
    hub = [
        Process(name.removesuffix(".conf"), hub_dir / name, port, monitor)
        for name, port, monitor in zip(sorted(files), ports, monitors, strict=True)
    ]
    world = World(fed, secrets, hub, {})
    for server in hub:
        server.launch()
    for server in hub:
        server.wait_listening()
    return world


def start_regencies(world: World, directory: Path, codes: list[str], per_server: int = 1) -> None:
    """Start the servers of the regencies ``codes`` (each link dials every hub node): one rendered
    server per regency, or ``per_server`` regencies to a simulation server
    (:func:`simulation_config`); launched all at once, returns when each listens."""
    leaf_urls = world.fed.hub.leaf_addresses()
    servers = []
    if per_server <= 1:
        for code in codes:
            regency_dir = directory / names.domain(code)
            port = unused_port()
            files = render_regency(
                world.fed,
                code,
                world.secrets,
                listen_host=HOST,
                client_port=port,
                store_dir=regency_dir / "store",
                hub_leaf_urls=leaf_urls,
                sync_always=False,
            )
            write_files(regency_dir, files)
            world.regencies[code] = Process(names.domain(code), regency_dir / "nats.conf", port, 0)
            servers.append(world.regencies[code])
    else:
        for start in range(0, len(codes), per_server):
            chunk = codes[start : start + per_server]
            name = f"sim-{start // per_server + 1:03d}"
            sim_dir = directory / name
            port = unused_port()
            text = simulation_config(world, name, chunk, port=port, store_dir=sim_dir / "store")
            write_files(sim_dir, {"nats.conf": text})
            server = Process(name, sim_dir / "nats.conf", port, 0)
            servers.append(server)
            for code in chunk:
                world.regencies[code] = server
    for server in servers:
        server.launch()
    for server in servers:
        server.wait_listening()


def service_user(code: str) -> str:
    """The service user of regency ``code`` on a simulation server (user names are per server)."""
    return f"{names.SERVICE_USER}-{code}"


def simulated_accounts(code: str, service_password: str) -> dict[str, object]:
    """Regency ``code``'s accounts as rendered (:func:`regency_accounts`: ``PULIH`` with its
    exports to ``LINK``, and ``LINK``), renamed ``PULIH_<code>`` and ``LINK_<code>`` so that many
    regencies share a server; the clinics' account is left out (no clinic runs here)."""
    rendered = regency_accounts(code, service_password, {}, link=True)
    service, link = f"{names.SERVICE_ACCOUNT}_{code}", f"{names.LINK_ACCOUNT}_{code}"
    pulih = dict(cast(dict[str, Any], rendered[names.SERVICE_ACCOUNT]))
    pulih["exports"] = [e for e in pulih["exports"] if e["accounts"] == [names.LINK_ACCOUNT]]
    pulih["users"] = [{"user": service_user(code), "password": service_password}]
    text = json.dumps({service: pulih, link: rendered[names.LINK_ACCOUNT]})
    text = text.replace(f'"{names.LINK_ACCOUNT}"', f'"{link}"').replace(
        f'"{names.SERVICE_ACCOUNT}"', f'"{service}"'
    )
    return dict(json.loads(text))


def simulation_config(world: World, name: str, codes: list[str], *, port: int, store_dir: Path) -> str:
    """A simulation server for the regencies ``codes``: their accounts (:func:`simulated_accounts`)
    and one leaf remote per regency, bound to its ``LINK_<code>``, logging in as ``r<code>``."""
    accounts: dict[str, object] = {}
    remotes = []
    domain = conf_value(name.replace("-", ""))  # any domain but the hub's: the mappings do not use it
    for code in codes:
        accounts.update(simulated_accounts(code, world.secrets.service(code)))
        user, password = names.link_user(code), world.secrets.link(code)
        urls = [f"nats-leaf://{user}:{password}@{a}" for a in world.fed.hub.leaf_addresses()]
        remotes.append({"urls": urls, "account": f"{names.LINK_ACCOUNT}_{code}"})
    return (
        f"# A benchmark's simulation server: regencies {', '.join(codes)}, each in accounts of its own.\n"
        f"server_name: {conf_value(name)}\n"
        f"listen: {conf_value(f'{HOST}:{port}')}\n"
        f"max_payload: {MAX_PAYLOAD}\n"
        f"jetstream {{\n  store_dir: {conf_value(str(store_dir))}\n  domain: {domain}\n}}\n"
        "accounts " + conf_value(accounts) + "\n"
        "leafnodes {\n  remotes = " + conf_value(remotes, 1) + "\n}\n"
    )


def year_of_aggregates(code: str, months: int, seed: int) -> list[CloudEvent[AggregateReported]]:
    """``months`` monthly aggregates of regency ``code`` (from January 2025), each with every
    indicator: counts of a mid-sized regency, those from 1 to 4 suppressed (null) as the
    regency's reporting would send them."""
    rng = random.Random(f"{seed}-{code}")
    scale = rng.uniform(0.3, 3.0)
    found = []
    for i in range(months):
        year, month = 2025 + i // 12, i % 12 + 1
        counts = {name: int(rng.expovariate(1 / (40 * scale))) for name in Indicator}
        indicators: dict[Indicator, int | None] = {
            name: None if 1 <= value < 5 else value for name, value in counts.items()
        }
        phases = {phase: rng.randint(0, int(12 * scale) + 1) for phase in UnitPhase}
        event = AggregateReported(
            regency=code,
            period=f"{year}-{month:02d}",
            generated_at=datetime(year + month // 12, month % 12 + 1, 1, 1, 0, tzinfo=UTC),
            indicators=indicators,
            units_by_phase=phases,
            suppressed_below=5,
        )
        found.append(new_event(event, regency=code))
    return found
