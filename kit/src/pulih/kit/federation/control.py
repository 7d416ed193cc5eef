"""Control of a running local federation (``pulih federation link-down|link-up|hub-down|hub-up|status``).

Each command finds the federation by its data dir: ``federation.json`` (the base port and the
regencies ``up`` runs), ``pids`` (what runs), and the rendered files. Cutting a link renders the
regency's ``link.conf`` without the remote and has its ``nats-server`` reload (SIGHUP);
restoring it renders the remote back. Holding the hub writes ``hub/held`` and stops the hub's
server, which the supervisor of ``up`` then leaves stopped until the file is gone.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from pulih.kit.federation import render
from pulih.kit.federation.layout import HUB_HELD, read_state, saved_layout
from pulih.kit.federation.render import write_files
from pulih.kit.federation.secrets import Secrets
from pulih.kit.federation.topology import FederationError, load_federation
from pulih.kit.nats_server import port_open

__all__ = ["hold_hub", "read_state", "release_hub", "running_pid", "set_link", "status"]


def running_pid(data_dir: Path, name: str) -> int:
    """The pid of ``name`` (``r3301/nats-server``…) in the running federation's pids file, if alive."""
    pids = data_dir.resolve() / "pids"
    if not pids.exists():
        raise FederationError(f"the federation in {data_dir.resolve()} is not running (no {pids})")
    for line in pids.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == name:
            pid = int(parts[1])
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            return pid
    raise FederationError(f"{name} is not running in the federation in {data_dir.resolve()} (see {pids})")


def set_link(data_dir: Path, code: str, *, up: bool) -> str:
    """Cut (``up=False``) or restore a running regency's link to the hub: render its ``link.conf``
    and have its server reload it. Returns what was done."""
    lay = saved_layout(data_dir)
    place = lay.regency(code)
    pid = running_pid(data_dir, f"r{code}/nats-server")
    fed = load_federation(lay.data_dir / "federation.toml")
    secrets = Secrets.load_or_create(lay.data_dir / "secrets.json")
    link = place.nats_dir / "link.conf"
    was = "cut" if place.link_cut else "up"
    if was == ("up" if up else "cut"):
        return f"r{code}: the link to the hub is already {was} (nothing to do)"
    write_files(place.nats_dir, {"link.conf": render.render_link(fed, code, secrets, up=up)})
    os.kill(pid, signal.SIGHUP)
    if up:
        return (
            f"r{code}: link to the hub restored ({link} rendered, nats-server pid {pid} reloaded); "
            "the hub's NATIONAL catches up with what it missed"
        )
    return (
        f"r{code}: link to the hub cut ({link} emptied, nats-server pid {pid} reloaded); the regency "
        f"keeps working, its aggregates wait in IBM_{code}. `pulih federation link-up {code}` restores it"
    )


def hold_hub(data_dir: Path, timeout: float = 15.0) -> str:
    """Stop the running federation's hub server and keep it stopped until :func:`release_hub`."""
    state = read_state(data_dir)
    port = int(state["base_port"])  # type: ignore[call-overload]
    held = data_dir.resolve() / "hub" / HUB_HELD
    if held.exists() and (data_dir.resolve() / "pids").exists():
        return "the hub is already held (nothing to do): `pulih federation hub-up` starts it"
    pid = running_pid(data_dir, "hub/nats-server")
    held.write_text("held by `pulih federation hub-down`\n")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while port_open("127.0.0.1", port):
        if time.monotonic() > deadline:
            raise FederationError(f"the hub (pid {pid}) still listens on {port} after {timeout:g}s")
        time.sleep(0.1)
    return (
        f"hub stopped (pid {pid}) and held: the regencies keep working, their aggregates wait in their "
        "streams. `pulih federation hub-up` starts it again"
    )


def release_hub(data_dir: Path, timeout: float = 30.0) -> str:
    """Let the supervisor start the hub again (after :func:`hold_hub`); wait until it listens."""
    state = read_state(data_dir)
    port = int(state["base_port"])  # type: ignore[call-overload]
    pids = data_dir.resolve() / "pids"
    if not pids.exists():
        raise FederationError(f"the federation in {data_dir.resolve()} is not running (no {pids})")
    held = data_dir.resolve() / "hub" / HUB_HELD
    if not held.exists():
        return "the hub is not held (nothing to do)"
    held.unlink()
    deadline = time.monotonic() + timeout
    while not port_open("127.0.0.1", port):
        if time.monotonic() > deadline:
            log = data_dir.resolve() / "hub" / "nats-server.log"
            raise FederationError(f"the hub did not start within {timeout:g}s; see its log: {log}")
        time.sleep(0.1)
    return f"hub started again on 127.0.0.1:{port}: NATIONAL catches up with every regency"


def status(data_dir: Path) -> str:
    """What of the local federation in ``data_dir`` runs: each process with its pid, each
    regency's link, whether the hub is held."""
    state = read_state(data_dir)
    lay = saved_layout(data_dir)
    root = data_dir.resolve()
    pids = root / "pids"
    running: dict[str, int] = {}
    if pids.exists():
        for line in pids.read_text().splitlines():
            name, _, pid = line.partition(" ")
            try:
                os.kill(int(pid), 0)
            except (ProcessLookupError, ValueError):
                continue
            running[name] = int(pid)
    if not running:
        return f"the federation in {root} is not running (`pulih federation up` starts it)"
    lines = [f"federation in {root}, base port {state['base_port']}:"]
    lines += [f"  {name:<22} pid {pid}" for name, pid in running.items()]
    if (root / "hub" / HUB_HELD).exists():
        lines.append("  the hub is held (`pulih federation hub-up` starts it)")
    for place in lay.regencies:
        link = f"cut (`pulih federation link-up {place.code}`)" if place.link_cut else "up"
        lines.append(f"  r{place.code} link: {link}")
    return "\n".join(lines)
