"""A regency's months in the simulator: the work of its units day by day, through its public APIs
(:mod:`.api`), on its services' manual clocks, at the rates of a :class:`.Scenario`.

At the start of each week every unit plans it with its own seeded random source (so the counts do
not depend on which answer comes first): its outreach, the new people who come, and a day for each
of its clients in the programme. Then, a day at a time, the regency's clocks move to the day and
each unit (all at once) does that day's work: what is due (a clinic's answers over HTTP, the
follow-ups 3 and 6 months after a discharge), outreach, new people registered with their consent
and screened (WHO ASSIST, the scenario's risk mix), most low and moderate ones enrolled with a
baseline WHOQOL-BREF, the high-risk ones and some moderate ones referred to one of the regency's
clinics (routine, or urgent for recent injecting), a session with each client (most attended;
some drop out and are discharged), and in programme week 16 the exit WHOQOL-BREF (better for
most). Clinics simulated over NATS (:mod:`.clinic`) answer the day's referrals before the clocks
move on, so an answer in time is never escalated. A client a clinic sends back is taken into
their unit's care in aftercare. A reused unit (a previous run's) goes on with the clients still
in its programme and the follow-ups still open. At the end of a month every clock but the
reporting's moves into the next one; once the regency is quiet (:mod:`.quiet`) the reporting's
follows, closing the month, and the reporting publishes its ``AggregateReported``
(:meth:`RegencySim.close_month`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from pulih.contracts.events.clinic import ReferralAccepted, TreatmentCompleted
from pulih.kit.simulate.api import RegencyApi, SimulationError
from pulih.kit.simulate.clinic import SimulatedClinics
from pulih.kit.simulate.months import month_end, rng_day
from pulih.kit.simulate.people import baseline_whoqol, exit_whoqol, month_random, person
from pulih.kit.simulate.quiet import Quiet
from pulih.kit.simulate.scenario import Scenario

TRACKED = (
    "clients_registered",
    "clients_screened",
    "screened_low",
    "screened_moderate",
    "screened_high",
    "clients_enrolled",
    "sessions_held",
    "sessions_attended",
    "referrals_made",
    "referrals_accepted",
)
"""The figures the simulator counts as it records them, to know when the reporting has them all."""
SETTLE_SECONDS = 90.0
"""How long a regency's reporting may take to count a month, or to publish the simulated months."""
ADOPT_SECONDS = 10.0
"""How long a unit waits for the aftercare enrolment of a client a clinic sent back."""
FOLLOW_UP_DAYS = (91, 182)
"""The +3 and +6 month follow-ups, in days after the discharge."""
REPORTING = "reporting"
"""The service that closes a month when its clock moves into the next one."""


def session_kind(rng: random.Random, week: int) -> str:
    """A session kind the stage of programme week ``week`` allows (the default programme)."""
    if week <= 2:
        return rng.choice(("konseling", "edukasi", "keluarga"))
    if week <= 12:
        return rng.choice(("edukasi", "konseling", "kelompok", "keluarga", "vokasional"))
    return rng.choice(("pemantauan", "pemantauan", "konseling", "keluarga"))


def clinic_kind(clinic_id: str) -> str:
    """A clinic's kind as its id suggests it (an ``rsud-`` is a hospital)."""
    return "rumah_sakit" if clinic_id.startswith(("rsud", "rs-")) else "klinik_pratama"


@dataclass
class Enrolment:
    """A client in the programme: who holds their sessions, from when to the programme's last day
    (``ends_on``, the last of week 16), and the client's own random source (so the order units
    and clients are worked in changes no count)."""

    enrollment_id: str
    client_id: str
    agent_id: str
    token: str
    enrolled_on: date
    ends_on: date
    baseline: dict[str, int]
    rng: random.Random
    active: bool = True
    exit_taken: bool = False

    def week(self, day: date) -> int:
        """The programme week ``day`` falls in (16: the last)."""
        return 16 - (self.ends_on - day).days // 7


@dataclass(order=True)
class Action:
    """Something a unit does on a day of its week (in ``order`` within the day)."""

    on: date
    order: int
    kind: str = field(compare=False)
    enrolment: Enrolment | None = field(compare=False, default=None)
    serial: int = field(compare=False, default=0)


@dataclass(order=True)
class Due:
    """Something dated ``on`` the unit does when its week reaches that day: a clinic's answer to a
    referral (``referral_id``), or a follow-up of a discharged client."""

    on: date
    kind: str = field(compare=False)
    ref: str = field(compare=False)
    body: dict[str, Any] = field(compare=False)
    token: str = field(compare=False, default="")


@dataclass
class UnitSim:
    """A Unit IBM of the simulation: its agents (id → token), its clients in the programme, and
    what it is due to do."""

    number: int
    unit_id: str
    agents: dict[str, str]
    enrolments: list[Enrolment] = field(default_factory=list)
    due: list[Due] = field(default_factory=list)
    sent_back: dict[str, str] = field(default_factory=dict)
    """Clients a clinic sent back (client id → their key), whose aftercare enrolment rehab makes."""


class RegencySim:
    """One regency's share of a simulation: its units, and what it recorded in each month."""

    def __init__(
        self,
        api: RegencyApi,
        code: str,
        clinics: list[str],
        scenario: Scenario,
        units: int,
        seed: int,
        unit_prefix: str = "Unit IBM",
        clinics_nats: SimulatedClinics | None = None,
    ) -> None:
        self.api = api
        self.code = code
        self.clinics = clinics or [f"klinik-pratama-{code}"]
        self.scenario = scenario
        self.size = units
        self.seed = seed
        self.unit_prefix = unit_prefix
        self.units: list[UnitSim] = []
        self.recorded: dict[str, Counter[str]] = {}
        self.refused: list[str] = []
        self.today = date.min
        self.clinics_nats = clinics_nats
        """The regency's clinics answering over NATS; ``None``: they answer over HTTP."""
        self.referred: dict[str, tuple[UnitSim, str, str]] = {}
        """Referral id → the unit, client id and key of the client referred."""
        self._reporting_move: asyncio.Future[None] | None = None

    async def move_to(self, day: date) -> None:
        """Every clock of the regency forward to ``day`` (never back)."""
        await self._reporting_moved()
        if day > self.today:
            await self.api.move_clocks(day)
            self.today = day

    async def _move_within_month(self, day: date) -> None:
        """Every clock forward to ``day``, not a month's 1st: the services' that do the day's work
        at once; the reporting's on the side (it closes no month: nothing waits for its time rules),
        each of its moves after the one before."""
        if day <= self.today:
            return
        await self._reporting_moved()
        self._reporting_move = asyncio.ensure_future(self.api.move_clocks(day, [REPORTING]))
        await self.api.move_clocks(day, [s for s in self.api.place.ports if s != REPORTING])
        self.today = day

    async def _reporting_moved(self) -> None:
        """Wait for the reporting's last move on the side, if any."""
        move, self._reporting_move = self._reporting_move, None
        if move is not None:
            await move

    async def close_month(self, first_day: date, quiet: Quiet) -> None:
        """Every clock forward to ``first_day``, the 1st of a month, closing the month before it:
        every service's but the reporting's first (their time rules of the month's last day run:
        programmes completed, dropouts found, deadlines passed), then, once the regency is quiet
        (:mod:`.quiet`: every event of the month is counted), the reporting's, which publishes the
        month. No event of the month can reach the reporting after that, so it publishes each
        month once."""
        await self._reporting_moved()
        if first_day <= self.today:
            return
        others = [service for service in self.api.place.ports if service != REPORTING]
        await self.api.move_clocks(first_day, others)
        await quiet.wait()
        await self.api.move_clocks(first_day, [REPORTING])
        self.today = first_day

    async def prepare(self, first_day: date) -> None:
        """Clocks to ``first_day``; the units asked for (a previous run's reused), in the
        regency's villages, with the scenario's agents each; the clinics in the directory."""
        await self.move_to(first_day)
        api, scenario = self.api, self.scenario
        rng = random.Random(f"pulih-sim:{self.seed}:{self.code}:units")
        listed = await api.get_all("outreach", "/v1/units", api.facilitator)
        for unit in listed:
            if len(self.units) == self.size or not unit["name"].startswith(self.unit_prefix):
                continue
            agents = await api.get_all("outreach", f"/v1/units/{unit['unit_id']}/agents", api.facilitator)
            active = [a["agent_id"] for a in agents if a["active"]]
            tokens = {a: api.agent_token(a, unit["unit_id"]) for a in active}
            self.units.append(UnitSim(len(self.units), unit["unit_id"], tokens))
            await self._take_over(self.units[-1])
            await self._carry_follow_ups(self.units[-1], first_day)
        villages = scenario.villages_of(self.code)
        for number in range(len(self.units), self.size):
            village = villages[number % len(villages)]
            unit = await api.post(
                "outreach",
                "/v1/units",
                api.facilitator,
                {
                    "name": f"{self.unit_prefix} {village}",
                    "village_code": f"{self.code}{number // 9 + 1:02d}{2001 + number % 9}",
                    "established_on": str(first_day),
                },
            )
            self.units.append(UnitSim(number, unit["unit_id"], {}))
        for unit in self.units:
            wanted = rng.randint(*scenario.units.agents)
            while len(unit.agents) < wanted:
                agent = await api.post(
                    "outreach",
                    f"/v1/units/{unit.unit_id}/agents",
                    api.facilitator,
                    {"trained_on": str(first_day)},
                )
                unit.agents[agent["agent_id"]] = api.agent_token(agent["agent_id"], unit.unit_id)
        for clinic_id in self.clinics:
            found = await api.request(
                "GET", "referral", f"/v1/clinics/{clinic_id}", api.facilitator, ok=(200, 404)
            )
            if found.status_code == 404:
                await api.post(
                    "referral",
                    "/v1/clinics",
                    api.facilitator,
                    {
                        "clinic_id": clinic_id,
                        "name": clinic_id.replace("-", " ").title(),
                        "kind": clinic_kind(clinic_id),
                        "services": ["rawat_jalan", "medis"],
                        "regencies": [self.code],
                    },
                )

    def count(self, on: date, indicator: str, n: int = 1) -> None:
        """``n`` more ``indicator`` recorded in ``on``'s month."""
        self.recorded.setdefault(f"{on:%Y-%m}", Counter())[indicator] += n

    async def month_baseline(self, month: date) -> dict[str, int]:
        """What the reporting counted in ``month`` before the simulator's work in it."""
        figures = await self.api.month_figures(f"{month:%Y-%m}")
        return {name: figures.get(name, 0) for name in TRACKED}

    def people_of(self, month: date) -> list[list[date]]:
        """The days new clients come to each unit in ``month`` (about the scenario's number a
        unit), in order."""
        rng = month_random(self.seed, self.code, month, "people")
        last = month_end(month).day
        per_unit = self.scenario.clients.per_unit_month
        days = []
        for _ in self.units:
            n = min(99 // max(1, len(self.units)), round(per_unit * rng.uniform(0.5, 1.5)))
            days.append(sorted(month.replace(day=rng.randint(1, last)) for _ in range(n)))
        return days

    async def run_week(
        self, month: date, number: int, start: date, end: date, people: list[list[date]]
    ) -> None:
        """Week ``number`` (1-4) of ``month``, ``start`` to ``end``, a day at a time (module doc);
        ``people[i]`` are the days new clients come to unit ``i``."""
        first_serial = 1
        plans = []
        for unit in self.units:  # each unit's serials: NIKs never repeat within the month
            serial = first_serial + sum(1 for d in people[unit.number] if d < start)
            first_serial += len(people[unit.number])
            rng = random.Random(f"pulih-sim:{self.seed}:{self.code}:{month:%Y-%m}:{number}:{unit.number}")
            plans.append((rng, self._plan_week(rng, unit, start, end, people[unit.number], serial)))
        day = start
        while day <= end:
            await (self.move_to(day) if day.day == 1 else self._move_within_month(day))
            await asyncio.gather(
                *(
                    self._unit_day(rng, unit, month, day, plan)
                    for unit, (rng, plan) in zip(self.units, plans, strict=True)
                )
            )
            if self.clinics_nats is not None:
                await self._clinics_answer(day)
            day += timedelta(days=1)

    def _plan_week(
        self, rng: random.Random, unit: UnitSim, start: date, end: date, people: list[date], serial: int
    ) -> list[Action]:
        """What the unit does this week, by day: outreach, new clients, and each client's week."""
        plan: list[Action] = []
        outreach = self.scenario.outreach.activities_per_month / 4
        for _ in range(int(outreach) + (rng.random() < outreach % 1)):
            plan.append(Action(rng_day(rng, start, end), len(plan), "outreach"))
        for day in people:
            if start <= day <= end:
                plan.append(Action(day, len(plan), "client", serial=serial))
                serial += 1
        for enrolment in unit.enrolments:
            if not enrolment.active:
                continue
            e, rng_e = enrolment.enrolled_on, enrolment.rng
            if start > enrolment.ends_on:  # the service completed the programme when week 16 ended
                enrolment.active = False
                self._follow_ups(rng_e, unit, enrolment, enrolment.ends_on + timedelta(days=1))
                continue
            day = rng_day(rng_e, max(start, e), min(end, enrolment.ends_on))
            dropout = rng_e.random() < self.scenario.sessions.weekly_dropout
            plan.append(Action(day, len(plan), "dropout" if dropout else "session", enrolment))
            exit_day = max(start, enrolment.ends_on - timedelta(days=6))
            if not dropout and not enrolment.exit_taken and exit_day <= min(end, enrolment.ends_on):
                enrolment.exit_taken = True
                plan.append(Action(exit_day, len(plan), "exit", enrolment))
        plan.sort()
        return plan

    async def _unit_day(
        self, rng: random.Random, unit: UnitSim, month: date, day: date, plan: list[Action]
    ) -> None:
        """The unit's work on ``day``: what is due (answers, follow-ups), then the plan's."""
        await self._due(unit, day)
        if unit.sent_back:
            await self._adopt(unit)
        for action in [a for a in plan if a.on == day]:
            enrolment = action.enrolment
            if action.kind == "outreach":
                await self._outreach(rng, unit, day)
            elif action.kind == "client":
                await self._new_client(rng, unit, month, day, action.serial)
            elif enrolment is None or not enrolment.active:
                continue
            elif action.kind == "session":
                await self._session(enrolment, day)
            elif action.kind == "dropout":
                await self._dropout(unit, enrolment, day)
            else:
                await self._exit(enrolment, day)

    async def _clinics_answer(self, day: date) -> None:
        """The clinics (over NATS) publish their answers due by ``day`` and wait until the referral
        service has applied them; a back referral puts the client in their unit's care."""
        clinics = self.clinics_nats
        assert clinics is not None
        if not any(answer.on <= day for answer in clinics.pending):
            return
        before = len(clinics.published)
        await clinics.answer_due(day)
        await clinics.settle(self._status_of)
        for answer in clinics.published[before:]:
            data = answer.data
            if isinstance(data, ReferralAccepted):
                self.count(answer.on, "referrals_accepted")
            elif isinstance(data, TreatmentCompleted) and data.back_referral:
                self.count(answer.on, "clients_enrolled")  # rehab enrols the client in aftercare
                unit, client_id, key = self.referred[answer.referral_id]
                unit.sent_back[client_id] = key

    async def _status_of(self, clinic_id: str, referral_id: str) -> str:
        body = await self.api.get(
            "referral", f"/v1/referrals/{referral_id}", self.api.clinic_token(clinic_id)
        )
        return str(body["status"])

    async def _outreach(self, rng: random.Random, unit: UnitSim, day: date) -> None:
        agent, token = rng.choice(sorted(unit.agents.items()))
        kind = rng.choice(("penjangkauan", "penjangkauan", "sosialisasi", "pemetaan"))
        reached = rng.randint(*getattr(self.scenario.outreach, kind))
        await self.api.post(
            "outreach",
            f"/v1/units/{unit.unit_id}/activities",
            token,
            {"agent_id": agent, "kind": kind, "held_on": str(day), "people_reached": reached},
        )

    async def _new_client(
        self, rng: random.Random, unit: UnitSim, month: date, day: date, serial: int
    ) -> None:
        api, scenario = self.api, self.scenario
        agent, token = rng.choice(sorted(unit.agents.items()))
        who = person(rng, self.code, month, serial, day, (scenario.risk.low, scenario.risk.moderate))
        key = f"{month:%Y-%m}:{unit.number}:{serial}"
        client = await api.post(
            "outreach",
            "/v1/clients",
            token,
            {"unit_id": unit.unit_id, "registered_on": str(day), "came_through": "outreach",
             "identity": who.identity()},
        )  # fmt: skip
        client_id = client["client_id"]
        self.count(day, "clients_registered")
        if rng.random() >= scenario.clients.consent:
            return  # registered, but gave no consent: not screened
        consent = await api.request(
            "POST",
            "outreach",
            f"/v1/clients/{client_id}/consents",
            token,
            {"scopes": ["programme", "referral"], "given_on": str(day)},
        )
        screened = await api.request(
            "POST",
            "outreach",
            f"/v1/clients/{client_id}/screenings",
            token,
            {"agent_id": agent, "screened_on": str(day), "injecting": who.injecting,
             "substances": who.substances},
        )  # fmt: skip
        self.count(day, "clients_screened")
        events = [e for r in (consent, screened) for e in r.headers.get("Pulih-Events", "").split(",") if e]
        risk = screened.json()["overall_risk"]
        self.count(day, f"screened_{risk}")
        if risk == "high" or screened.json()["recommendation"] == "referral":
            if rng.random() < scenario.referral.high:
                await self._refer(rng, unit, token, client_id, key, day, who.injecting, events, "high_risk")
            return
        if risk == "moderate" and rng.random() < scenario.referral.moderate:
            await self._refer(rng, unit, token, client_id, key, day, who.injecting, events, "medical")
            return
        if rng.random() < (scenario.enrolment.low if risk == "low" else scenario.enrolment.moderate):
            enrolled_on = day
            baseline = baseline_whoqol(rng, *scenario.whoqol.baseline)
            enrolment = await api.post(
                "rehab",
                "/v1/enrolments",
                token,
                {"client_id": client_id, "agent_id": agent, "enrolled_on": str(enrolled_on),
                 "baseline": baseline},
                after=events,
            )  # fmt: skip
            self.count(enrolled_on, "clients_enrolled")
            joined = Enrolment(
                enrolment["enrollment_id"], client_id, agent, token, enrolled_on,
                date.fromisoformat(enrolment["planned_end_on"]), baseline, self._client_rng(key),
            )  # fmt: skip
            unit.enrolments.append(joined)
            await self._session(joined, enrolled_on, attended=True)

    def _client_rng(self, key: str) -> random.Random:
        return random.Random(f"pulih-sim:{self.seed}:{self.code}:client:{key}")

    async def _take_over(self, unit: UnitSim) -> None:
        """The clients a previous run left in a reused unit's programme go on with it."""
        token = next(iter(sorted(unit.agents.items())))[1]
        listed = await self.api.get_all(
            "rehab", "/v1/enrolments", token, unit_id=unit.unit_id, status="active"
        )
        for number, found in enumerate(sorted(listed, key=lambda e: (e["enrolled_on"], e["client_id"]))):
            self._join(unit, found, f"earlier:{found['enrolled_on']}:{number}")

    async def _carry_follow_ups(self, unit: UnitSim, first_day: date) -> None:
        """The follow-ups a previous run left open in a reused unit are done when they fall due
        (those already overdue on ``first_day``, on that day). Rehab's worklist lists a follow-up
        a week before it is due: read for a day past the last one that can be open."""
        ahead = first_day + timedelta(days=FOLLOW_UP_DAYS[-1] + 31)
        worklist = await self.api.get(
            "rehab", f"/v1/units/{unit.unit_id}/worklist", self.api.facilitator, date=str(ahead)
        )
        tasks = sorted(
            (t["due_on"], t["client_id"], agent["agent_id"])
            for agent in worklist["agents"]
            for t in agent["tasks"]
            if t["kind"] == "follow_up_due"
        )
        rng = random.Random(f"pulih-sim:{self.seed}:{self.code}:{unit.number}:follow-ups left")
        shares = self.scenario.follow_up.model_dump()
        for due_on, client_id, agent_id in tasks:
            on = max(date.fromisoformat(due_on), first_day)
            status = rng.choices(list(shares), weights=list(shares.values()))[0]
            token = self.api.agent_token(agent_id, unit.unit_id)
            unit.due.append(Due(on, "follow_up", client_id, {"on": str(on), "status": status}, token))
        unit.due.sort()

    def _join(self, unit: UnitSim, found: dict[str, Any], key: str) -> None:
        """Take an enrolment rehab shows (``GET /v1/enrolments``) into the unit's care."""
        agent = found["agent_id"]
        baseline = baseline_whoqol(self._client_rng(key), *self.scenario.whoqol.baseline)
        unit.enrolments.append(
            Enrolment(
                found["enrollment_id"], found["client_id"], agent, self.api.agent_token(agent, unit.unit_id),
                date.fromisoformat(found["enrolled_on"]), date.fromisoformat(found["planned_end_on"]),
                baseline, self._client_rng(key),
            )
        )  # fmt: skip

    async def _adopt(self, unit: UnitSim) -> None:
        """Take into the unit's care the aftercare enrolments of the clients a clinic sent back
        (rehab makes them on the clinic's answer)."""
        token = next(iter(sorted(unit.agents.items())))[1]
        deadline = time.monotonic() + ADOPT_SECONDS
        while True:
            listed = await self.api.get_all(
                "rehab", "/v1/enrolments", token, unit_id=unit.unit_id, status="active"
            )
            for found in listed:
                key = unit.sent_back.pop(found["client_id"], None)
                if key is None:
                    continue
                self._join(unit, found, key)
            if not unit.sent_back or time.monotonic() > deadline:
                unit.sent_back.clear()  # discharged already, or never enrolled: nothing to take over
                return
            await asyncio.sleep(0.2)

    async def _dropout(self, unit: UnitSim, enrolment: Enrolment, day: date) -> None:
        """The client stopped coming: the agent discharges them (``dropped_out``)."""
        answer = await self.api.request(
            "POST",
            "rehab",
            f"/v1/enrolments/{enrolment.enrollment_id}/discharge",
            enrolment.token,
            {"on": str(day), "reason": "dropped_out"},
            ok=(200, 409),
        )
        enrolment.active = False
        if answer.status_code == 200:
            self._follow_ups(enrolment.rng, unit, enrolment, day)

    async def _exit(self, enrolment: Enrolment, day: date) -> None:
        """The exit WHOQOL-BREF of programme week 16: better for most."""
        improved = enrolment.rng.random() < self.scenario.whoqol.improved
        await self.api.request(
            "POST",
            "rehab",
            f"/v1/enrolments/{enrolment.enrollment_id}/assessments",
            enrolment.token,
            {"timepoint": "exit", "assessed_on": str(day),
             "answers": exit_whoqol(enrolment.rng, enrolment.baseline, improved)},
            ok=(201, 409, 422),
        )  # fmt: skip

    def _follow_ups(self, rng: random.Random, unit: UnitSim, enrolment: Enrolment, discharged: date) -> None:
        shares = self.scenario.follow_up.model_dump()
        for days in FOLLOW_UP_DAYS:
            status = rng.choices(list(shares), weights=list(shares.values()))[0]
            unit.due.append(
                Due(discharged + timedelta(days=days), "follow_up", enrolment.client_id,
                    {"on": str(discharged + timedelta(days=days)), "status": status}, enrolment.token)
            )  # fmt: skip
        unit.due.sort()

    async def _session(self, enrolment: Enrolment, day: date, attended: bool | None = None) -> None:
        rng = enrolment.rng
        came = attended if attended is not None else rng.random() < self.scenario.sessions.attendance
        week = enrolment.week(day)
        session = {"agent_id": enrolment.agent_id, "held_on": str(day), "kind": session_kind(rng, week),
                   "attended": came, "minutes": rng.choice((45, 60, 90)) if came else 0}  # fmt: skip
        path = f"/v1/enrolments/{enrolment.enrollment_id}/sessions"
        answer = await self.api.request("POST", "rehab", path, enrolment.token, session, ok=(201, 409, 422))
        if answer.status_code == 422 and answer.json().get("code") == "kind_not_in_stage":
            # an enrolment the simulator found (not one it made) can be in another stage than its
            # week says (paused for a clinic, in aftercare): counselling is part of every stage
            session["kind"] = "konseling"
            answer = await self.api.request("POST", "rehab", path, enrolment.token, session, ok=(201, 409))
        elif answer.status_code == 422:
            raise SimulationError(f"r{self.api.code} rehab refused a session on {day}: {answer.text}")
        if answer.status_code == 409:  # discharged (dropped out) or paused: no more sessions
            enrolment.active = False
            return
        self.count(day, "sessions_held")
        if came:
            self.count(day, "sessions_attended")

    async def _refer(
        self,
        rng: random.Random,
        unit: UnitSim,
        token: str,
        client_id: str,
        key: str,
        day: date,
        injecting: str,
        events: list[str],
        reason: str,
    ) -> None:
        clinic = rng.choice(self.clinics)
        urgent = injecting == "past_3_months"
        referral = await self.api.post(
            "referral",
            "/v1/referrals",
            token,
            {"client_id": client_id, "clinic_id": clinic, "service": "rawat_jalan",
             "reason": "injecting" if urgent else reason, "urgency": "urgent" if urgent else "routine",
             "referred_on": str(day)},
            after=events,
        )  # fmt: skip
        self.count(day, "referrals_made")
        if self.clinics_nats is not None:  # the clinics answer over NATS
            self.referred[referral["referral_id"]] = (unit, client_id, key)
            self.clinics_nats.plan(rng, referral)
            return
        shares = self.scenario.clinic
        draw = rng.random()
        rid = referral["referral_id"]
        if draw < shares.declined:
            on = day + timedelta(days=rng.choice((0, 1, 2)))
            self._answer(unit, rid, clinic, on, {"answer": "declined", "on": str(on),
                         "reason": rng.choice(("no_capacity", "not_indicated", "out_of_area"))})  # fmt: skip
            return
        if draw >= shares.declined + shares.accepted + shares.late:
            return  # the clinic never answers: the referral is escalated, then overdue
        late = draw >= shares.declined + shares.accepted
        accepted = day + timedelta(days=rng.randint(5, 9) if late else rng.choice((0, 1, 1, 2)))
        attended = accepted + timedelta(days=rng.randint(2, 7))
        completed = attended + timedelta(days=rng.randint(14, 35))
        acceptance = {"answer": "accepted", "on": str(accepted), "appointment_on": str(attended)}
        self._answer(unit, rid, clinic, accepted, acceptance)
        self._answer(unit, rid, clinic, attended, {"answer": "attended", "on": str(attended)})
        back = rng.random() < shares.back_referral
        self._answer(unit, rid, clinic, completed,
                     {"answer": "completed", "on": str(completed), "outcome": "completed",
                      "back_referral": back, "client": f"{client_id} {key}"})  # fmt: skip

    def _answer(
        self, unit: UnitSim, referral_id: str, clinic_id: str, on: date, body: dict[str, Any]
    ) -> None:
        unit.due.append(Due(on, "answer", referral_id, body, self.api.clinic_token(clinic_id)))
        unit.due.sort()

    async def _due(self, unit: UnitSim, until: date) -> None:
        """What the unit (and its clinics) have to do by ``until``, in order."""
        while unit.due and unit.due[0].on <= until:
            due = unit.due.pop(0)
            if due.kind == "follow_up":
                await self.api.request(
                    "POST", "rehab", f"/v1/clients/{due.ref}/follow-ups", due.token, due.body,
                    ok=(201, 409, 422),
                )  # fmt: skip
                continue
            body = {k: v for k, v in due.body.items() if k != "client"}
            answer = await self.api.request(
                "POST", "referral", f"/v1/referrals/{due.ref}/answers", due.token, body,
                ok=(200, 201, 409, 422),
            )  # fmt: skip
            if answer.status_code in (409, 422):
                self.refused.append(f"{due.body['answer']} {due.on}: {answer.text}")
                unit.due = [d for d in unit.due if d.ref != due.ref]
            elif due.body["answer"] == "accepted":
                self.count(due.on, "referrals_accepted")
            elif due.body.get("back_referral"):  # rehab enrols the client in aftercare that day
                self.count(due.on, "clients_enrolled")
                client_id, key = due.body["client"].split()
                unit.sent_back[client_id] = key
