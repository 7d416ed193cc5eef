"""How big each regency of ``pulih federation demo`` is; its people are the simulator's
(:mod:`pulih.kit.simulate.people`).

The first regency named is a large one (most of its monthly figures are published), the second a
middling one, the third a small one (most of its figures fall under the suppression threshold of
5 and are published as null), and so on round.
"""

from __future__ import annotations

from dataclasses import dataclass

from pulih.kit.simulate.people import month_random, person
from pulih.kit.simulate.scenario import Scenario, load_scenario

__all__ = ["PROFILES", "Profile", "demo_scenario", "month_random", "person", "profile"]


@dataclass(frozen=True)
class Profile:
    """How big a regency of the demo is: its units (three agents each) and its new clients a month."""

    units: int
    clients_per_month: int


PROFILES = (Profile(units=3, clients_per_month=24), Profile(units=2, clients_per_month=12), Profile(1, 5))
"""Large, middling, small: the demo's regencies take these in turn."""


def profile(index: int) -> Profile:
    """The size of the ``index``-th regency named (0-based)."""
    return PROFILES[index % len(PROFILES)]


def demo_scenario(size: Profile) -> Scenario:
    """The simulator's default scenario at the demo's size: three agents a unit, everyone
    consenting, a third low risk and a sixth high, most high-risk clients referred and most
    referrals answered (the demo fills a month or three, so its national view shows referrals)."""
    raw = load_scenario().model_dump()
    raw["units"]["agents"] = (3, 3)
    raw["clients"].update(per_unit_month=size.clients_per_month / size.units, consent=1.0)
    raw["risk"].update(low=0.35, moderate=0.47, high=0.18)
    raw["enrolment"].update(low=0.3, moderate=0.85)
    raw["referral"].update(high=0.85, moderate=0.0)
    raw["clinic"].update(accepted=0.9, declined=0.0, late=0.0, silent=0.1)
    return Scenario.model_validate(raw)
