"""The life of a simulated regency: a story per IBM unit and per client.

Calibrated on SEED-FACTS.md: units of 5 agents, about 8 clients per unit per 16-week cohort,
risk mostly low or moderate, high risk and injecting referred to a clinic (``regency_care``),
outreach most weeks, an agent leaving now and then. Every draw comes from the world's one
``random.Random``: the same seed tells the same story.
"""

from __future__ import annotations

import math
import random
import uuid
from datetime import date

from regency_care import programme_story, referral_story
from regency_world import WEEK, Planned, Spawn, Story, Unit, World

from pulih.contracts.events.outreach import (
    AgentDeactivated,
    AgentRegistered,
    ClientRegistered,
    ClientScreened,
    ConsentRecorded,
    OutreachActivityRecorded,
    SubstanceResult,
    UnitEstablished,
)

CLIENTS_PER_WEEK = 8 / 16
"""About 8 clients per unit per 16-week cohort (2,396 clients in 306 units, SEED-FACTS.md)."""
_MAIN_SUBSTANCES = {
    "amphetamine_type_stimulants": 45,
    "cannabis": 25,
    "alcohol": 15,
    "sedatives": 7,
    "inhalants": 5,
    "opioids": 3,
}
_PEOPLE_REACHED = {"penjangkauan": (1, 12), "sosialisasi": (15, 120), "pemetaan": (0, 10)}


def unit_story(world: World, unit: Unit, name: str, established_on: date) -> Story:
    """A unit is set up with 5 trained agents, holds outreach most weeks, registers about one
    client every two weeks, and loses an agent now and then (replaced a few weeks later)."""
    rng = world.rng
    yield Planned(
        established_on,
        UnitEstablished(
            unit_id=unit.unit_id, name=name, village_code=unit.village_code, established_on=established_on
        ),
    )
    for _ in range(5):
        yield _agent_joins(world, unit, established_on, established_on - world.days(3, 20))
    week, replace_on = established_on, None
    while week <= world.end:
        if replace_on is not None and replace_on <= week:
            yield _agent_joins(world, unit, week, week - world.days(0, 6))
            replace_on = None
        if world.chance(0.85):
            kind = world.pick({"penjangkauan": 60, "sosialisasi": 25, "pemetaan": 15})
            held_on = week + world.days(0, 6)
            yield Planned(
                held_on + world.days(0, 2) if world.chance(0.2) else held_on,
                OutreachActivityRecorded(
                    activity_id=world.uuid(),
                    unit_id=unit.unit_id,
                    agent_id=rng.choice(unit.agents),
                    kind=kind,
                    held_on=held_on,
                    people_reached=rng.randint(*_PEOPLE_REACHED[kind]),
                ),
            )
        for _ in range(_poisson(rng, CLIENTS_PER_WEEK)):
            registered_on = week + world.days(0, 6)
            yield Spawn(registered_on, client_story(world, unit, registered_on))
        if replace_on is None and world.chance(0.02):
            agent_id = unit.agents.pop(rng.randrange(len(unit.agents)))
            reason = world.pick({"resigned": 40, "moved": 30, "inactive": 20, "other": 10})
            yield Planned(
                week, AgentDeactivated(agent_id=agent_id, unit_id=unit.unit_id, on=week, reason_code=reason)
            )
            replace_on = week + world.days(14, 60)
        week += WEEK


def _agent_joins(world: World, unit: Unit, publish_on: date, trained_on: date) -> Planned:
    agent_id = world.uuid()
    unit.agents.append(agent_id)
    return Planned(
        publish_on, AgentRegistered(agent_id=agent_id, unit_id=unit.unit_id, trained_on=trained_on)
    )


def _poisson(rng: random.Random, mean: float) -> int:
    count, threshold, product = 0, math.exp(-mean), rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def client_story(world: World, unit: Unit, registered_on: date) -> Story:
    """Registration, consent and an ASSIST screening; then the 16-week programme (moderate risk
    mostly, low risk sometimes) or a clinic (high risk, injecting)."""
    client_id = world.uuid()
    yield Planned(
        registered_on,
        ClientRegistered(
            client_id=client_id,
            unit_id=unit.unit_id,
            registered_on=registered_on,
            sex="m" if world.chance(0.86) else "f",
            age_band=world.pick({"under_15": 3, "15_24": 35, "25_34": 35, "35_44": 18, "45_plus": 9}),
            came_through=world.pick({"outreach": 45, "self": 10, "family": 25, "community": 20}),
        ),
    )
    consent_id = world.uuid()
    referral_consent = world.chance(0.75)
    scopes = ["programme", "referral"] if referral_consent else ["programme"]
    if referral_consent and world.chance(0.5):
        scopes.append("identity_to_clinic")
    yield Planned(
        registered_on,
        ConsentRecorded(consent_id=consent_id, client_id=client_id, scopes=scopes, given_on=registered_on),
    )
    screened_on = registered_on + world.days(0, 3)
    risk = world.pick({"low": 42, "moderate": 44, "high": 14})
    injected = world.chance({"low": 0.0, "moderate": 0.03, "high": 0.35}[risk])
    yield Planned(screened_on, _screening(world, unit, client_id, screened_on, risk, injected))
    if risk == "high" or injected:
        if not referral_consent:
            consent_id = world.uuid()
            yield Planned(
                screened_on,
                ConsentRecorded(
                    consent_id=consent_id, client_id=client_id, scopes=["referral"], given_on=screened_on
                ),
            )
        reason = "injecting" if injected else "high_risk"
        yield from referral_story(world, unit, client_id, consent_id, screened_on + world.days(0, 2), reason)
    elif world.chance(0.9 if risk == "moderate" else 0.35):
        yield from programme_story(
            world, unit, client_id, screened_on + world.days(1, 6), consent_id if referral_consent else None
        )


def _screening(
    world: World, unit: Unit, client_id: uuid.UUID, on: date, risk: str, injected: bool
) -> ClientScreened:
    main = world.pick(_MAIN_SUBSTANCES)
    results = [SubstanceResult(substance=main, score=_score(world.rng, main, risk), risk=risk)]
    if world.chance(0.6):
        tobacco = "low" if risk == "low" else world.pick({"low": 1, "moderate": 1})
        results.append(
            SubstanceResult(substance="tobacco", score=_score(world.rng, "tobacco", tobacco), risk=tobacco)
        )
    if main != "alcohol" and world.chance(0.3):
        results.append(
            SubstanceResult(substance="alcohol", score=_score(world.rng, "alcohol", "low"), risk="low")
        )
    if risk == "high" or injected:
        recommendation = "referral"
    else:
        recommendation = "ibm_programme" if risk == "moderate" else "advice"
    return ClientScreened(
        screening_id=world.uuid(),
        client_id=client_id,
        unit_id=unit.unit_id,
        agent_id=world.rng.choice(unit.agents),
        screened_on=on,
        instrument="assist_v3",
        substances=results,
        injected_last_3_months=injected,
        overall_risk=risk,
        recommendation=recommendation,
    )


def _score(rng: random.Random, substance: str, risk: str) -> int:
    """An ASSIST involvement score in the band of ``risk`` (alcohol's low band is wider)."""
    low_top = 10 if substance == "alcohol" else 3
    low, high = {"low": (0, low_top), "moderate": (low_top + 1, 26), "high": (27, 39)}[risk]
    return rng.randint(low, high)
