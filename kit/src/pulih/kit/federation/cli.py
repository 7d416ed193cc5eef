"""``pulih federation …``: render the federation's configs, declare the national stream, and run
a local federation.

- ``render --file deploy/federation.toml --out DIR [--secrets FILE]``: every server's config,
  ``DIR/hub/`` (``hub.conf``, or ``hub-1.conf``… for a cluster) and ``DIR/r<code>/`` (``nats.conf``,
  ``accounts.conf``, ``link.conf``), with the passwords of ``--secrets`` (made where missing).
- ``declare --hub-url nats://hub:<password>@hub:4222 [--replicas N]``: the streams ``NATIONAL``
  (a source per regency of the list) and ``NATIONAL_DLQ`` on the hub; again after adding a
  regency (existing sources are kept).
- ``up --regencies 3301,3302,7471 [--base-port 15200] [--data-dir .pulih/federation]``: a hub and
  those regencies on this machine (:mod:`pulih.kit.federation.local`).
- ``demo [--months 3] [--seed 11]``: a few months of work in every regency of the running
  federation (started with ``PULIH_CLOCK=manual``), through their APIs, until the national view
  has them all (:mod:`pulih.kit.federation.demo`).
- ``link-down <code>`` / ``link-up <code>``: cut or restore a running regency's link to the hub;
  ``hub-down`` / ``hub-up``: stop the running hub and start it again; ``status``: what runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import nats

from pulih.kit.federation import control, local, national_stream
from pulih.kit.federation import render as rendering
from pulih.kit.federation.layout import DEFAULT_BASE_PORT, DEFAULT_DATA_DIR, DEFAULT_FILE, parse_codes
from pulih.kit.federation.secrets import Secrets
from pulih.kit.federation.topology import FederationError, load_federation
from pulih.kit.messaging import nats_servers
from pulih.kit.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pulih federation`` and its commands to the ``pulih`` parser."""
    federation = sub.add_parser("federation", help="the national federation: render, declare, a local one")
    federation.set_defaults(pulih_command=run)
    commands = federation.add_subparsers(dest="federation_command", required=True)

    render = commands.add_parser("render", help="render every server's NATS config from the federation list")
    render.add_argument(
        "--file", type=Path, default=DEFAULT_FILE, help=f"the federation list (default {DEFAULT_FILE})"
    )
    render.add_argument("--out", type=Path, required=True, help="where to write hub/ and r<code>/")
    render.add_argument(
        "--secrets", type=Path, help="the passwords, JSON (default <out>/secrets.json; missing ones are made)"
    )
    render.add_argument(
        "--no-tls", action="store_true", help="no TLS blocks (a test bench; never across the internet)"
    )

    declare = commands.add_parser("declare", help="declare NATIONAL and NATIONAL_DLQ on the hub (idempotent)")
    declare.add_argument(
        "--file", type=Path, default=DEFAULT_FILE, help=f"the federation list (default {DEFAULT_FILE})"
    )
    declare.add_argument(
        "--hub-url", required=True, help="the hub as its administrator: nats://hub:<password>@host:4222"
    )
    declare.add_argument(
        "--replicas", type=int, choices=(1, 3), help="copies of each stream (default: 3 for a cluster)"
    )

    up = commands.add_parser("up", help="run a national hub and a few regencies on this machine")
    up.add_argument(
        "--regencies",
        default="3301,3302,7471",
        help="regency codes, comma-separated (default 3301,3302,7471)",
    )
    up.add_argument(
        "--base-port",
        type=int,
        default=DEFAULT_BASE_PORT,
        help=f"the first port (default {DEFAULT_BASE_PORT})",
    )
    _data_dir(up)
    up.add_argument(
        "--file",
        type=Path,
        default=DEFAULT_FILE,
        help=f"the federation list to take names and clinics from (default {DEFAULT_FILE})",
    )

    demo = commands.add_parser(
        "demo", help="a few months of work in every regency of the running (manual-clock) federation"
    )
    demo.add_argument(
        "--months", type=int, default=3, help="closed months each regency publishes (default 3)"
    )
    demo.add_argument("--seed", type=int, default=11, help="the same seed makes the same people (default 11)")
    _data_dir(demo)

    for name, what in (("link-down", "cut"), ("link-up", "restore")):
        link = commands.add_parser(name, help=f"{what} a running regency's link to the hub")
        link.add_argument("code", help="the regency's code, e.g. 3301")
        _data_dir(link)
    for name, what in (
        ("hub-down", "stop the running hub and keep it stopped"),
        ("hub-up", "start the hub again"),
    ):
        _data_dir(commands.add_parser(name, help=what))
    _data_dir(commands.add_parser("status", help="what of the local federation runs"))


def _data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        dest="federation_dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"the local federation's data (default {DEFAULT_DATA_DIR})",
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run one ``pulih federation`` command; return the exit code."""
    try:
        command = args.federation_command
        if command == "render":
            return render(args.file, args.out, args.secrets, tls=not args.no_tls)
        if command == "declare":
            return asyncio.run(declare(args.file, args.hub_url, args.replicas))
        if command == "up":
            file = args.file if args.file.exists() or args.file != DEFAULT_FILE else None
            if args.file != DEFAULT_FILE and not args.file.exists():
                raise FederationError(f"no federation list at {args.file}")
            return asyncio.run(
                local.run_federation(
                    settings,
                    codes=parse_codes(args.regencies),
                    base_port=args.base_port,
                    data_dir=args.federation_dir,
                    federation_file=file,
                )
            )
        if command == "demo":
            from pulih.kit.federation import demo as demo_run  # rich, from the reporting service

            return asyncio.run(
                demo_run.run_demo(settings, data_dir=args.federation_dir, months=args.months, seed=args.seed)
            )
        if command in ("link-down", "link-up"):
            print(control.set_link(args.federation_dir, args.code, up=command == "link-up"))
            return 0
        if command == "hub-down":
            print(control.hold_hub(args.federation_dir))
            return 0
        if command == "hub-up":
            print(control.release_hub(args.federation_dir))
            return 0
        if command == "status":
            print(control.status(args.federation_dir))
            return 0
    except FederationError as exc:
        print(f"pulih federation: {exc}", file=sys.stderr)
        return 1
    return 2


def render(file: Path, out: Path, secrets_file: Path | None, *, tls: bool = True) -> int:
    """Render every server's config of the list ``file`` into ``out`` (with ``tls``, the
    certificates where deploy/README.md installs them)."""
    fed = load_federation(file)
    secrets = Secrets.load_or_create(secrets_file or out / "secrets.json")
    hub_dir = out / "hub"
    hub_files = rendering.render_hub(fed, secrets, tls=rendering.DEPLOYED_HUB_TLS if tls else None)
    rendering.write_files(hub_dir, hub_files)
    print(f"hub: {', '.join(sorted(hub_files))} in {hub_dir}")
    for regency in fed.regencies:
        directory = out / f"r{regency.code}"
        files = rendering.render_regency(
            fed, regency.code, secrets, tls=rendering.DEPLOYED_REGENCY_TLS if tls else None
        )
        rendering.write_files(directory, files)
        print(f"r{regency.code} ({regency.name}): {', '.join(sorted(files))} in {directory}")
    print(f"passwords in {secrets.path} (keep it secret: each server needs only its own)")
    return 0


async def declare(file: Path, hub_url: str, replicas: int | None) -> int:
    """Declare the national streams for every regency of the list ``file`` on the hub."""
    fed = load_federation(file)
    nc = await nats.connect(nats_servers(hub_url), connect_timeout=5, max_reconnect_attempts=2)
    try:
        await national_stream.declare_national_streams(
            nc.jetstream(), fed.codes, replicas=replicas or fed.hub.replicas
        )
    finally:
        await nc.close()
    print(f"NATIONAL sources {len(fed.codes)} regencies ({', '.join(fed.codes)}); NATIONAL_DLQ declared")
    return 0
