"""``pulih federation up``: a national hub and a few regencies on one machine, as they run for real.

Each regency gets what a BNNK runs: its own ``nats-server`` (JetStream domain ``r<code>``, its
accounts ``PULIH``, ``CLINICS`` and ``LINK``, a leaf-node link to the hub) and its own four
services, on ports and data of its own. The hub gets its ``nats-server`` (domain ``national``,
account ``NATIONAL``, a leaf port) with the stream ``NATIONAL`` declared on it, and the national
reporting (the reporting service in national mode) reading it. Every config is rendered from the
federation list (:mod:`pulih.kit.federation.local_config`), with the passwords of
``<data dir>/secrets.json``, so what runs here is what a real deployment renders.

Ports and directories: :mod:`pulih.kit.federation.layout`. Everything is supervised as ``pulih
up`` supervises a regency (:mod:`pulih.kit.federation.supervision`): a process that dies is
started again; Ctrl-C stops it all; the data stays, and a second ``up`` reuses it and the
secrets (and, on the manual clock, starts the clocks where ``demo`` left them). ``<data dir>/lock``
keeps a second ``up`` off data that one runs on. What it prints: :mod:`pulih.kit.federation.output`;
the terminal gets the services' warnings and errors, their logs every line.

While it runs, :mod:`.control` cuts or restores a regency's link and stops or starts the hub
(the supervisor here waits while the hub is held instead of restarting it), and :mod:`.demo`
fills the regencies with a few months of work.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import sys
from datetime import date
from pathlib import Path
from typing import IO

import nats

from pulih.kit.federation import names, national_stream
from pulih.kit.federation.dev_tokens import write_token_files
from pulih.kit.federation.layout import (
    CLOCK_FILE,
    DEFAULT_BASE_PORT,
    DEFAULT_DATA_DIR,
    DEFAULT_FILE,
    HUB_HELD,
    LOCK_FILE,
    NATIONAL_SERVICE,
    Layout,
    layout,
    nats_url,
    write_state,
)
from pulih.kit.federation.local_config import (
    federation_toml,
    listed_federation,
    local_federation,
    render_hub_files,
    render_regency_files,
)
from pulih.kit.federation.output import federation_words, print_up, say
from pulih.kit.federation.render import write_files
from pulih.kit.federation.secrets import Secrets
from pulih.kit.federation.supervision import (
    RenderedServer,
    Running,
    ServerSupervisor,
    service_env,
    start_server,
    start_service,
    wait_all_healthy,
)
from pulih.kit.federation.topology import FederationError
from pulih.kit.local_regency import PidFile, RestartPolicy, development_clock, installed_services
from pulih.kit.nats_server import port_open
from pulih.kit.settings import Settings


async def _declare(lay: Layout, secrets: Secrets, codes: list[str]) -> None:
    url = nats_url(names.HUB_ADMIN_USER, secrets.hub_admin(), lay.hub_client_port)
    nc = await nats.connect(url, connect_timeout=3, max_reconnect_attempts=2)
    try:
        await national_stream.declare_national_streams(nc.jetstream(), codes)
    finally:
        await nc.close()


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Lock ``<data dir>/lock`` for this ``up`` (released when it exits, however it exits); a second
    ``up`` on the same data would run a second set of servers on the same stores, so it is refused."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = (data_dir / LOCK_FILE).open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise FederationError(
            f"a federation already runs in {data_dir} (`pulih federation status` says what): stop it "
            "with Ctrl-C in its terminal, or give this one another --data-dir"
        ) from None
    return lock


def clock_start(settings: Settings, data_dir: Path) -> date | None:
    """Where the manual clocks start: where ``demo`` left them (``<data dir>/clock``), unless the
    federation runs on the system clock or ``PULIH_CLOCK_START`` is given."""
    saved = data_dir / CLOCK_FILE
    if settings.clock != "manual" or settings.clock_start is not None or not saved.exists():
        return None
    try:
        return date.fromisoformat(saved.read_text().strip())
    except ValueError:
        return None


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
    settings = development_clock(settings)  # manual unless PULIH_CLOCK says, as `pulih up`'s
    services = installed_services()
    if NATIONAL_SERVICE not in {s.name for s in services}:
        print("the reporting service is not installed (pip install -e services/reporting)", file=sys.stderr)
        return 1
    lay = layout(data_dir, base_port, codes, services)
    lock = lock_data_dir(lay.data_dir)  # held until the federation stops
    taken = [p for p in lay.ports() if port_open("127.0.0.1", p)]
    if taken:
        raise FederationError(
            f"port(s) {', '.join(map(str, taken))} are taken: stop what runs there (another "
            f"`pulih federation up`?) or choose another --base-port (it uses {lay.base_port} to "
            f"{lay.base_port + 10 * len(codes) + 9})"
        )
    listed, source = listed_federation(federation_file)
    for code in codes:
        if code not in listed.codes:
            say(f"regency {code} is not in {source}: it runs as 'Kabupaten {code}' without clinics")
    fed = local_federation(listed, lay)
    lay.data_dir.mkdir(parents=True, exist_ok=True)
    secrets = Secrets.load_or_create(lay.data_dir / "secrets.json")

    say(f"rendering the configs of the hub and {len(codes)} regencies into {lay.data_dir}")
    write_files(lay.hub_dir, render_hub_files(fed, secrets, lay))
    for place in lay.regencies:
        write_files(place.nats_dir, render_regency_files(fed, secrets, place))
    (lay.data_dir / "federation.toml").write_text(federation_toml(fed))
    write_state(lay, federation_file)
    held = lay.hub_dir / HUB_HELD
    held.unlink(missing_ok=True)  # a new `up` starts the hub
    start = clock_start(settings, lay.data_dir)
    clock: dict[str, str] = {"PULIH_CLOCK": settings.clock}
    if start is not None:
        clock["PULIH_CLOCK_START"] = start.isoformat()
        say(
            f"the manual clocks start on {start}, where `pulih federation demo` left them "
            f"(PULIH_CLOCK_START=<date> starts them elsewhere)"
        )

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
        await start_server(running, hub)
        say(
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
            await start_server(running, server)
            say(
                f"r{place.code}: nats-server on 127.0.0.1:{place.nats_port} (domain r{place.code}), "
                "linked to the hub"
            )

        for place in lay.regencies:
            regency = fed.regency(place.code)
            env = service_env(
                dict(os.environ),
                {
                    "PULIH_REGENCY": place.code,
                    "PULIH_DATA_DIR": str(place.data_dir),
                    "NATS_URL": nats_url(names.SERVICE_USER, secrets.service(place.code), place.nats_port),
                    **{f"PULIH_{name.upper()}_URL": place.url(name) for name in place.ports},
                    **clock,
                },
            )
            (place.data_dir / "logs").mkdir(parents=True, exist_ok=True)
            for service in services:
                await start_service(
                    running, place.data_dir, f"r{place.code}", service, place.ports[service.name], env, policy
                )
            say(f"r{place.code} ({regency.name}): {', '.join(s.name for s in services)} starting")
        if not await wait_all_healthy(running, health_timeout):
            return 0 if stop.is_set() else 1
        # Declared once the regencies' streams exist and their links are up: the hub's sources
        # find them at once (a source that fails retries only after 10 s, then 20 s…); and before
        # the national reporting starts, which reads NATIONAL.
        await _declare(lay, secrets, codes)
        say(
            f"hub: streams {names.NATIONAL_STREAM} (a source per regency: {', '.join(codes)}) "
            f"and {names.NATIONAL_DLQ_STREAM}"
        )
        national = next(s for s in services if s.name == NATIONAL_SERVICE)
        national_env = service_env(
            dict(os.environ),
            {
                "PULIH_REPORTING_MODE": "national",
                "PULIH_DATA_DIR": str(lay.national_dir),
                "NATS_URL": nats_url(names.NATIONAL_USER, secrets.national(), lay.hub_client_port),
                "PULIH_FEDERATION_FILE": str(lay.data_dir / "federation.toml"),
                **clock,
            },
        )
        (lay.national_dir / "logs").mkdir(parents=True, exist_ok=True)
        await start_service(
            running, lay.national_dir, "national", national, lay.national_port, national_env, policy
        )
        say("national: reporting (national mode) starting")
        if not await wait_all_healthy(running, health_timeout, running.services[-1:]):
            return 0 if stop.is_set() else 1
        tokens, tokens_file = write_token_files(settings, lay)
        print_up(fed, lay, tokens, tokens_file, manual_clock=settings.clock == "manual")

        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopper, *running.tasks], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        for task in running.tasks:
            if task in done and (reason := task.result()):
                print(federation_words(reason), file=sys.stderr, flush=True)
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
        lock.close()
        print("stopped.", flush=True)
