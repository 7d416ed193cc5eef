"""The simulation's driver: the months to fill, every regency's weeks on its manual clocks, and
the summary in the reporting API's terms.

It starts in the first month after every service's clock date (that month itself when the latest
clock is on its 1st) and after every month a regency has already published, so a second run
continues where the first stopped and never touches a closed month. It refuses to move a clock
that is not manual: against a real deployment it would fake time.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date

from pulih.kit.simulate.api import RegencyApi, SimulationError
from pulih.kit.simulate.clinic import ClinicAccess, SimulatedClinics
from pulih.kit.simulate.months import next_month, weeks
from pulih.kit.simulate.regency import SETTLE_SECONDS, RegencySim
from pulih.kit.simulate.scenario import Scenario
from pulih.kit.simulate.summary import RegencySummary, Summary

SETTLE_READ_SECONDS = 1.5
"""How long the figures must stand still to be the run's."""
Progress = Callable[[str, str, int], None]
"""``progress(regency code, what it is doing, weeks done since the last call)``."""


@dataclass(frozen=True)
class Target:
    """A regency to simulate: its APIs, its name, its clinics, and its NATS server (where the
    simulated clinics answer referrals; ``None``: they answer over HTTP)."""

    api: RegencyApi
    name: str
    clinics: tuple[str, ...] = ()
    nats_url: str | None = None

    @property
    def clinic_ids(self) -> list[str]:
        """The regency's clinics (a ``klinik-pratama-<code>`` when it names none)."""
        return list(self.clinics) or [f"klinik-pratama-{self.api.code}"]


async def first_month(apis: list[RegencyApi], how_to_start: str) -> date:
    """The first month to fill (module doc); :class:`SimulationError` when a service runs on the
    system clock (``how_to_start`` says how to start it on a manual one)."""
    latest = date.min
    last_published = ""
    for api in apis:
        for service in api.place.ports:
            today, manual = await api.clock(service)
            if not manual:
                raise SimulationError(
                    f"r{api.code} {service} ({api.place.url(service)}) runs on the system clock, so the "
                    "simulator will not move time: on a real deployment that would fake dates. Start "
                    f"the regency on a manual clock: {how_to_start}"
                )
            latest = max(latest, today)
        last_published = max([last_published, *(await api.published())])
    first = latest.replace(day=1) if latest.day == 1 else next_month(latest)
    if last_published:
        first = max(first, next_month(date.fromisoformat(f"{last_published}-01")))
    return first


def months_from(first: date, months: int) -> list[date]:
    """The first day of ``months`` months from ``first``."""
    found, month = [], first
    for _ in range(months):
        found.append(month)
        month = next_month(month)
    return found


async def simulate_regency(
    sim: RegencySim, name: str, periods: list[date], progress: Progress
) -> RegencySummary:
    """Fill ``periods`` of one regency, close them, wait until its reporting has published them,
    and read its figures."""
    code = sim.code
    await sim.prepare(periods[0])
    agents = sum(len(u.agents) for u in sim.units)
    progress(code, f"r{code} {name}: {len(sim.units)} units, {agents} agents", 0)
    for month in periods:
        period = f"{month:%Y-%m}"
        baseline = await sim.month_baseline(month)
        people = sim.people_of(month)
        for number, (start, end) in enumerate(weeks(month), 1):
            await sim.run_week(month, number, start, end, people)
            progress(code, f"r{code} {name}: {period} week {number}", 1)
        recorded = sim.recorded.get(period, Counter[str]())
        expected = {k: baseline[k] + recorded.get(k, 0) for k in baseline}
        await sim.api.wait_counted(period, expected, SETTLE_SECONDS)
    await sim.move_to(next_month(periods[-1]))  # the last month closes
    wanted = {f"{m:%Y-%m}" for m in periods}
    progress(code, f"r{code} {name}: closing {', '.join(sorted(wanted))}", 0)
    deadline = time.monotonic() + SETTLE_SECONDS
    while not wanted <= set(await sim.api.published()):
        if time.monotonic() > deadline:
            raise SimulationError(
                f"r{code}'s reporting has not published {', '.join(sorted(wanted))} within "
                f"{SETTLE_SECONDS:g}s; see its log in {sim.api.place.data_dir / 'logs'}"
            )
        await asyncio.sleep(0.3)
    summary = RegencySummary(code, name, len(sim.units), agents, recorded=sim.recorded)
    summary.reported = await settled_figures(sim.api, sorted(wanted))
    progress(code, f"r{code} {name}: done", 0)
    return summary


async def settled_figures(api: RegencyApi, periods: list[str]) -> dict[str, dict[str, int]]:
    """The regency's figures of ``periods`` once they stop changing: what the last clock move set
    off (programmes completed on the last day, dropouts the rehab scheduler found) takes a moment
    to reach the reporting. Read twice :data:`SETTLE_READ_SECONDS` apart until both agree."""
    deadline = time.monotonic() + SETTLE_SECONDS
    figures = {period: await api.month_figures(period) for period in periods}
    while time.monotonic() < deadline:
        await asyncio.sleep(SETTLE_READ_SECONDS)
        again = {period: await api.month_figures(period) for period in periods}
        if again == figures:
            break
        figures = again
    return figures


async def run(
    targets: list[Target],
    scenario: Scenario,
    *,
    units: int,
    months: int,
    seed: int,
    progress: Progress,
    how_to_start: str = "PULIH_CLOCK=manual pulih up",
) -> Summary:
    """Simulate ``months`` months of ``units`` units in every target regency, all at once; the
    summary of what their reporting counted. (The pace of the commands is each API's
    :class:`~.api.Pace`.)"""
    started = time.monotonic()
    first = await first_month([t.api for t in targets], how_to_start)
    periods = months_from(first, months)
    async with AsyncExitStack() as stack:
        sims = []
        for t in targets:
            clinics = None
            if t.nats_url is not None:
                access = [ClinicAccess(t.nats_url, t.api.code, clinic_id) for clinic_id in t.clinic_ids]
                clinics = await stack.enter_async_context(SimulatedClinics(access, scenario.clinic))
            sim = RegencySim(t.api, t.api.code, t.clinic_ids, scenario, units, seed, clinics_nats=clinics)
            sims.append((sim, t.name))
        done = await asyncio.gather(*(simulate_regency(sim, name, periods, progress) for sim, name in sims))
    return Summary([f"{m:%Y-%m}" for m in periods], list(done), time.monotonic() - started)
