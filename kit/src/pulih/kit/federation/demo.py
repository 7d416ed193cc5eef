"""``pulih federation demo``: a few months of work in every regency of a running local federation,
until the national dashboard shows them all.

It drives each regency only through its public APIs, as its facilitators, agents, clinics and
administrator would (the simulator's ``RegencySim``): units and agents in villages of the regency, clients
registered with their consent and screened, enrolled, in sessions, referred to the regency's
clinics, and each service's manual clock moved week by week. Each closed month the regency's
reporting publishes its ``AggregateReported`` (small counts suppressed), which its link carries to
the hub's ``NATIONAL``. The regencies differ in size (:func:`.demo_data.profile`), so the national
view shows published and suppressed cells side by side. Then the national reporting's clock moves
to the month after, and the demo waits until ``/v1/national/regencies`` has every regency's last
month, and says what each published and where the national dashboard is.

It needs ``pulih federation up`` running with ``PULIH_CLOCK=manual`` (it reads the ports from the
data dir) and the same ``PULIH_JWT_SECRET`` (its tokens are signed with it). The same ``--seed``
makes the same people and the same days. It continues where the clocks stand: a second run (or a
run after a restart, when the clocks are back at today) starts in the first month after both the
latest clock and the latest month any regency published, so no closed month is touched again. It
writes the date it leaves the clocks on to ``<data dir>/clock``, where the next ``up`` starts them.

With the hub held (``hub-down``) or a regency's link cut (``link-down``) the regencies still work
their months; the demo then waits only for the regencies whose aggregates can reach the national
view, and says which will arrive after ``hub-up`` or ``link-up``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from pulih.kit.auth import NATIONAL_SCOPE, Role, issue_token
from pulih.kit.federation.demo_data import profile
from pulih.kit.federation.demo_regency import demo_regency
from pulih.kit.federation.layout import CLOCK_FILE, Layout, saved_layout
from pulih.kit.federation.topology import Federation, FederationError, load_federation
from pulih.kit.nats_server import port_open
from pulih.kit.settings import Settings
from pulih.kit.simulate.api import RegencyApi
from pulih.kit.simulate.api import SimulationError as DemoError
from pulih.kit.simulate.engine import first_month
from pulih.kit.simulate.months import next_month, weeks
from pulih.kit.simulate.regency import SETTLE_SECONDS, RegencySim

DEFAULT_MONTHS = 3
DEFAULT_SEED = 11
NATIONAL_TIMEOUT = 180.0
"""How long the demo waits for the national view (a hub that just came back retries its sources
10 s, then 20 s… apart)."""


@dataclass
class Plan:
    """The months the demo fills: ``months`` of them from ``first``."""

    first: date
    months: int

    @property
    def periods(self) -> list[date]:
        """The first day of each month of the demo."""
        found, month = [], self.first
        for _ in range(self.months):
            found.append(month)
            month = next_month(month)
        return found

    @property
    def after(self) -> date:
        """The first day after the demo's last month (where every clock stops)."""
        return next_month(self.periods[-1])


class Screen:
    """The demo's progress: a bar per regency (weeks done) and a spinner for the national view on a
    terminal; a plain line per step otherwise."""

    def __init__(self) -> None:
        self.console = Console(soft_wrap=True)
        self.terminal = self.console.is_terminal
        if not self.terminal:
            self.console.width = 160  # a file or a pipe: the summary's table on one line per regency
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> Screen:
        if self.terminal:
            self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self.terminal:
            self.progress.stop()

    def add(self, key: str, description: str, total: int | None) -> None:
        """A line of progress."""
        self.tasks[key] = self.progress.add_task(description, total=total)
        if not self.terminal:
            self.say(description)

    def update(self, key: str, description: str, *, advance: int = 0, line: bool = False) -> None:
        """Move a line on (``line``: also printed without a terminal)."""
        self.progress.update(self.tasks[key], description=description, advance=advance)
        if line and not self.terminal:
            self.say(description)

    def say(self, text: str) -> None:
        """A line above the bars."""
        self.console.print(text, highlight=False, markup=False)


def _national_admin(secret: str) -> str:
    return issue_token(secret, sub="admin-national-demo", role=Role.ADMIN, regency=NATIONAL_SCOPE)


def _national_reader(secret: str) -> str:
    return issue_token(secret, sub="bnn-demo", role=Role.NATIONAL, regency=NATIONAL_SCOPE)


def check_running(lay: Layout) -> None:
    """:class:`FederationError` unless every server and service of ``lay`` listens."""
    if not (lay.data_dir / "pids").exists():
        raise FederationError(
            f"the federation in {lay.data_dir} is not running: start it in another terminal with "
            "`PULIH_CLOCK=manual pulih federation up` (and the same --data-dir)"
        )
    held = {lay.hub_client_port} if lay.hub_held else set()  # `hub-down`: the regencies go on
    closed = [
        p for p in lay.ports() if p != lay.hub_leaf_port and p not in held and not port_open("127.0.0.1", p)
    ]
    if closed:
        raise FederationError(
            f"the federation in {lay.data_dir} is not (yet) answering on port(s) "
            f"{', '.join(map(str, closed))}: wait until `pulih federation up` says it is up"
        )


async def _national_clock(http: httpx.AsyncClient, lay: Layout, secret: str) -> tuple[date, bool]:
    answer = await http.get(
        f"{lay.national_url}/v1/admin/clock", headers={"Authorization": f"Bearer {_national_admin(secret)}"}
    )
    if answer.status_code == 401:
        raise DemoError(
            "the national reporting refuses the demo's tokens: run the demo with the PULIH_JWT_SECRET "
            "the federation runs with"
        )
    if answer.status_code != 200:
        raise DemoError(f"the national reporting's clock: {answer.status_code} {answer.text}")
    body = answer.json()
    return date.fromisoformat(body["today"]), bool(body["manual"])


async def plan_months(
    apis: list[RegencyApi], lay: Layout, secret: str, months: int, http: httpx.AsyncClient
) -> Plan:
    """Where the demo starts: the first month after every clock's date (that month itself when the
    latest clock is on its 1st) and after every month a regency has published
    (:func:`pulih.kit.simulate.engine.first_month`). Refuses a federation on the system clock."""
    first = await first_month(apis, "`PULIH_CLOCK=manual pulih federation up …` (stop this one with Ctrl-C)")
    _, manual = await _national_clock(http, lay, secret)
    if not manual:
        raise DemoError(
            "the national reporting runs on the system clock: start the federation with "
            "`PULIH_CLOCK=manual pulih federation up …`"
        )
    return Plan(first, months)


async def _run_regency(demo: RegencySim, name: str, plan: Plan, screen: Screen) -> None:
    key = demo.code
    label = f"r{key} {name}"
    await demo.prepare(plan.first)
    screen.update(key, f"{label}: {len(demo.units)} units, {sum(len(u.agents) for u in demo.units)} agents")
    for month in plan.periods:
        period = f"{month:%Y-%m}"
        baseline = await demo.month_baseline(month)
        people = demo.people_of(month)
        for number, (start, end) in enumerate(weeks(month), 1):
            await demo.run_week(month, number, start, end, people)
            screen.update(key, f"{label}: {period} week {number}", advance=1)
        recorded = demo.recorded.get(period, Counter[str]())
        expected = {name: baseline[name] + recorded.get(name, 0) for name in baseline}
        missing = await demo.api.wait_counted(period, expected, SETTLE_SECONDS)
        if missing:
            screen.say(
                f"r{key}: the reporting has not counted all of {period} yet ({missing} of {expected}); "
                "it will publish a revision when it has"
            )
        screen.update(
            key,
            f"{label}: {period} recorded ({recorded.get('clients_screened', 0)} screened, "
            f"{recorded.get('sessions_held', 0)} sessions, {recorded.get('referrals_made', 0)} referrals)",
            line=True,
        )
    await demo.move_to(plan.after)  # the last month closes
    wanted = {f"{m:%Y-%m}" for m in plan.periods}
    deadline = time.monotonic() + SETTLE_SECONDS
    while not wanted <= set(await demo.api.published()):
        if time.monotonic() > deadline:
            raise DemoError(
                f"r{key}'s reporting has not published {', '.join(sorted(wanted))} within "
                f"{SETTLE_SECONDS:g}s; see its log: {demo.api.place.data_dir / 'logs' / 'reporting.log'}"
            )
        await asyncio.sleep(0.3)
    screen.update(key, f"{label}: published {', '.join(sorted(wanted))}", line=True)


async def _wait_national(
    http: httpx.AsyncClient, lay: Layout, secret: str, plan: Plan, screen: Screen, timeout: float
) -> dict[str, dict[str, Any]]:
    """Move the national reporting's clock to the month after the demo; wait until every regency's
    last month is in the national view; the view's regencies by code."""
    today, _ = await _national_clock(http, lay, secret)
    if plan.after > today:
        moved = await http.put(
            f"{lay.national_url}/v1/admin/clock",
            json={"today": str(plan.after)},
            headers={"Authorization": f"Bearer {_national_admin(secret)}"},
        )
        if moved.status_code != 200:
            raise DemoError(f"the national reporting's clock: {moved.status_code} {moved.text}")
    last = f"{plan.periods[-1]:%Y-%m}"
    reader = {"Authorization": f"Bearer {_national_reader(secret)}"}
    if lay.hub_held:
        screen.say(
            "national view: the hub is held, so the demo's months wait in the regencies' streams; they "
            "reach the national view after `pulih federation hub-up` (within about a minute)"
        )
        codes: list[str] = []
    else:
        codes = [p.code for p in lay.regencies if not p.link_cut]
        for place in lay.regencies:
            if place.link_cut:
                screen.say(
                    f"national view: r{place.code}'s link is cut, so its months reach the national view "
                    f"after `pulih federation link-up {place.code}`"
                )
    if codes:
        waiting = f"national view: waiting for {last} of {len(codes)} regencies"
        screen.add("national", waiting, total=len(codes))
    deadline = time.monotonic() + timeout
    while True:
        answer = await http.get(f"{lay.national_url}/v1/national/regencies", headers=reader)
        if answer.status_code != 200:
            raise DemoError(f"the national view: {answer.status_code} {answer.text}")
        by_code = {r["code"]: r for r in answer.json()["regencies"]}
        if not codes:
            return by_code
        arrived = [c for c in codes if (by_code.get(c, {}).get("last_period") or "") >= last]
        screen.progress.update(screen.tasks["national"], completed=len(arrived))
        if len(arrived) == len(codes):
            screen.update("national", f"national view: every regency's {last} has arrived", line=True)
            return by_code
        if time.monotonic() > deadline:
            late = ", ".join(c for c in codes if c not in arrived)
            raise DemoError(
                f"the national view does not have {last} of {late} after {timeout:g}s: is a link cut "
                "(`pulih federation status`) or the hub held? See the hub's log "
                f"{lay.hub_dir / 'nats-server.log'} and {lay.national_dir / 'logs'}/"
            )
        await asyncio.sleep(0.5)


@dataclass
class Cells:
    """One regency's month in the national view: its clients screened (``None`` when the regency
    suppressed it), and how many of its cells are published and how many suppressed."""

    screened: int | None = None
    shown: int = 0
    hidden: int = 0

    def __str__(self) -> str:
        if not self.shown and not self.hidden:
            return "not yet"
        return f"{'hidden' if self.screened is None else self.screened} · {self.shown}/{self.hidden}"


async def _national_figures(
    http: httpx.AsyncClient, lay: Layout, secret: str, plan: Plan
) -> dict[tuple[str, str], Cells]:
    """(regency, period) → its cells of the demo's months in the national view."""
    answer = await http.get(
        f"{lay.national_url}/v1/national/indicators",
        params={"level": "regency", "from": f"{plan.first:%Y-%m}", "to": f"{plan.periods[-1]:%Y-%m}"},
        headers={"Authorization": f"Bearer {_national_reader(secret)}"},
    )
    if answer.status_code != 200:
        raise DemoError(f"the national view's indicators: {answer.status_code} {answer.text}")
    cells: dict[tuple[str, str], Cells] = {}
    for row in answer.json()["rows"]:
        cell = cells.setdefault((row["org_unit"], row["period"]), Cells())
        cell.shown += row["hidden"] == 0
        cell.hidden += row["hidden"]
        if row["indicator"] == "clients_screened" and row["hidden"] == 0:
            cell.screened = row["value"]
    return cells


def _summary(
    screen: Screen,
    fed: Federation,
    lay: Layout,
    plan: Plan,
    demos: list[RegencySim],
    national: dict[str, dict[str, Any]],
    cells: dict[tuple[str, str], Cells],
) -> None:
    table = Table(
        title=f"The demo's months at the national view ({lay.national_url}/)",
        caption="each month: clients screened ('hidden': a small count the regency suppressed) · the "
        "regency's cells published / suppressed; 'not yet': the month has not reached the hub",
    )
    table.add_column("regency")
    table.add_column("province")
    for month in plan.periods:
        table.add_column(f"{month:%Y-%m}", justify="right")
    table.add_column("last month", justify="right")
    for demo in demos:
        code = demo.code
        regency = fed.regency(code)
        row = [f"{code} {regency.name}", regency.province_name]
        for month in plan.periods:
            row.append(str(cells.get((code, f"{month:%Y-%m}"), Cells())))
        row.append(str(national.get(code, {}).get("last_period") or "-"))
        table.add_row(*row)
    screen.console.print(table)
    for demo in demos:
        if demo.refused:
            screen.say(f"r{demo.code}: {len(demo.refused)} clinic answer(s) refused, e.g. {demo.refused[0]}")
    screen.say(
        f"\nThe national dashboard: {lay.national_url}/  (sign in with NATIONAL_TOKEN from "
        f"{lay.data_dir / 'tokens.env'})"
    )
    screen.say(
        f"Each regency's own dashboard is its reporting's / (e.g. {lay.regencies[0].url('reporting')}/ with "
        f"FACILITATOR_TOKEN_{lay.regencies[0].code}). `pulih federation demo` again adds {plan.months} more "
        f"month(s) from {plan.after:%Y-%m}."
    )


async def run_demo(
    settings: Settings,
    *,
    data_dir: Path,
    months: int = DEFAULT_MONTHS,
    seed: int = DEFAULT_SEED,
    national_timeout: float = NATIONAL_TIMEOUT,
) -> int:
    """Fill every regency of the running federation in ``data_dir`` with ``months`` months of work,
    wait for the national view; return the exit code."""
    if not 1 <= months <= 24:
        raise FederationError("--months is from 1 to 24")
    lay = saved_layout(data_dir)
    check_running(lay)
    fed = load_federation(lay.data_dir / "federation.toml")
    secret = settings.jwt_secret.get_secret_value()
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        apis = [RegencyApi(place, secret, http) for place in lay.regencies]
        try:
            plan = await plan_months(apis, lay, secret, months, http)
            demos = [demo_regency(api, fed.regency(api.code), profile(i), seed) for i, api in enumerate(apis)]
            with Screen() as screen:
                screen.say(
                    f"Filling {len(demos)} regencies with {months} month(s) of work, {plan.first:%Y-%m} to "
                    f"{plan.periods[-1]:%Y-%m} (seed {seed}), through their APIs, every clock moving week "
                    "by week."
                )
                for demo in demos:
                    screen.add(demo.code, f"r{demo.code} {fed.regency(demo.code).name}", total=4 * months)
                await asyncio.gather(
                    *(_run_regency(demo, fed.regency(demo.code).name, plan, screen) for demo in demos)
                )
                # where the next `up` starts the clocks (a restart would put them back at today)
                (lay.data_dir / CLOCK_FILE).write_text(f"{plan.after}\n")
                national = await _wait_national(http, lay, secret, plan, screen, national_timeout)
                cells = await _national_figures(http, lay, secret, plan)
            _summary(screen, fed, lay, plan, demos, national, cells)
        except DemoError as exc:
            print(f"pulih federation demo: {exc}", file=sys.stderr)
            return 1
    return 0
