"""``pulih up``: a whole regency on one machine, for development and small deployments.

Starts an embedded ``nats-server`` (unless ``NATS_URL`` is set), then every installed service
(the ``pulih.services`` entry points) as its own process, prints each API's address and a
development token per role, and stops everything cleanly on Ctrl-C. Data stays in the data dir.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import httpx

from pulih.kit.auth import Role, issue_token
from pulih.kit.nats_server import NatsServer, port_open
from pulih.kit.settings import DEFAULT_NATS_PORT, Settings


@dataclass(frozen=True)
class InstalledService:
    """A service found through the ``pulih.services`` entry points."""

    name: str
    app: str
    port: int


def installed_services() -> list[InstalledService]:
    """Every Pulih service installed in this environment, in port order."""
    found = []
    for ep in entry_points(group="pulih.services"):
        spec = ep.load()
        found.append(InstalledService(spec.name, f"{ep.module}:app", spec.port))
    return sorted(found, key=lambda s: s.port)


def development_tokens(settings: Settings) -> dict[str, str]:
    """Tokens for trying the APIs by hand; never valid in production (other secret)."""
    secret = settings.jwt_secret.get_secret_value()
    r = settings.regency
    return {
        "FACILITATOR_TOKEN": issue_token(secret, sub="fasilitator-dev", role=Role.FACILITATOR, regency=r),
        "ADMIN_TOKEN": issue_token(secret, sub="admin-dev", role=Role.ADMIN, regency=r),
        "NATIONAL_TOKEN": issue_token(secret, sub="bnn-dev", role=Role.NATIONAL, regency=r),
        "CLINIC_TOKEN": issue_token(
            secret, sub="klinik-dev", role=Role.CLINIC, regency=r, clinic_id="klinik-pratama-demo"
        ),
    }


def _port_override(name: str, default: int) -> int:
    return int(os.environ.get(f"PULIH_{name.upper()}_PORT", default))


async def _pipe(prefix: str, stream: asyncio.StreamReader) -> None:
    while line := await stream.readline():
        sys.stdout.write(f"{prefix} {line.decode(errors='replace')}")
        sys.stdout.flush()


async def _wait_healthy(url: str, process: asyncio.subprocess.Process, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                return False
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    return False


async def run_regency(settings: Settings, *, nats_port: int) -> int:
    """Run the local regency until interrupted; return the exit code."""
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    services = installed_services()
    if not services:
        print("no Pulih services are installed (pip install -e services/outreach)", file=sys.stderr)
        return 1

    nats: NatsServer | None = None
    if "NATS_URL" in os.environ:
        nats_url = os.environ["NATS_URL"]
        print(f"using NATS at {nats_url}")
    else:
        if port_open("127.0.0.1", nats_port):
            print(
                f"port {nats_port} is taken: stop what runs there, set PULIH_NATS_PORT, "
                "or point NATS_URL at an existing server",
                file=sys.stderr,
            )
            return 1
        nats = NatsServer(
            data_dir / "nats",
            nats_port,
            server_name=f"pulih-{settings.regency}",
            domain=f"r{settings.regency}",
        ).start()
        nats_url = nats.url
        print(f"nats-server with JetStream on {nats_url} (store {data_dir / 'nats'})")

    env = {
        **os.environ,
        "NATS_URL": nats_url,
        "PULIH_DATA_DIR": str(data_dir),
        "PULIH_REGENCY": settings.regency,
    }
    processes: list[tuple[InstalledService, asyncio.subprocess.Process]] = []
    pipes: list[asyncio.Task[None]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    urls: dict[str, str] = {}
    try:
        for service in services:
            port = _port_override(service.name, service.port)
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
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "uvicorn",
                service.app,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                env=service_env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # we stop services before NATS, not the terminal
            )
            assert process.stdout is not None
            pipes.append(asyncio.create_task(_pipe(f"[{service.name}]", process.stdout)))
            processes.append((service, process))
            urls[service.name] = f"http://127.0.0.1:{port}"

        for service, process in processes:
            if not await _wait_healthy(urls[service.name], process):
                print(f"{service.name} did not start; see its output above", file=sys.stderr)
                return 1

        tokens = development_tokens(settings)
        tokens_file = data_dir / "tokens.env"
        tokens_file.write_text("".join(f"export {k}={v}\n" for k, v in tokens.items()))
        tokens_file.chmod(0o600)
        print(f"\nPulih regency {settings.regency} is up.")
        for name, url in urls.items():
            print(f"  {name:<10} {url}   (API docs {url}/docs)")
        print(f"\nDevelopment tokens (also in {tokens_file}; `source` it):")
        for key, token in tokens.items():
            print(f"  {key}={token}")
        print("  agent tokens name a unit: pulih token agent --unit <unit_id>")
        print(
            "\nWatch events with `pulih events tail`. Ctrl-C stops everything; data stays.\n",
            flush=True,
        )

        waiters = [asyncio.create_task(p.wait()) for _, p in processes]
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopper, *waiters], return_when=asyncio.FIRST_COMPLETED)
        if stopper not in done:
            print("a service exited; stopping the regency", file=sys.stderr)
            return 1
        return 0
    finally:
        print("stopping…", flush=True)
        for _, process in processes:
            if process.returncode is None:
                process.terminate()
        for _, process in processes:
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
        for task in pipes:
            task.cancel()
        if nats is not None:
            nats.stop()
        print("stopped.", flush=True)


def default_nats_port() -> int:
    """``PULIH_NATS_PORT`` or 14222 (never 4222, which another NATS may hold)."""
    return int(os.environ.get("PULIH_NATS_PORT", DEFAULT_NATS_PORT))


def data_dir_of(settings: Settings) -> Path:
    """The data dir as an absolute path."""
    return settings.data_dir.resolve()
