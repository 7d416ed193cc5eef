"""The rules of units and their recovery agents (Agen Pemulihan), and their dates.

EVENTS.md's "unit before its agents" is read as: an agent may be trained before the unit is set
up (the BNNK trains villagers, then establishes their unit), but nothing an agent does *in* the
unit is dated before the unit was established or before the agent was trained: outreach held,
a client registered or screened, the agent leaving.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

from pulih.kit.dates import not_before, not_in_future
from pulih.kit.errors import Conflict, Invalid


def check_village(village_code: str, regency: str) -> None:
    """A unit is established in a village of the deployment's own regency."""
    if not village_code.startswith(regency):
        raise Invalid(
            "village_outside_regency",
            f"village {village_code} is not in regency {regency}",
            "village_code",
        )


def check_established(established_on: date, today: date) -> None:
    """A unit is not established after the regency's today."""
    not_in_future(established_on, today, "established_on")


def check_training(trained_on: date, today: date) -> None:
    """An agent is not trained after the regency's today (nor before 1900)."""
    not_in_future(trained_on, today, "trained_on")


def check_deactivation(
    agent_id: UUID, active: bool, trained_on: date, established_on: date, on: date, today: date
) -> None:
    """An agent leaves once, not after today, and not before being trained or before the unit
    was established."""
    if not active:
        raise Conflict("agent_inactive", f"agent {agent_id} is already deactivated")
    not_in_future(on, today, "on")
    if on < trained_on:
        raise Invalid("before_training", "an agent cannot leave before being trained", "on")
    not_before(on, established_on, "on", "unit")


def check_work_date(day: date, field: str, established_on: date, trained_on: date, today: date) -> None:
    """Work an agent records in the unit (outreach held, a screening) is not dated after today,
    before the unit was established or before the agent was trained."""
    not_in_future(day, today, field)
    not_before(day, established_on, field, "unit")
    not_before(day, trained_on, field, "training")
