"""A clinic's answer to a referral: whose answer counts, when it may be dated, and what it does to
the referral.

Only the clinic the referral is addressed to may answer; an answer is dated on a day that has
come (the regency's today, with the kit's day of slack), never before the referral, and never
before the answer it follows (attended on or after the acceptance, completed on or after the
attendance); an appointment is never before the acceptance. It must be a legal step of the life
cycle (:mod:`.lifecycle`). Anything else is refused with a domain error and changes nothing.

The clinic's identity is checked first, so a clinic answering another clinic's referral learns
only that it is not its own: never its dates nor its status. The answers are the clinic's own
events (``contracts``), the same over NATS and over HTTP. Everything here is pure.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol
from uuid import UUID

from pulih.contracts.events.clinic import (
    ClientAttended,
    ReferralAccepted,
    ReferralDeclined,
    TreatmentCompleted,
)
from pulih.kit.dates import not_before, not_in_future
from pulih.kit.errors import Forbidden, Invalid, NotFound
from pulih.referral.domain import lifecycle
from pulih.referral.domain.lifecycle import ReferralStatus, Transition

ClinicAnswer = ReferralAccepted | ReferralDeclined | ClientAttended | TreatmentCompleted
"""What a clinic says about a referral addressed to it."""


class AnsweredReferral(Protocol):
    """What the rules read of the referral answered."""

    @property
    def clinic_id(self) -> str: ...

    @property
    def referred_on(self) -> date: ...

    @property
    def accepted_on(self) -> date | None: ...

    @property
    def attended_on(self) -> date | None: ...

    @property
    def state(self) -> ReferralStatus: ...


def answered_on(answer: ClinicAnswer) -> date:
    """The day the answer speaks of (an acceptance's ``accepted_on``, the others' ``on``)."""
    return answer.accepted_on if isinstance(answer, ReferralAccepted) else answer.on


def day_field(answer: ClinicAnswer) -> str:
    """The name of the answer's day in its event (``accepted_on`` or ``on``)."""
    return "accepted_on" if isinstance(answer, ReferralAccepted) else "on"


def step_for(
    referral: AnsweredReferral | None,
    referral_id: UUID,
    clinic_id: str,
    answer: ClinicAnswer,
    today: date,
) -> Transition:
    """What ``answer`` from ``clinic_id`` does to ``referral``, on the regency's ``today``.

    Refused, in this order: an unknown referral (404 ``unknown_referral``); another clinic's
    referral (403 ``other_clinic``, and nothing more about it); a day after today (422
    ``date_in_future``) or before the referral (422 ``answer_before_referral``); an appointment
    before the acceptance (422 ``date_before_acceptance``); a step the life cycle does not allow
    (409 :class:`~.lifecycle.IllegalTransition`, maybe ``premature``); a day before the answer it
    follows (422 ``date_before_acceptance``, ``date_before_attendance``). Each 422 names the
    event's field.
    """
    if referral is None:
        raise NotFound("unknown_referral", f"no referral {referral_id}")
    if referral.clinic_id != clinic_id:
        raise Forbidden("other_clinic", "this referral is not addressed to you")
    day, field = answered_on(answer), day_field(answer)
    not_in_future(day, today, field)
    if day < referral.referred_on:
        raise Invalid("answer_before_referral", "an answer cannot predate the referral", field)
    if isinstance(answer, ReferralAccepted) and answer.appointment_on is not None:
        not_before(answer.appointment_on, answer.accepted_on, "appointment_on", "acceptance")
    step = _step(referral.state, answer)
    after_previous_answer(referral, answer)
    return step


def _step(status: ReferralStatus, answer: ClinicAnswer) -> Transition:
    if isinstance(answer, ReferralAccepted):
        return lifecycle.accept(status)
    if isinstance(answer, ReferralDeclined):
        return lifecycle.decline(status)
    if isinstance(answer, ClientAttended):
        return lifecycle.attend(status)
    return lifecycle.complete(status, answer.outcome, answer.back_referral)


def after_previous_answer(referral: AnsweredReferral, answer: ClinicAnswer) -> None:
    """An answer is never dated before the one it follows: attended on or after the acceptance,
    completed on or after the attendance (or, for a client accepted who never came, the
    acceptance). 422 ``date_before_acceptance`` or ``date_before_attendance`` on ``on``."""
    day = answered_on(answer)
    if isinstance(answer, ClientAttended) and referral.accepted_on is not None:
        not_before(day, referral.accepted_on, "on", "acceptance")
    elif isinstance(answer, TreatmentCompleted):
        if referral.attended_on is not None:
            not_before(day, referral.attended_on, "on", "attendance")
        elif referral.accepted_on is not None:
            not_before(day, referral.accepted_on, "on", "acceptance")
