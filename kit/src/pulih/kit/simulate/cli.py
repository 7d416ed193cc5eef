"""``pulih simulate``: months of a living programme in the running regency (``pulih up``), or in
every regency of the running local federation (``--federation``), with a progress bar and, at the
end, the regency's indicators as its reporting API gives them."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from pulih.kit.federation import names
from pulih.kit.federation.demo import check_running
from pulih.kit.federation.layout import DEFAULT_DATA_DIR, Layout, nats_url, saved_layout
from pulih.kit.federation.secrets import Secrets
from pulih.kit.federation.topology import FederationError, load_federation
from pulih.kit.local_regency import installed_services
from pulih.kit.settings import Settings
from pulih.kit.simulate.api import Pace, RegencyApi, ServicePlace, SimulationError
from pulih.kit.simulate.engine import Target, run
from pulih.kit.simulate.national import close_national
from pulih.kit.simulate.scenario import ScenarioError, load_scenario
from pulih.kit.simulate.summary import Summary

DEFAULT_UNITS = 20
DEFAULT_MONTHS = 6
DEFAULT_SEED = 1


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        rate = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: 'max' or commands per second") from None
    if rate <= 0:
        raise argparse.ArgumentTypeError(f"{text}: commands per second are more than 0")
    return rate


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pulih simulate`` to the ``pulih`` parser."""
    simulate = sub.add_parser(
        "simulate", help="months of a living IBM programme in the running regency, through its APIs"
    )
    simulate.set_defaults(pulih_command=run_command)
    simulate.add_argument("--units", type=int, default=DEFAULT_UNITS, help=f"units (default {DEFAULT_UNITS})")
    simulate.add_argument(
        "--months", type=int, default=DEFAULT_MONTHS, help=f"months to fill (default {DEFAULT_MONTHS})"
    )
    simulate.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the same seed, the same counts")
    simulate.add_argument(
        "--speed",
        type=_speed,
        default=None,
        metavar="max|N",
        help="as fast as the services answer (max, the default) or N commands a second",
    )
    simulate.add_argument(
        "--scenario", type=Path, help="a scenario file (copy pulih/kit/simulate/scenario.toml)"
    )
    simulate.add_argument(
        "--federation",
        nargs="?",
        type=Path,
        const=DEFAULT_DATA_DIR,
        metavar="DATA_DIR",
        help=f"every regency of the running local federation (its data dir, default {DEFAULT_DATA_DIR})",
    )
    simulate.add_argument(
        "--url-base", default="http://127.0.0.1", help="where the regency's services answer"
    )
    simulate.add_argument("--data-dir", help="the regency's data dir (default .pulih or PULIH_DATA_DIR)")


RUNNING = "the regency (`pulih up`)"
HOW_TO_START = (
    "stop it (Ctrl-C) and run `pulih up` without PULIH_CLOCK (a development regency's clocks are "
    "manual unless told otherwise), or with PULIH_CLOCK=manual"
)
FEDERATION_RUNNING = "the federation (`pulih federation up`)"
FEDERATION_HOW_TO_START = (
    "stop it (Ctrl-C) and run `pulih federation up` without PULIH_CLOCK, or with PULIH_CLOCK=manual"
)


def _regency_target(settings: Settings, url_base: str, http: httpx.AsyncClient, pace: Pace) -> Target:
    ports = {
        s.name: int(os.environ.get(f"PULIH_{s.name.upper()}_PORT", s.port)) for s in installed_services()
    }
    place = ServicePlace(settings.regency, ports, settings.data_dir, url_base.rstrip("/"))
    secret = settings.jwt_secret.get_secret_value()
    api = RegencyApi(place, secret, http, running=RUNNING, pace=pace)
    return Target(api, f"regency {settings.regency}", settings.nats_url)


def _federation_targets(settings: Settings, lay: Layout, http: httpx.AsyncClient, pace: Pace) -> list[Target]:
    """Every regency of the running federation, followed on its NATS server as its services log in,
    its clinics logging in as their own users (the passwords of the federation's secrets; a regency
    the list gives no clinics has no clinic users: its simulated clinic answers over HTTP)."""
    check_running(lay)
    fed = load_federation(lay.data_dir / "federation.toml")
    secrets = Secrets.load_or_create(lay.data_dir / "secrets.json")
    secret = settings.jwt_secret.get_secret_value()
    targets = []
    for place in lay.regencies:
        regency = fed.regency(place.code)
        api = RegencyApi(place, secret, http, running=FEDERATION_RUNNING, pace=pace)
        url = nats_url(names.SERVICE_USER, secrets.service(place.code), place.nats_port)
        passwords = {clinic: secrets.clinic(place.code, clinic) for clinic in regency.clinics}
        targets.append(Target(api, regency.name, url, regency.clinics, passwords, bool(regency.clinics)))
    return targets


async def simulate(settings: Settings, args: argparse.Namespace, console: Console) -> Summary:
    """Run the simulation the arguments ask for, with a progress bar on ``console``."""
    scenario = load_scenario(args.scenario)
    pace = Pace(args.speed)
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        lay = saved_layout(args.federation) if args.federation is not None else None
        if lay is not None:
            targets = _federation_targets(settings, lay, http, pace)
            how = FEDERATION_HOW_TO_START
        else:
            targets = [_regency_target(settings, args.url_base, http, pace)]
            how = HOW_TO_START
        bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        tasks: dict[str, TaskID] = {
            t.api.code: bars.add_task(f"r{t.api.code} {t.name}", total=4 * args.months) for t in targets
        }

        def progress(code: str, what: str, advance: int) -> None:
            bars.update(tasks[code], description=what, advance=advance)

        console.print(
            f"Simulating {args.months} month(s) of {args.units} unit(s) in {len(targets)} regenc"
            f"{'y' if len(targets) == 1 else 'ies'} (seed {args.seed}), through their APIs, every clock "
            "moving a day at a time.",
            highlight=False,
        )
        with bars:
            summary = await run(
                targets,
                scenario,
                units=args.units,
                months=args.months,
                seed=args.seed,
                progress=progress,
                how_to_start=how,
            )
        if lay is not None:
            with console.status("national view: waiting for the simulated months"):
                await close_national(
                    settings.jwt_secret.get_secret_value(),
                    lay,
                    summary.periods,
                    http,
                    lambda text: console.print(text, highlight=False),
                )
        return summary


def run_command(settings: Settings, args: argparse.Namespace) -> int:
    """``pulih simulate``: the exit code (1 with a message naming what to do when it cannot run)."""
    if not 1 <= args.units <= 99:
        print("pulih simulate: --units is from 1 to 99", file=sys.stderr)
        return 2
    if not 1 <= args.months <= 24:
        print("pulih simulate: --months is from 1 to 24", file=sys.stderr)
        return 2
    console = Console(soft_wrap=False)
    if not console.is_terminal:
        console.width = 200  # a file or a pipe: each table row on one line
    try:
        summary = asyncio.run(simulate(settings, args, console))
    except (SimulationError, ScenarioError, FederationError) as exc:
        print(f"pulih simulate: {exc}", file=sys.stderr)
        return 1
    for table in summary.tables():
        console.print(table)
    for regency in summary.regencies:
        for period, differences in regency.differences().items():
            console.print(f"r{regency.code} {period}: the reporting counts otherwise: {differences}")
    where = (
        "Open each regency's dashboard (its reporting service's /), and the national one with "
        "NATIONAL_TOKEN from the federation's tokens.env."
        if args.federation is not None
        else "Open the dashboard: the reporting service's / (sign in with FACILITATOR_TOKEN from `pulih up`)."
    )
    console.print(
        f"{len(summary.periods)} month(s) simulated in {summary.seconds:.0f} s, "
        f"{summary.periods[0]} to {summary.periods[-1]}. {where}",
        highlight=False,
    )
    return 0
