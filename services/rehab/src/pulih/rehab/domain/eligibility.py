"""Who may start the programme (penerimaan awal, intake): the rules enrolment checks.

A client is enrolled only if outreach has not erased them, they are not in the programme
already, their most recent WHO ASSIST screening up to the enrolment day is recent enough (the
programme's ``screening_valid_days``) and recommends the programme, and a consent for the
programme holds on that day. Each refusal is a conflict (409) with its own code, checked in that
order; an enrolment dated before the client's first screening is a mistake in the date (422).
Pure: it takes the facts, the caller loads them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from pulih.contracts.codes import ConsentScope, Recommendation
from pulih.contracts.consent import ConsentTerms
from pulih.kit.dates import not_before
from pulih.kit.errors import Conflict
from pulih.rehab.domain.programme import Programme


class NotEligible(Conflict):
    """The client may not be enrolled (yet): the code says why."""


@dataclass(frozen=True)
class ScreeningOutcome:
    """What a screening concluded, as far as enrolment cares."""

    screened_on: date
    recommendation: Recommendation


def check_may_enrol(
    programme: Programme,
    *,
    enrolled_on: date,
    erased: bool,
    already_enrolled: bool,
    screening: ScreeningOutcome | None,
    first_screened_on: date | None,
    consents: Iterable[ConsentTerms],
) -> None:
    """Raise :class:`NotEligible` unless the client may be enrolled on ``enrolled_on``.

    ``screening`` is the client's latest up to that day, ``first_screened_on`` the day of their
    first screening ever; ``consents`` every consent they gave.
    """
    if erased:
        raise NotEligible("client_erased", "this client was erased")
    if already_enrolled:
        raise NotEligible("already_enrolled", "this client is already in the programme")
    if screening is None and first_screened_on is not None:
        not_before(enrolled_on, first_screened_on, "enrolled_on", "screening")
    if screening is None:
        raise NotEligible(
            "not_screened",
            "rehab has not heard of a WHO ASSIST screening of this client: screen them before "
            "enrolling them, or, if outreach screened them just now, send the request again in a "
            "moment or send Pulih-After with the event ids outreach answered in Pulih-Events",
        )
    age = (enrolled_on - screening.screened_on).days
    if age > programme.screening_valid_days:
        raise NotEligible(
            "screening_too_old",
            f"the screening of {screening.screened_on} is {age} days old (the programme takes one "
            f"of at most {programme.screening_valid_days} days): screen the client again",
        )
    if screening.recommendation not in programme.enrol_after:
        raise NotEligible(
            "recommendation_not_programme",
            f"the screening of {screening.screened_on} recommends {screening.recommendation}: "
            "refer the client to a clinic first",
        )
    if not any(c.allows(ConsentScope.PROGRAMME, enrolled_on) for c in consents):
        raise NotEligible(
            "consent_required", "the client has no valid consent for the programme on that date"
        )
