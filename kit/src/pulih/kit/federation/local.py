"""``pulih federation up``: a national hub and a few regencies on one machine, as they run for real.

Each regency gets what a BNNK runs: its own ``nats-server`` (JetStream domain ``r<code>``, its
accounts ``PULIH``, ``CLINICS`` and ``LINK``, a leaf-node link to the hub) and its own four
services, on ports and data of its own. The hub gets its ``nats-server`` (domain ``national``,
account ``NATIONAL``, a leaf port) with the stream ``NATIONAL`` declared on it, and the national
reporting (the reporting service in national mode) reading it. Every config is rendered from the
federation list (:mod:`pulih.kit.federation.render`), with the passwords of
``<data dir>/secrets.json``, so what runs here is what a real deployment renders.

Ports, from ``--base-port B`` (default :data:`DEFAULT_BASE_PORT`): the hub's NATS client port
``B``, its leaf port ``B+1``, the national reporting ``B+2``; regency ``i`` (0-based, in the
order given) its NATS on ``B+10*(i+1)`` and its services on the next ports (outreach ``+1``,
rehab ``+2``, referral ``+3``, reporting ``+4``). Data: ``<data dir>/hub``, ``<data dir>/national``,
``<data dir>/r<code>``; the pids of everything running in ``<data dir>/pids``; logs under each
one's ``logs/``.

Everything is supervised as ``pulih up`` supervises a regency (:mod:`pulih.kit.local_regency`):
a process that dies is started again; Ctrl-C stops it all; the data stays, and a second ``up``
reuses it and the secrets.

While it runs, :mod:`.control` cuts or restores a regency's link and stops or starts the hub
(the supervisor here waits while the hub is held instead of restarting it).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import nats

from pulih.kit.auth import NATIONAL_SCOPE, Role, issue_token
from pulih.kit.federation import names, national_stream, render
from pulih.kit.federation.render import write_files
from pulih.kit.federation.secrets import Secrets
from pulih.kit.federation.topology import Federation, FederationError, Hub, load_federation
from pulih.kit.local_regency import (
    InstalledService,
    NatsSupervisor,
    PidFile,
    RestartPolicy,
    ServiceSupervisor,
    Supervisor,
    _wait_healthy,
    installed_services,
)
from pulih.kit.nats_server import NatsServer, port_open
from pulih.kit.settings import Settings

DEFAULT_BASE_PORT = 15200
DEFAULT_DATA_DIR = Path(".pulih/federation")
DEFAULT_FILE = Path("deploy/federation.toml")
STATE_FILE = "federation.json"
"""``<data dir>/federation.json``: the base port, the regencies and the list of the running
federation, for ``link-down``, ``link-up``, ``hub-down`` and ``hub-up``."""
HUB_HELD = "held"
"""``<data dir>/hub/held``: while it exists the hub's server is kept stopped."""
NATIONAL_SERVICE = "reporting"
"""The service that runs in national mode at the hub."""


@dataclass(frozen=True)
class RegencyPlace:
    """Where one regency runs: its NATS port, its services' ports, its data."""

    code: str
    nats_port: int
    ports: dict[str, int]
    data_dir: Path

    @property
    def nats_dir(self) -> Path:
        """The regency server's directory: its rendered configs, its JetStream store, its log."""
        return self.data_dir / "nats"

    def url(self, service: str) -> str:
        """A service's base URL."""
        return f"http://127.0.0.1:{self.ports[service]}"


@dataclass(frozen=True)
class Layout:
    """Every port and directory of a local federation."""

    data_dir: Path
    base_port: int
    hub_client_port: int
    hub_leaf_port: int
    national_port: int
    regencies: list[RegencyPlace]

    @property
    def hub_dir(self) -> Path:
        """The hub server's directory."""
        return self.data_dir / "hub"

    @property
    def national_dir(self) -> Path:
        """The national reporting's data dir."""
        return self.data_dir / "national"

    @property
    def national_url(self) -> str:
        """The national reporting's base URL (its dashboard at ``/``)."""
        return f"http://127.0.0.1:{self.national_port}"

    def regency(self, code: str) -> RegencyPlace:
        """The place of regency ``code`` (:class:`FederationError` if it is not in this federation)."""
        for place in self.regencies:
            if place.code == code:
                return place
        known = ", ".join(p.code for p in self.regencies)
        raise FederationError(f"regency {code} is not in this local federation (it runs {known})")


def layout(data_dir: Path, base_port: int, codes: list[str], services: list[InstalledService]) -> Layout:
    """The ports and directories of a federation of ``codes`` from ``base_port`` (module doc)."""
    if len(services) > 9:
        raise FederationError("a regency has ten ports: at most nine services")
    data_dir = data_dir.resolve()
    places = [
        RegencyPlace(
            code=code,
            nats_port=base_port + 10 * (i + 1),
            ports={s.name: base_port + 10 * (i + 1) + 1 + j for j, s in enumerate(services)},
            data_dir=data_dir / f"r{code}",
        )
        for i, code in enumerate(codes)
    ]
    return Layout(data_dir, base_port, base_port, base_port + 1, base_port + 2, places)


def parse_codes(text: str) -> list[str]:
    """``3301,3302,7471`` as a list of checked regency codes, each once."""
    codes = [c.strip() for c in text.split(",") if c.strip()]
    if not codes:
        raise FederationError("name at least one regency: --regencies 3301,3302,7471")
    for code in codes:
        try:
            names.check_code(code)
        except ValueError as exc:
            raise FederationError(str(exc)) from None
    if len(set(codes)) != len(codes):
        raise FederationError(f"a regency is named twice in {text}")
    return codes


def nats_url(user: str, password: str, port: int) -> str:
    """A client URL with credentials on the loopback address."""
    return f"nats://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{port}"


class RenderedServer(NatsServer):
    """A ``nats-server`` run from a rendered config. The files it includes were written beside it
    (:func:`write_files`) and stay as they are on a restart: a cut link stays cut."""

    def __init__(self, directory: Path, port: int, config: str) -> None:
        super().__init__(directory, port, log_file=directory / "nats-server.log")
        self.config = config

    def config_text(self) -> str:
        return self.config


class ServerSupervisor(NatsSupervisor):
    """A rendered server, supervised under its own name (``hub/nats-server``, ``r3301/nats-server``).

    With ``held`` given, a server that stopped while that file exists is not started again until
    the file is removed (:func:`pulih.kit.federation.control.hold_hub`)."""

    def __init__(
        self,
        name: str,
        server: NatsServer,
        policy: RestartPolicy,
        pids: PidFile,
        stop: asyncio.Event,
        held: Path | None = None,
    ) -> None:
        super().__init__(server, policy, pids, stop)
        self.name = name
        self.held = held

    async def wait(self) -> int:
        code = await super().wait()
        if self.held is not None and self.held.exists():
            self.pids.set(self.name, None)
            _say(f"{self.name} stopped and held ({self.held} exists): `pulih federation hub-up` starts it")
            while self.held.exists() and not self.stop.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            return 0
        return code


def _federation_words(reason: str) -> str:
    return reason.replace("stopping the regency", "stopping the federation")


def _say(text: str) -> None:
    print(f"[federation] {text}", flush=True)


@dataclass
class Running:
    """What one ``up`` started."""

    stop: asyncio.Event
    pids: PidFile
    servers: list[ServerSupervisor]
    services: list[ServiceSupervisor]
    tasks: dict[asyncio.Task[str | None], Supervisor]


def _service_env(base: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in ("NATS_URL", "DATABASE_URL")}
    env = {k: v for k, v in env.items() if not (k.startswith("PULIH_") and k.endswith(("_PORT", "_URL")))}
    env.update(extra)
    return env


def write_state(lay: Layout, federation_file: Path | None) -> None:
    """``<data dir>/federation.json``: what ``link-down`` and friends need to find their way."""
    state = {
        "base_port": lay.base_port,
        "regencies": [p.code for p in lay.regencies],
        "file": str(federation_file) if federation_file is not None else None,
    }
    (lay.data_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")


async def _declare(lay: Layout, secrets: Secrets, codes: list[str]) -> None:
    url = nats_url(names.HUB_ADMIN_USER, secrets.hub_admin(), lay.hub_client_port)
    nc = await nats.connect(url, connect_timeout=3, max_reconnect_attempts=2)
    try:
        await national_stream.declare_national_streams(nc.jetstream(), codes)
    finally:
        await nc.close()


def development_tokens(settings: Settings, codes: list[str]) -> dict[str, str]:
    """Tokens for trying the APIs by hand: a facilitator and an admin per regency, and a national
    one for the national reporting. Signed with the development secret (or ``PULIH_JWT_SECRET``)."""
    secret = settings.jwt_secret.get_secret_value()
    tokens = {}
    for code in codes:
        tokens[f"FACILITATOR_TOKEN_{code}"] = issue_token(
            secret, sub=f"fasilitator-{code}-dev", role=Role.FACILITATOR, regency=code
        )
        tokens[f"ADMIN_TOKEN_{code}"] = issue_token(
            secret, sub=f"admin-{code}-dev", role=Role.ADMIN, regency=code
        )
    tokens["NATIONAL_TOKEN"] = issue_token(secret, sub="bnn-dev", role=Role.NATIONAL, regency=NATIONAL_SCOPE)
    return tokens


def _write_tokens(path: Path, tokens: dict[str, str]) -> None:
    path.write_text("".join(f"export {k}={v}\n" for k, v in tokens.items()))
    path.chmod(0o600)


def local_federation(listed: Federation, lay: Layout) -> Federation:
    """The federation this machine runs: the regencies of ``lay`` (as the list declares them, or
    by code), the hub on the loopback address and ``lay``'s ports."""
    return listed.with_regencies([p.code for p in lay.regencies]).with_hub(
        Hub(host="127.0.0.1", client_port=lay.hub_client_port, leaf_port=lay.hub_leaf_port)
    )


def federation_toml(fed: Federation) -> str:
    """``fed`` as a federation list (what the national reporting reads as ``PULIH_FEDERATION_FILE``)."""
    hub = fed.hub
    lines = [
        "# The local federation `pulih federation up` runs (written by it; edit deploy/federation.toml)",
        "[hub]",
        f'host = "{hub.host}"',
        f"client_port = {hub.client_port}",
        f"leaf_port = {hub.leaf_port}",
    ]
    for r in fed.regencies:
        clinics = ", ".join(json.dumps(c) for c in r.clinics)
        lines += [
            "",
            "[[regencies]]",
            f'code = "{r.code}"',
            f"name = {json.dumps(r.name)}",
            f"clinics = [{clinics}]",
        ]
    return "\n".join(lines) + "\n"


def _render_hub(fed: Federation, secrets: Secrets, lay: Layout) -> dict[str, str]:
    # a development machine: no TLS on the loopback address, JetStream's default fsync interval
    return render.render_hub(
        fed, secrets, listen_host="127.0.0.1", store_dir=lay.hub_dir / "jetstream", sync_always=False
    )


def _render_regency(fed: Federation, secrets: Secrets, place: RegencyPlace) -> dict[str, str]:
    return render.render_regency(
        fed,
        place.code,
        secrets,
        listen_host="127.0.0.1",
        client_port=place.nats_port,
        store_dir=place.nats_dir / "jetstream",
        sync_always=False,
    )


def _ports(lay: Layout) -> list[int]:
    ports = [lay.hub_client_port, lay.hub_leaf_port, lay.national_port]
    for place in lay.regencies:
        ports += [place.nats_port, *place.ports.values()]
    return ports


def _listed(federation_file: Path | None) -> tuple[Federation, str]:
    """The federation list (or an empty one) and a word on where it came from."""
    if federation_file is None:
        return Federation(), "no federation list"
    return load_federation(federation_file), str(federation_file)


async def run_federation(
    settings: Settings,
    *,
    codes: list[str],
    base_port: int = DEFAULT_BASE_PORT,
    data_dir: Path = DEFAULT_DATA_DIR,
    federation_file: Path | None = DEFAULT_FILE,
    policy: RestartPolicy | None = None,
    health_timeout: float = 240.0,
) -> int:
    """Run a local federation of ``codes`` until interrupted; return the exit code."""
    policy = policy or RestartPolicy()
    services = installed_services()
    if NATIONAL_SERVICE not in {s.name for s in services}:
        print("the reporting service is not installed (pip install -e services/reporting)", file=sys.stderr)
        return 1
    lay = layout(data_dir, base_port, codes, services)
    taken = [p for p in _ports(lay) if port_open("127.0.0.1", p)]
    if taken:
        raise FederationError(
            f"port(s) {', '.join(map(str, taken))} are taken: stop what runs there (another "
            f"`pulih federation up`?) or choose another --base-port (it uses {lay.base_port} to "
            f"{lay.base_port + 10 * len(codes) + 9})"
        )
    listed, source = _listed(federation_file)
    for code in codes:
        if code not in listed.codes:
            _say(f"regency {code} is not in {source}: it runs as 'Kabupaten {code}' without clinics")
    fed = local_federation(listed, lay)
    lay.data_dir.mkdir(parents=True, exist_ok=True)
    secrets = Secrets.load_or_create(lay.data_dir / "secrets.json")

    _say(f"rendering the configs of the hub and {len(codes)} regencies into {lay.data_dir}")
    write_files(lay.hub_dir, _render_hub(fed, secrets, lay))
    for place in lay.regencies:
        write_files(place.nats_dir, _render_regency(fed, secrets, place))
    (lay.data_dir / "federation.toml").write_text(federation_toml(fed))
    write_state(lay, federation_file)
    held = lay.hub_dir / HUB_HELD
    held.unlink(missing_ok=True)  # a new `up` starts the hub

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pids = PidFile(lay.data_dir / "pids")
    running = Running(stop, pids, [], [], {})
    try:
        hub = ServerSupervisor(
            "hub/nats-server",
            RenderedServer(lay.hub_dir, lay.hub_client_port, (lay.hub_dir / "hub.conf").read_text()),
            policy,
            pids,
            stop,
            held=held,
        )
        await _start_server(running, hub)
        _say(
            f"hub: nats-server on 127.0.0.1:{lay.hub_client_port}, leaf port {lay.hub_leaf_port} "
            "(domain national)"
        )
        for place in lay.regencies:
            server = ServerSupervisor(
                f"r{place.code}/nats-server",
                RenderedServer(place.nats_dir, place.nats_port, (place.nats_dir / "nats.conf").read_text()),
                policy,
                pids,
                stop,
            )
            await _start_server(running, server)
            _say(
                f"r{place.code}: nats-server on 127.0.0.1:{place.nats_port} (domain r{place.code}), "
                "linked to the hub"
            )

        for place in lay.regencies:
            regency = fed.regency(place.code)
            env = _service_env(
                dict(os.environ),
                {
                    "PULIH_REGENCY": place.code,
                    "PULIH_DATA_DIR": str(place.data_dir),
                    "NATS_URL": nats_url(names.SERVICE_USER, secrets.service(place.code), place.nats_port),
                    **{f"PULIH_{name.upper()}_URL": place.url(name) for name in place.ports},
                },
            )
            (place.data_dir / "logs").mkdir(parents=True, exist_ok=True)
            for service in services:
                await _start_service(
                    running, place.data_dir, f"r{place.code}", service, place.ports[service.name], env, policy
                )
            _say(f"r{place.code} ({regency.name}): {', '.join(s.name for s in services)} starting")
        national = next(s for s in services if s.name == NATIONAL_SERVICE)
        national_env = _service_env(
            dict(os.environ),
            {
                "PULIH_REPORTING_MODE": "national",
                "PULIH_DATA_DIR": str(lay.national_dir),
                "NATS_URL": nats_url(names.NATIONAL_USER, secrets.national(), lay.hub_client_port),
                "PULIH_FEDERATION_FILE": str(lay.data_dir / "federation.toml"),
            },
        )
        (lay.national_dir / "logs").mkdir(parents=True, exist_ok=True)
        await _start_service(
            running, lay.national_dir, "national", national, lay.national_port, national_env, policy
        )
        _say("national: reporting (national mode) starting")

        if not await _wait_all_healthy(running, health_timeout):
            return 0 if stop.is_set() else 1
        # Declared once the regencies' streams exist and their links are up: the hub's sources
        # find them at once (a source that fails retries only after 10 s, then 20 s…).
        await _declare(lay, secrets, codes)
        _say(
            f"hub: streams {names.NATIONAL_STREAM} (a source per regency: {', '.join(codes)}) "
            f"and {names.NATIONAL_DLQ_STREAM}"
        )
        _print_up(settings, fed, lay)

        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopper, *running.tasks], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        for task in running.tasks:
            if task in done and (reason := task.result()):
                print(
                    _federation_words(reason),
                    file=sys.stderr,
                    flush=True,
                )
                return 1
        return 0
    finally:
        print("stopping…", flush=True)
        stop.set()
        if running.tasks:
            await asyncio.wait(list(running.tasks), timeout=5)
        await asyncio.gather(*(s.shutdown() for s in running.services))
        for server in reversed(running.servers):  # the regencies, then the hub
            await server.shutdown()
        pids.remove()
        print("stopped.", flush=True)


async def _start_server(running: Running, supervisor: ServerSupervisor) -> None:
    try:
        await supervisor.spawn()
    except (RuntimeError, TimeoutError) as exc:
        raise FederationError(
            f"{supervisor.name} did not start: {exc}; see its log: {supervisor.log}"
        ) from None
    running.servers.append(supervisor)
    running.tasks[asyncio.create_task(supervisor.run())] = supervisor


async def _start_service(
    running: Running,
    data_dir: Path,
    prefix: str,
    service: InstalledService,
    port: int,
    env: dict[str, str],
    policy: RestartPolicy,
) -> None:
    named = InstalledService(f"{prefix}/{service.name}", service.app, port)
    supervisor = ServiceSupervisor(
        named, port, env, data_dir / "logs" / f"{service.name}.log", policy, running.pids, running.stop
    )
    await supervisor.spawn()
    running.services.append(supervisor)
    running.tasks[asyncio.create_task(supervisor.run())] = supervisor


async def _wait_all_healthy(running: Running, timeout: float) -> bool:
    """Wait for every service's ``/healthz``, saying each one as it answers; ``False`` (and why,
    naming the log) when one does not."""
    by_supervisor = {s: t for t, s in running.tasks.items()}
    total = len(running.services)
    started = time.monotonic()

    async def one(supervisor: ServiceSupervisor) -> tuple[ServiceSupervisor, bool]:
        return supervisor, await _wait_healthy(supervisor, by_supervisor[supervisor], timeout)

    ready = 0
    pending = [asyncio.create_task(one(s)) for s in running.services]
    try:
        for next_done in asyncio.as_completed(pending):
            supervisor, healthy = await next_done
            task = by_supervisor[supervisor]
            if not healthy:
                if task.done() and (reason := task.result()):
                    print(_federation_words(reason), file=sys.stderr, flush=True)
                elif not running.stop.is_set():
                    print(
                        f"{supervisor.name} did not start; see its log: {supervisor.log}",
                        file=sys.stderr,
                        flush=True,
                    )
                return False
            ready += 1
            _say(
                f"{supervisor.name} answers on {supervisor.url} "
                f"({ready}/{total}, {time.monotonic() - started:.0f}s)"
            )
        return True
    finally:
        for waiting in pending:
            waiting.cancel()


def _print_up(settings: Settings, fed: Federation, lay: Layout) -> None:
    secrets_file = lay.data_dir / "secrets.json"
    tokens = development_tokens(settings, [p.code for p in lay.regencies])
    hub_env = {
        "HUB_NATS_URL": nats_url(
            names.HUB_ADMIN_USER, Secrets.load_or_create(secrets_file).hub_admin(), lay.hub_client_port
        )
    }
    tokens_file = lay.data_dir / "tokens.env"
    _write_tokens(tokens_file, {**tokens, **hub_env})
    for place in lay.regencies:
        own = regency_tokens(settings, place.code)
        _write_tokens(place.data_dir / "tokens.env", own)

    print(
        f"\nPulih federation is up: a national hub and {len(lay.regencies)} regencies "
        f"(data in {lay.data_dir})."
    )
    print(
        f"\n  hub        NATS nats://127.0.0.1:{lay.hub_client_port}   "
        f"(JetStream domain national; leaf port {lay.hub_leaf_port})"
    )
    print(
        f"             user {names.HUB_ADMIN_USER}, its URL with the password: HUB_NATS_URL in {tokens_file}"
    )
    print(
        f"  national   reporting {lay.national_url}   (the national dashboard: sign in with NATIONAL_TOKEN)"
    )
    for place in lay.regencies:
        regency = fed.regency(place.code)
        print(
            f"\n  r{place.code}      {regency.name} ({regency.province_name}): "
            f"NATS nats://127.0.0.1:{place.nats_port} (domain r{place.code})"
        )
        for name in place.ports:
            print(f"             {name:<10} {place.url(name)}")
    print(
        f"\nDevelopment tokens (also in {tokens_file}; each regency's, named as `pulih up` names "
        "them, in <data dir>/r<code>/tokens.env):"
    )
    for key, token in tokens.items():
        print(f"  {key}={token}")
    print(
        f"\nLogs: {lay.hub_dir / 'nats-server.log'}, {lay.national_dir / 'logs'}/, and per regency "
        f"{lay.data_dir}/r<code>/logs/ and r<code>/nats/nats-server.log; pids in {lay.data_dir / 'pids'}."
    )
    print(
        "Cut a regency's link with `pulih federation link-down <code>` (`link-up <code>` restores it); "
        "stop the hub with `pulih federation hub-down` (`hub-up`)."
    )
    print("Ctrl-C stops everything; the data stays for the next `pulih federation up`.\n", flush=True)


def regency_tokens(settings: Settings, code: str) -> dict[str, str]:
    """A regency's development tokens as ``pulih up`` names them (FACILITATOR_TOKEN…)."""
    from pulih.kit.local_regency import development_tokens as regency_development_tokens

    return regency_development_tokens(settings.model_copy(update={"regency": code}))
