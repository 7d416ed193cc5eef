"""The rules of a client's consent: its dates, its withdrawal, and what it allows.

A consent says which scopes the client agreed to (``programme``, ``referral``,
``identity_to_clinic``), from when, until when, and whether it was withdrawn; when a consent
holds is :class:`pulih.contracts.consent.ConsentTerms`' rule, shared by every service.

A consent is not given after the regency's today, nor before the client was registered; it may
expire on any later day (an expiry is a date in the future by nature). A withdrawal is not dated
after today nor before the consent was given.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from pulih.contracts.consent import ConsentTerms
from pulih.kit.dates import not_before, not_in_future
from pulih.kit.errors import Conflict, Gone, Invalid


def check_terms(given_on: date, expires_on: date | None, registered_on: date, today: date) -> None:
    """A consent is given between the client's registration and today, and cannot expire before
    it is given."""
    not_in_future(given_on, today, "given_on")
    not_before(given_on, registered_on, "given_on", "registration")
    if expires_on is not None:
        check_expiry(given_on, expires_on)


def check_expiry(given_on: date, expires_on: date) -> None:
    """A consent cannot expire before it is given (the request body checks it too)."""
    if expires_on < given_on:
        raise Invalid("expires_before_given", "consent cannot expire before it is given", "expires_on")


def check_withdrawal(terms: ConsentTerms, on: date, today: date) -> None:
    """A consent is withdrawn once, not after today, and not before it was given."""
    if terms.withdrawn_on is not None:
        raise Conflict("consent_withdrawn", "this consent was already withdrawn")
    not_in_future(on, today, "on")
    if on < terms.given_on:
        raise Invalid("withdrawn_before_given", "a consent cannot be withdrawn before it was given", "on")


def require_consent_to_screen(consents: Iterable[ConsentTerms], on: date) -> None:
    """Screening needs a consent that holds on the day (registration with consent first)."""
    if not any(terms.allows(None, on) for terms in consents):
        raise Conflict("consent_required", "record the client's consent before screening")


def not_erased(erased_on: date | None) -> None:
    """Nothing more is recorded about an erased client."""
    if erased_on is not None:
        raise Gone("client_erased", "this client was erased")
