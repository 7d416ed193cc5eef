"""The processes of a local federation, supervised as ``pulih up`` supervises a regency
(:mod:`pulih.kit.local_regency`): a rendered ``nats-server`` per regency and for the hub, each
service as its own process; one that dies is started again.

The hub's server can be held (:func:`pulih.kit.federation.control.hold_hub`): while
``hub/held`` exists its supervisor waits instead of restarting it.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pulih.kit.federation.output import federation_words, say
from pulih.kit.federation.topology import FederationError
from pulih.kit.local_regency import (
    InstalledService,
    NatsSupervisor,
    PidFile,
    RestartPolicy,
    ServiceSupervisor,
    Supervisor,
    _wait_healthy,
)
from pulih.kit.nats_server import NatsServer


class RenderedServer(NatsServer):
    """A ``nats-server`` run from a rendered config. The files it includes were written beside it
    (:func:`pulih.kit.federation.render.write_files`) and stay as they are on a restart: a cut
    link stays cut."""

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
            say(f"{self.name} stopped and held ({self.held} exists): `pulih federation hub-up` starts it")
            while self.held.exists() and not self.stop.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            return 0
        return code


@dataclass
class Running:
    """What one ``up`` started."""

    stop: asyncio.Event
    pids: PidFile
    servers: list[ServerSupervisor]
    services: list[ServiceSupervisor]
    tasks: dict[asyncio.Task[str | None], Supervisor]


def service_env(base: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    """``base`` (the caller's environment) without its NATS, database, ports and URLs, plus ``extra``."""
    env = {k: v for k, v in base.items() if k not in ("NATS_URL", "DATABASE_URL")}
    env = {k: v for k, v in env.items() if not (k.startswith("PULIH_") and k.endswith(("_PORT", "_URL")))}
    env.update(extra)
    return env


async def start_server(running: Running, supervisor: ServerSupervisor) -> None:
    """Start a server and supervise it (:class:`FederationError`, naming its log, if it does not start)."""
    try:
        await supervisor.spawn()
    except (RuntimeError, TimeoutError) as exc:
        raise FederationError(
            f"{supervisor.name} did not start: {exc}; see its log: {supervisor.log}"
        ) from None
    running.servers.append(supervisor)
    running.tasks[asyncio.create_task(supervisor.run())] = supervisor


async def start_service(
    running: Running,
    data_dir: Path,
    prefix: str,
    service: InstalledService,
    port: int,
    env: dict[str, str],
    policy: RestartPolicy,
) -> None:
    """Start a service as ``<prefix>/<name>`` on ``port``, its log in ``data_dir/logs``, and supervise it."""
    named = InstalledService(f"{prefix}/{service.name}", service.app, port)
    supervisor = ServiceSupervisor(
        named, port, env, data_dir / "logs" / f"{service.name}.log", policy, running.pids, running.stop
    )
    await supervisor.spawn()
    running.services.append(supervisor)
    running.tasks[asyncio.create_task(supervisor.run())] = supervisor


async def wait_all_healthy(running: Running, timeout: float) -> bool:
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
                    print(federation_words(reason), file=sys.stderr, flush=True)
                elif not running.stop.is_set():
                    print(
                        f"{supervisor.name} did not start; see its log: {supervisor.log}",
                        file=sys.stderr,
                        flush=True,
                    )
                return False
            ready += 1
            say(
                f"{supervisor.name} answers on {supervisor.url} "
                f"({ready}/{total}, {time.monotonic() - started:.0f}s)"
            )
        return True
    finally:
        for waiting in pending:
            waiting.cancel()
