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
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urlsplit, urlunsplit

from pulih.kit.messaging import nats_servers
from pulih.kit.simulate.api import RegencyApi, SimulationError
from pulih.kit.simulate.clinic import ClinicAccess, SimulatedClinics
from pulih.kit.simulate.months import next_month, weeks
from pulih.kit.simulate.quiet import Quiet
from pulih.kit.simulate.regency import SETTLE_SECONDS, RegencySim
from pulih.kit.simulate.scenario import Scenario
from pulih.kit.simulate.summary import RegencySummary, Summary

Progress = Callable[[str, str, int], None]
"""``progress(regency code, what it is doing, weeks done since the last call)``."""


@dataclass(frozen=True)
class Target:
    """A regency to simulate: its APIs, its name, its NATS server's URL as its services log in
    (where the simulator follows its events, :mod:`.quiet`, and its simulated clinics answer
    referrals), its clinics, and each clinic's NATS password (none on a development server
    without users, ``pulih up``'s). With ``clinics_over_nats`` false (a federation's regency whose
    server has no clinic users: none listed) the clinics answer over HTTP, with a clinic token."""

    api: RegencyApi
    name: str
    nats_url: str
    clinics: tuple[str, ...] = ()
    clinic_passwords: Mapping[str, str] = field(default_factory=dict)
    clinics_over_nats: bool = True

    @property
    def clinic_ids(self) -> list[str]:
        """The regency's clinics (a ``klinik-pratama-<code>`` when it names none)."""
        return list(self.clinics) or [f"klinik-pratama-{self.api.code}"]

    def clinic_access(self) -> list[ClinicAccess]:
        """How each clinic reaches the regency's server: as its own user, not the services'."""
        parts = urlsplit(nats_servers(self.nats_url)[0])
        server = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        return [
            ClinicAccess(server, self.api.code, clinic_id, self.clinic_passwords.get(clinic_id))
            for clinic_id in self.clinic_ids
        ]


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
    sim: RegencySim, name: str, periods: list[date], progress: Progress, quiet: Quiet
) -> RegencySummary:
    """Fill ``periods`` of one regency, closing each month once every event of it is counted;
    wait until its reporting has published them, and read its figures once the regency is quiet."""
    code = sim.code
    await sim.prepare(periods[0])
    agents = sum(len(u.agents) for u in sim.units)
    progress(code, f"r{code} {name}: {len(sim.units)} units, {agents} agents", 0)
    for month in periods:
        period = f"{month:%Y-%m}"
        people = sim.people_of(month)
        for number, (start, end) in enumerate(weeks(month), 1):
            await sim.run_week(month, number, start, end, people)
            progress(code, f"r{code} {name}: {period} week {number}", 1)
        progress(code, f"r{code} {name}: closing {period}", 0)
        await sim.close_month(next_month(month), quiet)
    wanted = {f"{m:%Y-%m}" for m in periods}
    deadline = time.monotonic() + SETTLE_SECONDS
    while not wanted <= set(await sim.api.published()):
        if time.monotonic() > deadline:
            raise SimulationError(
                f"r{code}'s reporting has not published {', '.join(sorted(wanted))} within "
                f"{SETTLE_SECONDS:g}s; see its log in {sim.api.place.data_dir / 'logs'}"
            )
        await asyncio.sleep(0.3)
    await quiet.wait()  # the aggregates on the stream, and whatever the last move set off
    summary = RegencySummary(code, name, len(sim.units), agents, recorded=sim.recorded)
    summary.reported = {period: await sim.api.month_figures(period) for period in sorted(wanted)}
    progress(code, f"r{code} {name}: done", 0)
    return summary


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
        runs = []
        for t in targets:
            quiet = await stack.enter_async_context(Quiet(t.api, t.nats_url))
            clinics = None
            if t.clinics_over_nats:
                simulated = SimulatedClinics(t.clinic_access(), scenario.clinic)
                clinics = await stack.enter_async_context(simulated)
            sim = RegencySim(t.api, t.api.code, t.clinic_ids, scenario, units, seed, clinics_nats=clinics)
            runs.append(simulate_regency(sim, t.name, periods, progress, quiet))
        done = await asyncio.gather(*runs)
    return Summary([f"{m:%Y-%m}" for m in periods], list(done), time.monotonic() - started)
