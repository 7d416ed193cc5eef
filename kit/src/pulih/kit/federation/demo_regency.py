"""A regency in ``pulih federation demo`` is a regency of the simulator
(:class:`pulih.kit.simulate.regency.RegencySim`) at the demo's size (:mod:`.demo_data`)."""

from __future__ import annotations

from pulih.kit.federation.demo_data import Profile, demo_scenario
from pulih.kit.federation.topology import Regency
from pulih.kit.simulate.api import RegencyApi
from pulih.kit.simulate.months import next_month, weeks
from pulih.kit.simulate.regency import SETTLE_SECONDS, RegencySim

__all__ = ["SETTLE_SECONDS", "demo_regency", "next_month", "weeks"]


def demo_regency(api: RegencyApi, regency: Regency, size: Profile, seed: int) -> RegencySim:
    """The simulated regency the demo fills."""
    return RegencySim(api, regency.code, list(regency.clinics), demo_scenario(size), size.units, seed)
