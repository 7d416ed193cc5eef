"""A regency's months in ``pulih federation demo``: the work of its units week by week, through its
public APIs (:mod:`.demo_api`), on its services' manual clocks.

Each week the regency's clocks move to the week's last day, then, dated on the days of that week:
the clinics answer the referrals whose answer is due, each unit holds outreach, new people are
registered with their consent and screened (WHO ASSIST: about a third low risk, half moderate, the
rest high), most low and moderate ones are enrolled with a first session, the high-risk ones are
referred to one of the regency's clinics (routine, or urgent for recent injecting), and every
client in the programme has a session (most attended). At the end of a month the demo waits until
the regency's reporting has counted what it recorded; the next clock move then closes the month,
and the reporting publishes its ``AggregateReported``.
"""

from __future__ import annotations

import calendar
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from pulih.kit.federation.demo_api import RegencyApi
from pulih.kit.federation.demo_data import WHOQOL_BASELINE, Profile, month_random, person
from pulih.kit.federation.topology import Regency

VILLAGES = ("Sukamaju", "Mekarsari", "Sidomulyo", "Karanganyar", "Tegalrejo", "Margasari", "Sumberejo")
AGENTS_PER_UNIT = 3
TRACKED = (
    "clients_registered",
    "clients_screened",
    "clients_enrolled",
    "sessions_held",
    "referrals_made",
    "referrals_accepted",
)
"""The figures the demo counts as it records them, to know when the reporting has them all."""
SETTLE_SECONDS = 90.0
"""How long a regency's reporting may take to count a month, or to publish the demo's months."""
SESSION_KINDS = ("konseling", "konseling", "keluarga")
"""Kinds every stage of the programme asks for (penerimaan awal, intervensi, bina lanjut)."""


@dataclass
class Unit:
    """A Unit IBM of the demo and its agents (id → token)."""

    unit_id: str
    agents: dict[str, str]


@dataclass
class Enrolment:
    """A client in the programme: who holds their sessions, since when."""

    enrollment_id: str
    agent_id: str
    token: str
    enrolled_on: date
    active: bool = True


@dataclass(order=True)
class Answer:
    """A clinic's answer to a referral, due on ``on``."""

    on: date
    referral_id: str = field(compare=False)
    clinic_id: str = field(compare=False)
    body: dict[str, Any] = field(compare=False)


def month_end(month: date) -> date:
    """The last day of ``month``'s month."""
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def next_month(month: date) -> date:
    """The first day of the month after ``month``'s."""
    return month_end(month) + timedelta(days=1)


def weeks(month: date) -> list[tuple[date, date]]:
    """The month's weeks: days 1-7, 8-14, 15-21 and 22 to its end."""
    end = month_end(month)
    return [
        (month.replace(day=1), month.replace(day=7)),
        (month.replace(day=8), month.replace(day=14)),
        (month.replace(day=15), month.replace(day=21)),
        (month.replace(day=22), end),
    ]


def clinic_kind(clinic_id: str) -> str:
    """A clinic's kind as its id suggests it (an ``rsud-`` is a hospital)."""
    return "rumah_sakit" if clinic_id.startswith(("rsud", "rs-")) else "klinik_pratama"


class RegencyDemo:
    """One regency's share of the demo: its units, its clients in the programme, its referrals
    waiting for an answer, and what it recorded in each month."""

    def __init__(self, api: RegencyApi, regency: Regency, size: Profile, seed: int) -> None:
        self.api = api
        self.regency = regency
        self.size = size
        self.seed = seed
        self.clinics = list(regency.clinics) or [f"klinik-pratama-{regency.code}"]
        self.units: list[Unit] = []
        self.enrolments: list[Enrolment] = []
        self.answers: list[Answer] = []
        self.recorded: dict[str, Counter[str]] = {}
        self.refused: list[str] = []
        self.today = date.min

    async def move_to(self, day: date) -> None:
        """Every clock of the regency forward to ``day`` (never back)."""
        if day > self.today:
            await self.api.move_clocks(day)
            self.today = day

    async def prepare(self, first_day: date) -> None:
        """Clocks to ``first_day``; the units the regency's size asks for (a previous demo's
        reused), three agents each; the regency's clinics in the referral directory."""
        await self.move_to(first_day)
        api = self.api
        listed = await api.get("outreach", "/v1/units", api.facilitator)
        for unit in listed:
            if len(self.units) == self.size.units or not unit["name"].startswith("Unit IBM"):
                continue
            agents = await api.get("outreach", f"/v1/units/{unit['unit_id']}/agents", api.facilitator)
            active = [a["agent_id"] for a in agents if a["active"]]
            self.units.append(Unit(unit["unit_id"], {a: api.agent_token(a, unit["unit_id"]) for a in active}))
        for number in range(len(self.units), self.size.units):
            village = VILLAGES[number % len(VILLAGES)]
            unit = await api.post(
                "outreach",
                "/v1/units",
                api.facilitator,
                {
                    "name": f"Unit IBM {village}",
                    "village_code": f"{self.regency.code}{number + 1:02d}2001",
                    "established_on": str(first_day),
                },
            )
            self.units.append(Unit(unit["unit_id"], {}))
        for unit in self.units:
            while len(unit.agents) < AGENTS_PER_UNIT:
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
                        "regencies": [self.regency.code],
                    },
                )

    def count(self, on: date, indicator: str) -> None:
        """One more ``indicator`` recorded in ``on``'s month."""
        self.recorded.setdefault(f"{on:%Y-%m}", Counter())[indicator] += 1

    async def month_baseline(self, month: date) -> dict[str, int]:
        """What the reporting counted in ``month`` before the demo's work in it."""
        figures = await self.api.month_figures(f"{month:%Y-%m}")
        return {name: figures.get(name, 0) for name in TRACKED}

    async def run_week(
        self, rng: random.Random, start: date, end: date, people: list[date], serial: int
    ) -> int:
        """One week of the regency (module doc); ``people`` are the days new clients come
        (numbered from ``serial``). Returns the next serial."""
        await self.move_to(end)
        await self._answer_referrals(end)
        for unit in self.units:
            if rng.random() < 0.85:
                await self._outreach(rng, unit, rng_day(rng, start, end))
        older = list(self.enrolments)
        for day in people:
            await self._new_client(rng, start.replace(day=1), day, serial, end)
            serial += 1
        for enrolment in older:
            if enrolment.active:
                await self._session(rng, enrolment, rng_day(rng, max(start, enrolment.enrolled_on), end))
        await self._answer_referrals(end)
        return serial

    async def _outreach(self, rng: random.Random, unit: Unit, day: date) -> None:
        agent, token = rng.choice(list(unit.agents.items()))
        kind = rng.choice(("penjangkauan", "penjangkauan", "sosialisasi", "pemetaan"))
        reached = {"penjangkauan": (1, 12), "sosialisasi": (15, 120), "pemetaan": (0, 10)}[kind]
        await self.api.post(
            "outreach",
            f"/v1/units/{unit.unit_id}/activities",
            token,
            {"agent_id": agent, "kind": kind, "held_on": str(day), "people_reached": rng.randint(*reached)},
        )

    async def _new_client(self, rng: random.Random, month: date, day: date, serial: int, end: date) -> None:
        api = self.api
        unit = rng.choice(self.units)
        agent, token = rng.choice(list(unit.agents.items()))
        who = person(rng, self.regency.code, month, serial, day)
        client = await api.post(
            "outreach",
            "/v1/clients",
            token,
            {"unit_id": unit.unit_id, "registered_on": str(day), "came_through": "outreach",
             "identity": who.identity()},
        )  # fmt: skip
        client_id = client["client_id"]
        self.count(day, "clients_registered")
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
            {
                "agent_id": agent,
                "screened_on": str(day),
                "injecting": who.injecting,
                "substances": who.substances,
            },
        )
        self.count(day, "clients_screened")
        events = [e for r in (consent, screened) for e in r.headers.get("Pulih-Events", "").split(",") if e]
        risk = screened.json()["overall_risk"]
        if risk == "high" or screened.json()["recommendation"] == "referral":
            if rng.random() < 0.85:
                await self._refer(rng, token, client_id, day, who.injecting, events, end)
            return
        if rng.random() < (0.3 if risk == "low" else 0.85):
            enrolled_on = min(day + timedelta(days=rng.choice((0, 0, 1))), end)
            enrolment = await api.post(
                "rehab",
                "/v1/enrolments",
                token,
                {"client_id": client_id, "agent_id": agent, "enrolled_on": str(enrolled_on),
                 "baseline": WHOQOL_BASELINE},
                after=events,
            )  # fmt: skip
            self.count(enrolled_on, "clients_enrolled")
            joined = Enrolment(enrolment["enrollment_id"], agent, token, enrolled_on)
            self.enrolments.append(joined)
            await self._session(rng, joined, enrolled_on, attended=True)

    async def _session(
        self, rng: random.Random, enrolment: Enrolment, day: date, attended: bool | None = None
    ) -> None:
        came = attended if attended is not None else rng.random() < 0.85
        answer = await self.api.request(
            "POST",
            "rehab",
            f"/v1/enrolments/{enrolment.enrollment_id}/sessions",
            enrolment.token,
            {"agent_id": enrolment.agent_id, "held_on": str(day), "kind": rng.choice(SESSION_KINDS),
             "attended": came, "minutes": rng.choice((45, 60, 90)) if came else 0},
            ok=(201, 409),
        )  # fmt: skip
        if answer.status_code == 409:  # discharged (dropped out) or paused: no more sessions
            enrolment.active = False
            return
        self.count(day, "sessions_held")

    async def _refer(
        self,
        rng: random.Random,
        token: str,
        client_id: str,
        day: date,
        injecting: str,
        events: list[str],
        end: date,
    ) -> None:
        clinic = rng.choice(self.clinics)
        urgent = injecting == "past_3_months"
        referral = await self.api.post(
            "referral",
            "/v1/referrals",
            token,
            {"client_id": client_id, "clinic_id": clinic, "service": "rawat_jalan",
             "reason": "injecting" if urgent else "high_risk", "urgency": "urgent" if urgent else "routine",
             "referred_on": str(day)},
            after=events,
        )  # fmt: skip
        self.count(day, "referrals_made")
        if rng.random() < 0.1:
            return  # the clinic never answers: the referral is escalated, then overdue
        rid = referral["referral_id"]
        accepted = day + timedelta(days=rng.choice((0, 1, 1, 2)))
        attended = accepted + timedelta(days=rng.randint(2, 7))
        completed = attended + timedelta(days=rng.randint(14, 35))
        self.answers += [
            Answer(accepted, rid, clinic,
                   {"answer": "accepted", "on": str(accepted), "appointment_on": str(attended)}),
            Answer(attended, rid, clinic, {"answer": "attended", "on": str(attended)}),
            Answer(completed, rid, clinic,
                   {"answer": "completed", "on": str(completed), "outcome": "completed",
                    "back_referral": rng.random() < 0.6}),
        ]  # fmt: skip
        self.answers.sort()
        await self._answer_referrals(end)

    async def _answer_referrals(self, until: date) -> None:
        """Each clinic answers, in order, what it has to answer by ``until``."""
        while self.answers and self.answers[0].on <= until:
            due = self.answers.pop(0)
            answer = await self.api.request(
                "POST",
                "referral",
                f"/v1/referrals/{due.referral_id}/answers",
                self.api.clinic_token(due.clinic_id),
                due.body,
                ok=(200, 201, 409, 422),
            )
            if answer.status_code in (409, 422):
                self.refused.append(f"{due.body['answer']} {due.on}: {answer.text}")
                self.answers = [a for a in self.answers if a.referral_id != due.referral_id]
            elif due.body["answer"] == "accepted":
                self.count(due.on, "referrals_accepted")
            elif due.body.get("back_referral"):  # rehab enrols the client in aftercare that day
                self.count(due.on, "clients_enrolled")

    def people_of(self, month: date) -> list[date]:
        """The days new clients come in ``month`` (about the regency's monthly number), in order."""
        rng = month_random(self.seed, self.regency.code, month, "people")
        n = max(1, min(99, round(self.size.clients_per_month * rng.uniform(0.75, 1.25))))
        last = month_end(month).day
        return sorted(month.replace(day=rng.randint(1, last)) for _ in range(n))


def rng_day(rng: random.Random, start: date, end: date) -> date:
    """A day from ``start`` to ``end``, both included."""
    return start + timedelta(days=rng.randint(0, max(0, (end - start).days)))
