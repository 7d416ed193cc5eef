"""Who may be referred where, and on which consent: the rules a referral passes before it is made.

The handler loads the facts (the client as outreach's events describe them, the clinic of the
directory, the client's consents, screenings and referrals); these functions decide, in the
order a unit meets them, and say no with the code the unit sees. Everything here is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Protocol, TypeVar
from uuid import UUID

from pulih.contracts.codes import ClinicService, ConsentScope
from pulih.kit.dates import not_before, not_in_future
from pulih.kit.errors import Conflict, Forbidden, Gone, Invalid, NotFound
from pulih.referral.domain.clinics import offers, serves


class ReferableClient(Protocol):
    """What the rules read of a client: their unit, their registration, whether they were erased."""

    @property
    def unit_id(self) -> UUID: ...

    @property
    def registered_on(self) -> date: ...

    @property
    def erased_on(self) -> date | None: ...


class DirectoryEntry(Protocol):
    """What the rules read of a clinic of the directory."""

    @property
    def name(self) -> str: ...

    @property
    def services(self) -> Sequence[str]: ...

    @property
    def regencies(self) -> Sequence[str]: ...


class Consent(Protocol):
    """A consent the client gave, as the rules read it."""

    def allows(self, scope: str | None, day: date) -> bool: ...


class Screening(Protocol):
    """A screening of the client that recommended something."""

    @property
    def client_id(self) -> UUID: ...

    @property
    def screened_on(self) -> date: ...


C = TypeVar("C", bound=ReferableClient)
D = TypeVar("D", bound=DirectoryEntry)
K = TypeVar("K", bound=Consent)
S = TypeVar("S", bound=Screening)


def referral_day(requested: date | None, today: date, registered_on: date) -> date:
    """The day of a referral: today, or an earlier day a device recorded; never after the
    regency's today (422 ``date_in_future``) nor before the client's registration (422
    ``date_before_registration``), both on ``referred_on``."""
    referred_on = not_in_future(requested or today, today, "referred_on")
    return not_before(referred_on, registered_on, "referred_on", "registration")


def client_to_refer(client: C | None, client_id: UUID, may_see_unit: Callable[[UUID], bool]) -> C:
    """The client, if known here (404 ``client_not_found``), of a unit the caller works for
    (403 ``other_unit``) and not erased (410 ``client_erased``)."""
    if client is None:
        raise NotFound(
            "client_not_found",
            f"referral has not heard of client {client_id} (yet): if outreach registered them just "
            "now, send the request again in a moment, or send Pulih-After with the event ids "
            "outreach answered in Pulih-Events",
            "client_id",
        )
    if not may_see_unit(client.unit_id):
        raise Forbidden("other_unit", "agents refer their own unit's clients only", "client_id")
    if client.erased_on is not None:
        raise Gone("client_erased", "this client was erased")
    return client


def clinic_to_refer_to(clinic: D | None, clinic_id: str, regency: str, service: ClinicService) -> D:
    """The clinic, if in the directory (``unknown_clinic``), serving the regency
    (``clinic_out_of_area``) and offering the service (``service_not_offered``); all 422."""
    if clinic is None:
        raise Invalid("unknown_clinic", f"no clinic {clinic_id} in the directory", "clinic_id")
    if not serves(clinic.regencies, regency):
        raise Invalid("clinic_out_of_area", "this clinic does not serve the regency", "clinic_id")
    if not offers(clinic.services, service):
        raise Invalid("service_not_offered", f"{clinic.name} does not offer {service.value}", "service")
    return clinic


def screened_before(screening: Screening | None, referred_on: date, later: Screening | None = None) -> None:
    """A client is referred only after a screening on or before the referral's day: 422
    ``date_before_screening`` on ``referred_on`` if the client was screened only after that day
    (``later``), 409 ``not_screened`` if never."""
    if screening is not None:
        return
    if later is not None:
        not_before(referred_on, later.screened_on, "referred_on", "screening")
    raise Conflict(
        "not_screened",
        "referral has not heard of a screening of this client: screen them before referring them, "
        "or, if outreach screened them just now, send the request again in a moment or send "
        "Pulih-After with the event ids outreach answered in Pulih-Events",
    )


def consent_to_refer(consents: Iterable[K], referred_on: date) -> K:
    """The consent the referral rests on: one that covers ``referral`` on the referral's day
    (409 ``consent_required``)."""
    consent = next((c for c in consents if c.allows(ConsentScope.REFERRAL, referred_on)), None)
    if consent is None:
        raise Conflict("consent_required", "the client has no valid consent to be referred")
    return consent


def none_open(open_referral_id: UUID | None) -> None:
    """One open referral per client and clinic (409 ``referral_open``)."""
    if open_referral_id is not None:
        raise Conflict("referral_open", f"the client already has an open referral {open_referral_id} there")


def new_referral_id(referral_id: UUID, taken: bool) -> UUID:
    """A device-made referral id must be new (409 ``referral_exists``)."""
    if taken:
        raise Conflict("referral_exists", f"referral {referral_id} exists", "referral_id")
    return referral_id


def suggestions(screenings: Iterable[S], referred: Iterable[tuple[UUID, date]]) -> list[S]:
    """Of the screenings that recommend referral (in the order given, oldest first), each
    client's latest, unless the client was referred on or after it: a suggestion, which stays
    a human decision until someone refers."""
    latest: dict[UUID, S] = {}
    for screening in screenings:
        latest[screening.client_id] = screening
    made = list(referred)
    return [
        s
        for s in latest.values()
        if not any(client == s.client_id and on >= s.screened_on for client, on in made)
    ]
