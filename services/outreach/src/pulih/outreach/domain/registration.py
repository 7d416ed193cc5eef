"""The date rules of a client's registration, screening and erasure.

Dates are the regency's local days, never after its today (a day of slack) nor before 1900; a
client is not registered before their unit was established nor before they were born, screened
before they were registered (EVENTS.md: "registration before screening"), or erased before they
were registered. Pure.
"""

from __future__ import annotations

from datetime import date

from pulih.kit.dates import not_before, not_in_future


def check_registration(registered_on: date, established_on: date, today: date) -> None:
    """A client is registered in an established unit, and not after today."""
    not_in_future(registered_on, today, "registered_on")
    not_before(registered_on, established_on, "registered_on", "unit")


def check_birth_date(birth_date: date, today: date) -> None:
    """A birth date lies between 1900 and the regency's today (field ``birth_date``)."""
    not_in_future(birth_date, today, "birth_date")


def check_screening_date(screened_on: date, registered_on: date, trained_on: date, today: date) -> None:
    """A client is screened after being registered, by an agent already trained, and not after
    today."""
    not_in_future(screened_on, today, "screened_on")
    not_before(screened_on, registered_on, "screened_on", "registration")
    not_before(screened_on, trained_on, "screened_on", "training")


def check_erasure(on: date, registered_on: date, today: date) -> None:
    """A client is erased after being registered, and not after today."""
    not_in_future(on, today, "on")
    not_before(on, registered_on, "on", "registration")
