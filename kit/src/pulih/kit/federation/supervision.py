"""The processes of a local federation, supervised as ``pulih up`` supervises a regency
(:mod:`pulih.kit.local_regency`): a rendered ``nats-server`` per regency and for the hub, each
service as its own process; one that dies is started again.

The hub's server can be held (:func:`pulih.kit.federation.control.hold_hub`): while
``hub/held`` exists its supervisor waits instead of restarting it.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pulih.kit import logs
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
        """Wait for the server to exit. A held server is started again here once it is released (not
        by :meth:`run`, which would call that a crash and a restart)."""
        while True:
            code = await super().wait()
            if self.held is None or not self.held.exists():
                return code
            self.pids.set(self.name, None)
            say(f"{self.name} stopped and held ({self.held} exists): `pulih federation hub-up` starts it")
            while self.held.exists() and not self.stop.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            if self.stop.is_set():
                return 0
            try:
                pid = await self.spawn()
            except (RuntimeError, TimeoutError) as exc:
                say(f"{self.name} did not start again: {exc}; see its log: {self.log}")
                return 1
            say(f"{self.name} released and started again (pid {pid})")


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


LOG_LEVEL = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[,.]\d+ +(\S+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def for_terminal(line: str) -> bool:
    """Whether a service's output line is shown in ``up``'s terminal: everything but its INFO and
    DEBUG log lines (a dozen services' every message would bury what matters)."""
    fields = logs.parse_line(line)  # a service's log line (pulih.kit.logs)
    if fields is not None:
        return fields["level"] not in ("INFO", "DEBUG")
    level = LOG_LEVEL.match(ANSI.sub("", line))
    return level is None or level.group(1) not in ("INFO", "DEBUG")


async def _copy_quietly(prefix: str, stream: asyncio.StreamReader, file: TextIO) -> None:
    while line := await stream.readline():
        text = line.decode(errors="replace")
        if for_terminal(text):
            sys.stdout.write(f"{prefix} {text}")
            sys.stdout.flush()
        file.write(text)
        file.flush()


async def _pipe_quietly(prefix: str, stream: asyncio.StreamReader, log: Path) -> None:
    with log.open("a", encoding="utf-8") as file:
        await _copy_quietly(prefix, stream, file)


class QuietServiceSupervisor(ServiceSupervisor):
    """A service whose log gets every line and the terminal only its warnings, errors and tracebacks."""

    async def spawn(self) -> int:
        pid = await super().spawn()
        if self.pipe is not None:  # not started yet: no line has been read
            self.pipe.cancel()
        assert self.process is not None and self.process.stdout is not None
        self.pipe = asyncio.create_task(_pipe_quietly(f"[{self.name}]", self.process.stdout, self.log))
        return pid


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
    supervisor = QuietServiceSupervisor(
        named, port, env, data_dir / "logs" / f"{service.name}.log", policy, running.pids, running.stop
    )
    await supervisor.spawn()
    running.services.append(supervisor)
    running.tasks[asyncio.create_task(supervisor.run())] = supervisor


async def wait_all_healthy(
    running: Running, timeout: float, services: list[ServiceSupervisor] | None = None
) -> bool:
    """Wait for the ``/healthz`` of every service (or of ``services``), saying each one as it
    answers; ``False`` (and why, naming the log) when one does not."""
    by_supervisor = {s: t for t, s in running.tasks.items()}
    waiting = running.services if services is None else services
    total = len(waiting)
    started = time.monotonic()

    async def one(supervisor: ServiceSupervisor) -> tuple[ServiceSupervisor, bool]:
        return supervisor, await _wait_healthy(supervisor, by_supervisor[supervisor], timeout)

    ready = 0
    pending = [asyncio.create_task(one(s)) for s in waiting]
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
        for probe in pending:
            probe.cancel()
