"""The simulator (issue 12), against real services and a real NATS server (``pulih up`` on free
ports).

- Its clinics answer over NATS with the reference clinic's protocol: accepted in time and
  completed, with a back referral, late (after ``respond_by``, so escalated first), declined, or
  never; the referral service applies each as the clinic meant, refuses none, and escalates only
  the late, declined and unanswered referrals (the clocks move a day at a time, and each day's
  answers are applied before the next move).
- Two fresh regencies simulated with the same seed (four units, two months, at the same time, a
  busy scenario whose clinics answer over NATS every way; one as fast as it answers, the other
  paced at 20 commands a second, which takes at least the commands' number over 20 seconds) hold
  the same number of events of each type, revisions of the monthly aggregates included: each
  month is published once, with the same figures (a month closes only once every event of it is
  counted). The simulator's summary is what the reporting API's regency indicators say, month by
  month, and what the simulator recorded; every event in the stream is one the contracts parse,
  and none carries a name, NIK, phone or address the simulator made up.
- Against a regency on the system clock, ``pulih simulate`` refuses to move time, says why and
  what to do, and records nothing.
- A second run on a regency plans the follow-ups the first left open (rehab's worklist).
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from simulate_support import FACILITATOR, REGENCY, START, Api, regency_up, token
from system_support import stream_messages
from test_readme_walkthrough import ROOT, Regency

from pulih.contracts import parse_event, stream_name
from pulih.kit.auth import Role
from pulih.kit.settings import DEV_JWT_SECRET
from pulih.kit.simulate import regency as regency_module
from pulih.kit.simulate.api import Pace, RegencyApi, ServicePlace
from pulih.kit.simulate.clinic import ClinicAccess, SimulatedClinics
from pulih.kit.simulate.engine import Target, run
from pulih.kit.simulate.months import next_month
from pulih.kit.simulate.people import Person, person
from pulih.kit.simulate.scenario import Scenario, load_scenario
from pulih.kit.simulate.summary import Summary

pytestmark = [pytest.mark.system, pytest.mark.slow]

CLINIC = "klinik-pratama-demo"


@dataclass(frozen=True)
class Shares:
    """The scenario's ``[clinic]`` table, one outcome certain."""

    accepted: float = 0.0
    declined: float = 0.0
    late: float = 0.0
    silent: float = 0.0
    back_referral: float = 0.0


PLANS = {
    "completed": Shares(accepted=1),
    "back_referral": Shares(accepted=1, back_referral=1),
    "late": Shares(late=1),
    "declined": Shares(declined=1),
    "silent": Shares(silent=1),
}
SCREENING = {
    "injecting": "never",
    "substances": [
        {"substance": "amphetamine_type_stimulants", "ever_used": True,
         "q2": 4, "q3": 4, "q4": 5, "q5": 5, "q6": 3, "q7": 3},
    ],
}  # fmt: skip


async def _referral(api: Api, unit: str, agent: str, agent_token: str, serial: int) -> dict[str, Any]:
    """A client registered, consenting and screened on the first day, referred to the clinic."""
    day = str(START)
    client = await api.post(
        "outreach",
        "/v1/clients",
        agent_token,
        {"unit_id": unit, "registered_on": day, "came_through": "outreach",
         "identity": {"full_name": f"Klien Uji {serial}", "nik": f"3301010101{85:02d}{serial:04d}",
                      "birth_date": "1985-01-01", "sex": "m"}},
    )  # fmt: skip
    cid = client["client_id"]
    consent = await api.send(
        "POST", "outreach", f"/v1/clients/{cid}/consents", agent_token,
        {"scopes": ["programme", "referral"], "given_on": day},
    )  # fmt: skip
    screened = await api.send(
        "POST", "outreach", f"/v1/clients/{cid}/screenings", agent_token,
        {"agent_id": agent, "screened_on": day, **SCREENING},
    )  # fmt: skip
    after = ",".join(r.headers["Pulih-Events"] for r in (consent, screened))
    referral: dict[str, Any] = await api.post(
        "referral",
        "/v1/referrals",
        agent_token,
        {"client_id": cid, "clinic_id": CLINIC, "service": "rawat_jalan", "reason": "high_risk",
         "urgency": "routine", "referred_on": day},
        after=after,
    )  # fmt: skip
    return referral


def test_the_simulated_clinics_answer_over_nats_as_each_outcome_says(tmp_path: Path) -> None:
    with regency_up(tmp_path / "regency") as regency:

        async def run() -> None:
            async with httpx.AsyncClient(timeout=30) as http:
                api = Api(regency, http)
                await api.post(
                    "referral", "/v1/clinics", FACILITATOR,
                    {"clinic_id": CLINIC, "name": "Klinik Pratama Demo", "kind": "klinik_pratama",
                     "services": ["rawat_jalan", "medis"], "regencies": ["3301"]},
                )  # fmt: skip
                unit_body = {
                    "name": "Unit IBM Slarang",
                    "village_code": "3301012001",
                    "established_on": str(START),
                }
                unit = (await api.post("outreach", "/v1/units", FACILITATOR, unit_body))["unit_id"]
                agent_body = {"trained_on": str(START)}
                agent = (await api.post("outreach", f"/v1/units/{unit}/agents", FACILITATOR, agent_body))[
                    "agent_id"
                ]
                agent_token = token(Role.AGENT, agent, unit_id=unit)
                access = ClinicAccess(f"nats://127.0.0.1:{regency.nats_port}", "3301", CLINIC)
                async with SimulatedClinics([access], Shares(accepted=1)) as clinics:
                    referrals = {}
                    rng = random.Random(7)
                    for serial, (plan, shares) in enumerate(PLANS.items(), start=1):
                        referral = await _referral(api, unit, agent, agent_token, serial)
                        clinics.shares = shares
                        clinics.plan(rng, referral)
                        referrals[plan] = referral["referral_id"]

                    async def status_of(clinic_id: str, referral_id: str) -> str:
                        clinic = token(Role.CLINIC, clinic_id, clinic_id=clinic_id)
                        return str(
                            (await api.get("referral", f"/v1/referrals/{referral_id}", clinic))["status"]
                        )

                    # a day at a time until every acceptance is in (respond_by + 4 at the latest),
                    # each day's answers applied (settled) before the next move; then to the end
                    published = 0
                    for n in [*range(1, 11), 60]:
                        today = START + timedelta(days=n)
                        await api.move_clocks(today)
                        published += await clinics.answer_due(today)
                        await clinics.settle(status_of)
                    assert published == 3 + 3 + 3 + 1  # completed, back referral, late; declined
                    assert clinics.pending == []
                    seen = {
                        plan: await api.get("referral", f"/v1/referrals/{r}") for plan, r in referrals.items()
                    }
                    await clinics.answer_due(today)  # reads any AnswerRejected
                    assert clinics.refused == []
                accepted = sum(c["referrals_accepted"] for c in clinics.counted.values())
                completed = sum(c["referrals_completed"] for c in clinics.counted.values())
                assert (accepted, completed) == (3, 3)

            def shown(o: str) -> tuple[Any, ...]:
                v = seen[o]
                return v["status"], v["outcome"], v["back_referral"], v["escalated"]

            assert shown("completed") == ("completed", "completed", False, False)
            assert shown("back_referral") == ("completed", "completed", True, False)
            assert shown("late")[:2] == ("completed", "completed")
            assert shown("late")[3] is True  # escalated before the late acceptance
            late = seen["late"]
            assert date.fromisoformat(late["accepted_on"]) > date.fromisoformat(late["respond_by"])
            assert seen["declined"]["status"] == "declined"
            assert seen["declined"]["escalated"] is True
            assert seen["silent"]["status"] == "referred"
            assert seen["silent"]["escalated"] is True

        asyncio.run(run())


def simulate(regency: Regency, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``pulih simulate`` against ``regency`` (its ports and secret from the environment)."""
    return subprocess.run(
        [sys.executable, "-m", "pulih.kit.cli", "simulate", *args],
        cwd=ROOT, env=regency.env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


async def _stream_count(regency: Regency) -> int:
    nc = await nats.connect(f"nats://127.0.0.1:{regency.nats_port}", connect_timeout=2)
    try:
        return int((await nc.jetstream().stream_info(stream_name(REGENCY))).state.messages)
    finally:
        await nc.close()


def test_simulate_refuses_a_regency_on_the_system_clock_and_changes_nothing(tmp_path: Path) -> None:
    with regency_up(tmp_path / "regency", clock="system") as regency:
        before = asyncio.run(_stream_count(regency))
        run = simulate(regency, "--units", "1", "--months", "1", "--seed", "1")
        assert run.returncode != 0, run.stdout + run.stderr
        said = run.stdout + run.stderr
        assert "system clock" in said and "PULIH_CLOCK=manual" in said, said
        assert "Traceback" not in said, said
        units = httpx.get(
            f"{regency.url('outreach')}/v1/units", headers={"Authorization": f"Bearer {FACILITATOR}"}
        )
        listed = units.json()
        assert (listed if isinstance(listed, list) else listed["items"]) == []  # a page, or a list
        assert asyncio.run(_stream_count(regency)) == before


BUSY = Scenario.model_validate(
    {
        **load_scenario().model_dump(),
        "clients": {"per_unit_month": 3, "consent": 0.97},
        "sessions": {"attendance": 0.85, "weekly_dropout": 0.08},
        "risk": {"low": 0.4, "moderate": 0.35, "high": 0.25},
        "referral": {"high": 1.0, "moderate": 0.5},
        "clinic": {"accepted": 0.4, "declined": 0.2, "late": 0.2, "silent": 0.2, "back_referral": 0.6},
    }
)
"""The default scenario with more clients, more of them referred, more dropping out (leaving
follow-ups open), and clinics answering every way."""


PACED = 20.0
"""Commands a second of the second regency's run (``--speed 20``); the first runs unpaced."""


@dataclass
class Simulated:
    """Two fresh regencies simulated with the same seed, at the same time: the first as fast as it
    answers, the second at :data:`PACED` commands a second."""

    regencies: list[Regency]
    summaries: list[Summary]
    paces: list[Pace]
    people: list[Person]


async def _simulate_both(regencies: list[Regency], paces: list[Pace]) -> list[Summary]:
    async with httpx.AsyncClient(timeout=60) as http:

        async def one(regency: Regency, pace: Pace) -> Summary:
            place = ServicePlace(REGENCY, dict(regency.ports), regency.data_dir)
            api = RegencyApi(place, DEV_JWT_SECRET, http, running="the test's regency", pace=pace)
            target = Target(api, "Cilacap", f"nats://127.0.0.1:{regency.nats_port}", (CLINIC,))
            return await run([target], BUSY, units=4, months=2, seed=5, progress=lambda *a: None)

        return list(await asyncio.gather(*(one(r, p) for r, p in zip(regencies, paces, strict=True))))


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulated]:
    people: list[Person] = []

    def recorded(*args: Any, **kwargs: Any) -> Person:
        who = person(*args, **kwargs)
        people.append(who)
        return who

    with ExitStack() as stack, pytest.MonkeyPatch.context() as patch:
        patch.setattr(regency_module, "person", recorded)
        regencies = [stack.enter_context(regency_up(tmp_path_factory.mktemp(f"r{n}"))) for n in (1, 2)]
        paces = [Pace(), Pace(PACED)]
        yield Simulated(regencies, asyncio.run(_simulate_both(regencies, paces)), paces, people)


async def _stream(regency: Regency) -> list[bytes]:
    nats_url = f"nats://127.0.0.1:{regency.nats_port}"
    return [m.data for m in await stream_messages(nats_url, f"ibm.{REGENCY}.>", REGENCY)]


def _counted(regency: Regency) -> tuple[Counter[str], dict[tuple[str, int], Any]]:
    """The regency's events counted by type (every revision of a month's aggregate one more), and
    each (month, revision) it published, with its indicators."""
    counts: Counter[str] = Counter()
    published: dict[tuple[str, int], Any] = {}
    for data in asyncio.run(_stream(regency)):
        event = json.loads(data)
        counts[event["type"]] += 1
        if event["type"] == "pulih.reporting.AggregateReported.v1":
            published[event["data"]["period"], event["data"]["revision"]] = event["data"]["indicators"]
    return counts, published


def test_the_same_seed_gives_the_same_event_counts(simulated: Simulated) -> None:
    (counts, published), (again, republished) = (_counted(r) for r in simulated.regencies)
    assert counts == again
    assert published == republished
    # each month is closed once every event of it is counted: published once, never revised
    assert sorted(published) == [(period, 1) for period in simulated.summaries[0].periods]
    names = {t.split(".")[2] for t in counts}
    for kind in ("ClientRegistered", "ClientScreened", "ClientEnrolled", "SessionHeld", "ReferredToClinic",
                 "ReferralAccepted", "ReferralDeclined", "ReferralEscalated",
                 "AggregateReported"):  # fmt: skip
        assert kind in names, f"no {kind} in {counts}"
    first, second = (s.regencies[0].reported for s in simulated.summaries)
    assert first == second


def test_a_paced_run_keeps_to_its_speed_and_does_the_same(simulated: Simulated) -> None:
    unpaced, paced = simulated.paces
    assert paced.commands == unpaced.commands > 100
    seconds = simulated.summaries[1].seconds
    assert seconds >= (paced.commands - 1) / PACED, (paced.commands, seconds)
    # the same events and figures as the unpaced run: test_the_same_seed_gives_the_same_event_counts


def test_the_summary_is_what_the_reporting_api_says(simulated: Simulated) -> None:
    summary = simulated.summaries[0]
    regency = simulated.regencies[0]
    answer = httpx.get(
        f"{regency.url('reporting')}/v1/indicators",
        params={"level": "regency", "by": "month", "from": summary.periods[0], "to": summary.periods[-1]},
        headers={"Authorization": f"Bearer {FACILITATOR}"},
    )
    api = {row["period"]: row["indicators"] for row in answer.json()["rows"]}
    assert summary.regencies[0].reported == api
    assert summary.regencies[0].differences() == {}
    assert sum(summary.totals(REGENCY).values()) > 0


def test_every_event_is_valid_and_carries_no_identity(simulated: Simulated) -> None:
    assert len(simulated.people) > 10
    for regency in simulated.regencies:
        raw = asyncio.run(_stream(regency))
        for data in raw:
            parse_event(data)  # raises on anything the contracts refuse
        stream = b"\n".join(raw)
        for who in simulated.people:
            for value in (who.full_name, who.nik, who.phone, who.address):
                assert value.encode() not in stream, f"{value!r} is in the stream"


def test_a_second_run_goes_on_with_the_follow_ups_the_first_left_open(simulated: Simulated) -> None:
    """(Last: it moves the first regency's clocks on.) A discharge leaves two follow-ups open (+3
    and +6 months), none due within the two months simulated; a second run's units plan them all."""
    regency = simulated.regencies[0]
    counts, _ = _counted(regency)
    discharged = counts["pulih.rehab.ClientDischarged.v1"]
    open_ = 2 * discharged - counts["pulih.rehab.FollowUpRecorded.v1"]
    assert discharged > 0 and open_ > 0, counts

    async def carried() -> list[regency_module.Due]:
        async with httpx.AsyncClient(timeout=60) as http:
            place = ServicePlace(REGENCY, dict(regency.ports), regency.data_dir)
            api = RegencyApi(place, DEV_JWT_SECRET, http, running="the test's regency")
            sim = regency_module.RegencySim(api, REGENCY, [CLINIC], BUSY, 4, seed=5)
            await sim.prepare(first)
            return [due for unit in sim.units for due in unit.due if due.kind == "follow_up"]

    first = next_month(date.fromisoformat(f"{simulated.summaries[0].periods[-1]}-01"))
    follow_ups = asyncio.run(carried())
    assert len(follow_ups) == open_
    assert all(due.on >= first for due in follow_ups)
