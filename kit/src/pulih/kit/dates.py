"""The date rules every service applies to what it is told (EVENTS.md, "dates").

- Dates are the regency's local days.
- No date lies after the regency's clock; one day of slack absorbs a device whose clock or time
  zone is a little ahead (a session recorded just after midnight in Jayapura).
- Nothing is dated before what it depends on: registration before screening, a referral before
  its answers, an enrolment before its sessions, a unit before its agents.

Pure functions: they raise :class:`~pulih.kit.errors.Invalid` naming the field.
"""

from __future__ import annotations

from datetime import date, timedelta

from pulih.kit.errors import Invalid

SLACK = timedelta(days=1)
"""How far past the regency's today a date may lie."""

EARLIEST = date(1900, 1, 1)
"""No date Pulih records lies before this (a birth date in 1800 is a typing mistake)."""


def not_in_future(day: date, today: date, field: str) -> date:
    """``day`` unless it lies after the regency's today (plus :data:`SLACK`): 422 ``date_in_future``."""
    if day > today + SLACK:
        raise Invalid("date_in_future", f"{field} {day} is after today ({today}) in the regency", field)
    if day < EARLIEST:
        raise Invalid("date_too_early", f"{field} {day} is before {EARLIEST}", field)
    return day


def not_before(day: date, earliest: date, field: str, what: str, code: str | None = None) -> date:
    """``day`` unless it lies before ``earliest``, the date of ``what`` it depends on:
    422 ``<code>`` (default ``date_before_<what>``)."""
    if day < earliest:
        raise Invalid(
            code or f"date_before_{what.replace(' ', '_')}",
            f"{field} {day} is before the {what} ({earliest})",
            field,
        )
    return day
