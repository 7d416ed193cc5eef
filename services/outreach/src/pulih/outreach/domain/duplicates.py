"""Possible duplicate registrations: a NIK registered again. Pure.

Registration answers the same whether a NIK is already in the programme or not (201, a new
client), because an answer that differed would tell anyone with an agent login that a person
is a drug-programme client. The second registration is kept and flagged instead, and a
facilitator, who sees the whole regency, resolves the flag:

- ``different_people``: both registrations stand (a mistyped NIK, usually; correct it with the
  client);
- ``same_person``: the newer registration's identity is erased (its key destroyed,
  ``ClientErased`` published), so one sealed identity remains, the existing client's. What was
  recorded under the newer registration stays as pseudonymous history; new work goes on the
  existing client.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pulih.kit.errors import Conflict


class Resolution(StrEnum):
    """What a facilitator decided about a possible duplicate."""

    SAME_PERSON = "same_person"
    """One person registered twice: the newer registration's identity is erased."""
    DIFFERENT_PEOPLE = "different_people"
    """Two people: both registrations stand."""


def check_open(resolution: str | None, resolved_at: datetime | None) -> None:
    """A possible duplicate is resolved once: 409 ``duplicate_resolved`` after that."""
    if resolution is not None:
        raise Conflict(
            "duplicate_resolved", f"this possible duplicate was resolved ({resolution}) at {resolved_at}"
        )


def erases_newer(resolution: Resolution, newer_erased: bool) -> bool:
    """Whether resolving erases the newer registration's identity (not twice)."""
    return resolution is Resolution.SAME_PERSON and not newer_erased
