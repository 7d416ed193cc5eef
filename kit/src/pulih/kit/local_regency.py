"""``pulih up``: a whole regency on one machine, for development and small deployments.

Starts an embedded ``nats-server`` (unless ``NATS_URL`` is set), then every installed service
(the ``pulih.services`` entry points) as its own process, prints each API's address and a
development token per role, and stops everything cleanly on Ctrl-C. Data stays in the data dir.

A development regency (``PULIH_ENV`` not ``production``) runs on a manual clock unless
``PULIH_CLOCK`` says which (:func:`development_clock`): it stands on ``PULIH_CLOCK_START`` (default
today) until an admin moves it, as ``pulih simulate`` does.

It supervises what it started: a service or the embedded NATS server that dies is started again
after a backoff (0.5 s doubling to 10 s), on the same port and with the same data, and the output
says so. It gives up, and stops the regency with a message that names the process and its log,
only when one crashes :attr:`RestartPolicy.max_fast_crashes` times in a row, each time within
:attr:`RestartPolicy.fast_seconds` of its start. The running pids are in ``<data dir>/pids``;
each service's output also goes to ``<data dir>/logs/<service>.log``.

Its own lines and its services' are log lines of :mod:`pulih.kit.logs`: readable in a terminal,
JSON lines when piped (``PULIH_LOG_FORMAT`` decides otherwise); the services always write JSON,
which is what their log files keep. The supervisor stays light: it reads the entry points
without loading them (a service's name, app and port come from its source), checks health with
a bare HTTP request, and has a short-lived child mint the development tokens, so it imports no
web stack, no database and no service.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TextIO

from pulih.kit import logs
from pulih.kit.clock import ManualClock
from pulih.kit.nats_server import NatsServer, port_open
from pulih.kit.revisions import migrations_of, sqlite_store_at_head
from pulih.kit.settings import DEFAULT_NATS_PORT, Settings
from pulih.kit.workers import worker_args

log = logging.getLogger("pulih.up")


@dataclass(frozen=True)
class InstalledService:
    """A service found through the ``pulih.services`` entry points."""

    name: str
    app: str
    port: int


def installed_services() -> list[InstalledService]:
    """Every Pulih service installed in this environment, in port order.

    Each entry point names a module's ``ServiceSpec``; its name and port are read from the
    module's source (:func:`spec_literals`) without importing it, which would load the service's
    whole stack. A spec whose name or port is not written as a literal is loaded instead.
    """
    found = []
    for ep in entry_points(group="pulih.services"):
        literals = spec_literals(ep.module, ep.attr)
        if literals is None:
            spec = ep.load()
            literals = (spec.name, spec.port)
        name, port = literals
        found.append(InstalledService(name, f"{ep.module}:app", port))
    return sorted(found, key=lambda s: s.port)


def spec_literals(module: str, attribute: str) -> tuple[str, int] | None:
    """The ``name`` and ``port`` of ``<attribute> = ServiceSpec(name="…", port=…)`` in the source
    of ``module``, found without importing it; ``None`` if they are not written as literals."""
    found = importlib.util.find_spec(module)
    if found is None or found.origin is None or not found.origin.endswith(".py"):
        return None
    tree = ast.parse(Path(found.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        if not any(isinstance(t, ast.Name) and t.id == attribute for t in node.targets):
            continue
        keywords = {k.arg: k.value for k in node.value.keywords if k.arg is not None}
        name, port = keywords.get("name"), keywords.get("port")
        if (
            isinstance(name, ast.Constant)
            and isinstance(name.value, str)
            and isinstance(port, ast.Constant)
            and isinstance(port.value, int)
        ):
            return name.value, port.value
    return None


def development_tokens(settings: Settings, *, from_secret: bool = False) -> dict[str, str]:
    """Tokens for trying the APIs by hand, signed by the regency's local key pair (created once
    under the data dir), whose JWKS it writes there for the services: ``jwks.json`` holds it and,
    deprecated, the key derived from ``PULIH_JWT_SECRET`` (``pulih simulate``, the demo), with
    which ``from_secret`` signs instead (and writes nothing)."""
    from pulih.kit import dev_keys
    from pulih.kit.auth import Role, issue_token  # the web stack: not in the supervisor (see below)

    secret_key = dev_keys.key_from_secret(settings.jwt_secret.get_secret_value())
    if from_secret:
        secret = secret_key
    else:
        secret = dev_keys.local_key(settings.data_dir)
        dev_keys.write_local_jwks(settings.data_dir, secret_key)
    r = settings.regency
    return {
        "FACILITATOR_TOKEN": issue_token(secret, sub="fasilitator-dev", role=Role.FACILITATOR, regency=r),
        "ADMIN_TOKEN": issue_token(secret, sub="admin-dev", role=Role.ADMIN, regency=r),
        "NATIONAL_TOKEN": issue_token(secret, sub="bnn-dev", role=Role.NATIONAL, regency=r),
        "CLINIC_TOKEN": issue_token(
            secret, sub="klinik-dev", role=Role.CLINIC, regency=r, clinic_id="klinik-pratama-demo"
        ),
    }


def development_clock(settings: Settings) -> Settings:
    """The settings a local regency runs its services with: on a manual clock when it is a
    development one (``PULIH_ENV`` not ``production``) and ``PULIH_CLOCK`` is not set, so that
    ``pulih simulate`` can move it; as they are otherwise."""
    if "PULIH_CLOCK" in os.environ or settings.env == "production":
        return settings
    return settings.model_copy(update={"clock": "manual"})


def clock_words(settings: Settings) -> str:
    """What ``up`` says of the clock its services run on."""
    if settings.clock == "system":
        return "Clock: the system's (PULIH_CLOCK=system); `pulih simulate` will not move it."
    start = ManualClock(settings.clock_start, settings.timezone).today()
    where = "PULIH_CLOCK_START" if settings.clock_start else "today; PULIH_CLOCK_START=<date> for another day"
    return (
        f"Clock: manual, standing on {start} ({where}) until moved: `pulih simulate` moves it through "
        "months of a living programme. PULIH_CLOCK=system runs on the real date."
    )


async def development_tokens_of_child(env: dict[str, str]) -> dict[str, str]:
    """:func:`development_tokens` for the settings of ``env``, minted by a short-lived child
    process, so that the supervisor never loads what signing a token needs."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pulih.kit.local_regency",
        "tokens",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"could not mint the development tokens: {err.decode(errors='replace').strip()}")
    tokens: dict[str, str] = json.loads(out)
    return tokens


CHILD_MEMORY_ENV = {
    "UVICORN_WS": "none",
    "PYTHONNODEBUGRANGES": "1",
}
"""What ``up`` adds to its children's environment for a smaller idle footprint (each measured
with ``./dev bench footprint``; an operator's own value of any of them wins):

- ``UVICORN_WS=none``: no service serves a WebSocket, yet uvicorn's default loads the
  ``websockets`` library into every one (0.6 MB each).
- ``PYTHONNODEBUGRANGES=1``: code objects without the column ranges of each instruction, whose
  only use is the ``^^^^`` under the failing expression in a traceback; line numbers stay
  (0.7 MB each: a service's code objects are some 30 MB).

Not ``MALLOC_ARENA_MAX``: a service runs one thread when idle and two or three after use (the
SQLite driver's), so glibc's per-thread arenas cost nothing measurable (462.6 MB idle, 476 MB
after 40 clients, with it and without).
"""


def child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with :data:`CHILD_MEMORY_ENV` under it: what ``up``'s children start from."""
    return {**CHILD_MEMORY_ENV, **environ}


def _service_env(
    service: InstalledService, services: list[InstalledService], env: dict[str, str]
) -> dict[str, str]:
    """The environment of ``service``: the regency's, its own database if
    ``PULIH_<SERVICE>_DATABASE_URL`` names one, and every service's address."""
    service_env = dict(env)
    own_db = os.environ.get(f"PULIH_{service.name.upper()}_DATABASE_URL")
    if own_db:
        service_env["DATABASE_URL"] = own_db
    else:
        service_env.pop("DATABASE_URL", None)
    service_env.update(
        {
            f"PULIH_{s.name.upper()}_URL": f"http://127.0.0.1:{_port_override(s.name, s.port)}"
            for s in services
        }
    )
    return service_env


async def migrate_stores(envs: dict[str, dict[str, str]]) -> str | None:
    """Bring every service's store to head before it starts, as a deployment's migration step does
    (``python -m pulih.kit.migrate``, a child for the services sharing a ``DATABASE_URL``): the
    services then find their stores at head and never load Alembic. A SQLite store already at head
    is seen without a child. ``None``, or why it failed."""
    by_store: dict[str | None, list[str]] = {}
    for name, service_env in envs.items():
        url = service_env.get("DATABASE_URL")
        scripts = migrations_of(name)
        data_dir = Path(service_env.get("PULIH_DATA_DIR", ".pulih"))
        if url is None and scripts is not None and sqlite_store_at_head(data_dir / f"{name}.db", scripts):
            continue  # the usual restart: nothing to migrate, no child to wait for
        by_store.setdefault(url, []).append(name)
    for names in by_store.values():
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pulih.kit.migrate",
            *names,
            env=envs[names[0]],
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await child.communicate()
        lines = out.decode(errors="replace").strip()
        if child.returncode != 0:
            return lines or f"the migration of {', '.join(names)} failed (exit {child.returncode})"
        for line in lines.splitlines():
            log.info("store of %s", line)
    return None


def _port_override(name: str, default: int) -> int:
    return int(os.environ.get(f"PULIH_{name.upper()}_PORT", default))


@dataclass(frozen=True)
class RestartPolicy:
    """When and how often a dead process is started again."""

    first_delay: float = 0.5
    """Seconds before a restart after a crash that was not fast; doubled for each fast crash in a row."""
    max_delay: float = 10.0
    """The longest wait before a restart."""
    fast_seconds: float = 10.0
    """A crash this soon after the start is a fast crash."""
    max_fast_crashes: int = 5
    """This many fast crashes in a row and the regency stops."""

    def delay(self, fast_crashes: int) -> float:
        """The wait before the next start, after ``fast_crashes`` fast crashes in a row."""
        return min(self.first_delay * 2.0**fast_crashes, self.max_delay)


class PidFile:
    """``<data dir>/pids``: one ``name pid`` line per running process, for operators and tests."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pids: dict[str, int] = {}

    def set(self, name: str, pid: int | None) -> None:
        """Record (or, with ``None``, forget) the pid of ``name``."""
        if pid is None:
            self.pids.pop(name, None)
        else:
            self.pids[name] = pid
        self.path.write_text("".join(f"{n} {p}\n" for n, p in self.pids.items()))

    def remove(self) -> None:
        """Forget every pid (the regency stopped)."""
        self.pids.clear()
        self.path.unlink(missing_ok=True)


class Supervisor:
    """Keeps one process running: starts it, waits for it, and starts it again when it dies."""

    def __init__(
        self, name: str, log: Path, policy: RestartPolicy, pids: PidFile, stop: asyncio.Event
    ) -> None:
        self.name = name
        self.log = log
        self.policy = policy
        self.pids = pids
        self.stop = stop
        self.restarts = 0

    async def spawn(self) -> int:
        """Start the process; return its pid."""
        raise NotImplementedError

    async def wait(self) -> int:
        """Wait until the process exits; return its exit code."""
        raise NotImplementedError

    async def shutdown(self) -> None:
        """Stop the process if it runs."""
        raise NotImplementedError

    async def run(self) -> str | None:
        """Supervise until ``stop`` is set (``None``) or the process keeps crashing (why, as text).

        The process must already have been spawned once.
        """
        fast_crashes = 0
        started = time.monotonic()
        while True:
            exited = asyncio.create_task(self.wait())
            stopping = asyncio.create_task(self.stop.wait())
            await asyncio.wait([exited, stopping], return_when=asyncio.FIRST_COMPLETED)
            if not exited.done():
                exited.cancel()
                return None
            stopping.cancel()
            code = exited.result()
            self.pids.set(self.name, None)
            if self.stop.is_set():
                return None
            ran = time.monotonic() - started
            fast_crashes = fast_crashes + 1 if ran < self.policy.fast_seconds else 0
            if fast_crashes >= self.policy.max_fast_crashes:
                return (
                    f"{self.name} exited (code {code}) {fast_crashes} times in a row, each within "
                    f"{self.policy.fast_seconds:g}s of its start; giving up and stopping the regency. "
                    f"See its log: {self.log}"
                )
            delay = self.policy.delay(fast_crashes)
            self.restarts += 1
            _say(f"{self.name} exited (code {code}); restarting in {delay:.1f}s (restart {self.restarts})")
            try:
                await asyncio.wait_for(self.stop.wait(), delay)
                return None
            except TimeoutError:
                pass
            started = time.monotonic()
            try:
                pid = await self.spawn()
            except Exception as exc:  # a failed start is a crash like any other
                _say(f"{self.name} did not start: {exc}")
                continue
            _say(f"{self.name} restarted (pid {pid})")


class ServiceSupervisor(Supervisor):
    """One service as a ``uvicorn`` process; its output goes to the terminal and to its log."""

    def __init__(
        self,
        service: InstalledService,
        port: int,
        env: dict[str, str],
        log: Path,
        policy: RestartPolicy,
        pids: PidFile,
        stop: asyncio.Event,
        echo: Callable[[str, str], None] | None = None,
    ) -> None:
        super().__init__(service.name, log, policy, pids, stop)
        self.service = service
        self.port = port
        self.env = env
        self.url = f"http://127.0.0.1:{port}"
        self.process: asyncio.subprocess.Process | None = None
        self.pipe: asyncio.Task[None] | None = None
        self.echo = echo or Echo(env.get("PULIH_REGENCY", "")).line
        """Shows one of the service's output lines in the terminal (``(service, line)``)."""

    async def spawn(self) -> int:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "uvicorn",
            self.service.app,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--no-access-log",  # the service writes its own, by route template (pulih.kit.metrics)
            *worker_args(self.env),  # one, unless PostgreSQL and PULIH_WORKERS (pulih.kit.workers)
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # we stop services before NATS, not the terminal
        )
        assert self.process.stdout is not None
        self.pipe = asyncio.create_task(_pipe(self.name, self.process.stdout, self.log, self.echo))
        self.pids.set(self.name, self.process.pid)
        return self.process.pid

    async def wait(self) -> int:
        assert self.process is not None
        code = await self.process.wait()
        if self.pipe is not None:  # the last lines (a traceback) before the restart message
            await asyncio.wait([self.pipe], timeout=2)
        return code

    @property
    def running(self) -> bool:
        """Whether the current process is alive."""
        return self.process is not None and self.process.returncode is None

    async def shutdown(self) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self.pipe is not None:
            self.pipe.cancel()
        self.pids.set(self.name, None)


class NatsSupervisor(Supervisor):
    """The embedded ``nats-server``: restarted on the same port and store dir."""

    def __init__(self, server: NatsServer, policy: RestartPolicy, pids: PidFile, stop: asyncio.Event) -> None:
        super().__init__("nats-server", server.log_file, policy, pids, stop)
        self.server = server

    async def spawn(self) -> int:
        await asyncio.to_thread(self.server.start)
        assert self.server.process is not None
        self.pids.set(self.name, self.server.process.pid)
        return self.server.process.pid

    def adopt(self) -> None:
        """Record the pid of a server started before supervision began."""
        assert self.server.process is not None
        self.pids.set(self.name, self.server.process.pid)

    async def wait(self) -> int:
        # a subprocess.Popen: poll it (a thread blocked in wait() could not be cancelled)
        while (process := self.server.process) is not None and process.poll() is None:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        code = process.returncode if process is not None else 0
        self.server.process = None
        return code

    async def shutdown(self) -> None:
        await asyncio.to_thread(self.server.stop)
        self.pids.set(self.name, None)


def _say(text: str) -> None:
    log.info(text)


class Echo:
    """How ``up`` shows its services' output lines on its stdout: as :func:`pulih.kit.logs.relay_line`
    renders them for the format its own log lines have."""

    def __init__(self, regency: str, stream: TextIO | None = None) -> None:
        self.regency = regency
        self.stream = stream or sys.stdout
        self.format = logs.chosen_format(self.stream)
        self.colour = self.format == "console" and logs.colour_for(self.stream)

    def line(self, service: str, text: str) -> None:
        """Show ``text``, a line ``service`` wrote."""
        self.stream.write(
            logs.relay_line(service, self.regency, text, self.format, colour=self.colour) + "\n"
        )
        self.stream.flush()


async def _pipe(name: str, stream: asyncio.StreamReader, log: Path, echo: Callable[[str, str], None]) -> None:
    with log.open("a", encoding="utf-8") as file:
        await _copy(name, stream, file, echo)


async def _copy(
    name: str, stream: asyncio.StreamReader, file: TextIO, echo: Callable[[str, str], None]
) -> None:
    while line := await stream.readline():
        text = line.decode(errors="replace")
        echo(name, text)
        file.write(text)
        file.flush()


async def _answers_healthz(port: int) -> bool:
    """Whether ``GET /healthz`` on ``127.0.0.1:port`` answers 200 (a bare HTTP/1.1 request: the
    supervisor loads no HTTP client)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1.0)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 1.0)
        return status.split(b" ")[1:2] == [b"200"]
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()


async def _wait_healthy(
    supervisor: ServiceSupervisor, task: asyncio.Task[str | None], timeout: float
) -> bool:
    """Whether the service answers ``/healthz`` before ``timeout`` (restarts allowed meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not task.done():
        if supervisor.running and await _answers_healthz(supervisor.port):
            return True
        await asyncio.sleep(0.2)
    return False


async def run_regency(settings: Settings, *, nats_port: int, policy: RestartPolicy | None = None) -> int:
    """Run the local regency until interrupted; return the exit code."""
    policy = policy or RestartPolicy()
    settings = development_clock(settings)
    logs.configure("up", settings.regency, stream=sys.stdout)
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    services = installed_services()
    if not services:
        log.error("no Pulih services are installed (pip install -e services/outreach)")
        return 1

    stop = asyncio.Event()
    pids = PidFile(data_dir / "pids")
    nats: NatsSupervisor | None = None
    if "NATS_URL" in os.environ:
        nats_url = os.environ["NATS_URL"]
        log.info("using NATS at %s", nats_url)
    else:
        if port_open("127.0.0.1", nats_port):
            log.error(
                "port %s is taken: stop what runs there, set PULIH_NATS_PORT, "
                "or point NATS_URL at an existing server",
                nats_port,
            )
            return 1
        server = NatsServer(
            data_dir / "nats",
            nats_port,
            server_name=f"pulih-{settings.regency}",
            domain=f"r{settings.regency}",
        ).start()
        nats = NatsSupervisor(server, policy, pids, stop)
        nats.adopt()
        nats_url = server.url
        log.info("nats-server with JetStream on %s (store %s)", nats_url, data_dir / "nats")

    env = {
        **child_environment(os.environ),
        "NATS_URL": nats_url,
        "PULIH_DATA_DIR": str(data_dir),
        "PULIH_REGENCY": settings.regency,
        "PULIH_CLOCK": settings.clock,
        "PULIH_LOG_FORMAT": "json",  # what their log files keep; shown here as this process's lines are
    }
    if "PULIH_JWKS_URL" not in os.environ and "PULIH_OIDC_ISSUER" not in os.environ:
        # no provider: the services verify against the JWKS the token minting writes
        env["PULIH_JWKS_URL"] = (data_dir / "jwks.json").resolve().as_uri()
    if settings.clock == "manual":  # every service on the same day, the one `up` names
        env["PULIH_CLOCK_START"] = str(ManualClock(settings.clock_start, settings.timezone).today())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    log_dir = data_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    echo = Echo(settings.regency).line
    supervisors: list[ServiceSupervisor] = []
    tasks: dict[asyncio.Task[str | None], Supervisor] = {}
    try:
        if nats is not None:
            tasks[asyncio.create_task(nats.run())] = nats
        envs = {service.name: _service_env(service, services, env) for service in services}
        if (failed := await migrate_stores(envs)) is not None:
            log.error("%s", failed)
            return 1
        for service in services:
            supervisor = ServiceSupervisor(
                service,
                _port_override(service.name, service.port),
                envs[service.name],
                log_dir / f"{service.name}.log",
                policy,
                pids,
                stop,
                echo,
            )
            pid = await supervisor.spawn()
            _say(f"{service.name} started (pid {pid})")
            supervisors.append(supervisor)
            tasks[asyncio.create_task(supervisor.run())] = supervisor

        minting = asyncio.create_task(development_tokens_of_child(env))
        by_supervisor = {s: t for t, s in tasks.items()}
        for supervisor in supervisors:
            task = by_supervisor[supervisor]
            if not await _wait_healthy(supervisor, task, timeout=60.0):
                if task.done() and task.result():
                    log.error("%s", task.result())
                elif not stop.is_set():
                    log.error("%s did not start; see its log: %s", supervisor.name, supervisor.log)
                minting.cancel()
                return 0 if stop.is_set() else 1

        try:
            tokens = await minting
        except RuntimeError as exc:
            log.error("%s", exc)
            return 1
        tokens_file = data_dir / "tokens.env"
        tokens_file.write_text("".join(f"export {k}={v}\n" for k, v in tokens.items()))
        tokens_file.chmod(0o600)
        print(f"\nPulih regency {settings.regency} is up.")
        for supervisor in supervisors:
            print(f"  {supervisor.name:<10} {supervisor.url}   (API docs {supervisor.url}/docs)")
        print(f"\nDevelopment tokens (also in {tokens_file}; `source` it):")
        for key, token in tokens.items():
            print(f"  {key}={token}")
        print("  agent tokens name a unit: pulih token agent --unit <unit_id>")
        print(f"\n{clock_words(settings)}")
        print(
            "\nWatch events with `pulih events tail`. Ctrl-C stops everything; data stays.\n",
            flush=True,
        )

        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        for task in tasks:
            if task in done and (reason := task.result()):
                log.error("%s", reason)
                return 1
        return 0
    finally:
        print("stopping…", flush=True)
        stop.set()  # no more restarts
        if tasks:
            await asyncio.wait(list(tasks), timeout=5)
        await asyncio.gather(*(s.shutdown() for s in supervisors))
        if nats is not None:
            await nats.shutdown()
        pids.remove()
        print("stopped.", flush=True)


def default_nats_port() -> int:
    """``PULIH_NATS_PORT`` or 14222 (never 4222, which another NATS may hold)."""
    return int(os.environ.get("PULIH_NATS_PORT", DEFAULT_NATS_PORT))


def data_dir_of(settings: Settings) -> Path:
    """The data dir as an absolute path."""
    return settings.data_dir.resolve()


if __name__ == "__main__":  # the child of development_tokens_of_child
    if sys.argv[1:] != ["tokens"]:
        sys.exit("usage: python -m pulih.kit.local_regency tokens")
    print(json.dumps(development_tokens(Settings())))
