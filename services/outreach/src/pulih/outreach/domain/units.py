"""The rules of units and their recovery agents (Agen Pemulihan)."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from pulih.kit.errors import Conflict, Invalid


def check_village(village_code: str, regency: str) -> None:
    """A unit is established in a village of the deployment's own regency."""
    if not village_code.startswith(regency):
        raise Invalid(
            "village_outside_regency",
            f"village {village_code} is not in regency {regency}",
            "village_code",
        )


def check_deactivation(agent_id: UUID, active: bool, trained_on: date, on: date) -> None:
    """An agent leaves once, and not before being trained."""
    if not active:
        raise Conflict("agent_inactive", f"agent {agent_id} is already deactivated")
    if on < trained_on:
        raise Invalid("before_training", "an agent cannot leave before being trained", "on")
