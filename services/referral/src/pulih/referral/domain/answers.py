"""A clinic's answer to a referral: whose answer counts, and what it does to the referral.

Only the clinic the referral is addressed to may answer, never before the referral was made, and
only with a legal step of the life cycle (:mod:`.lifecycle`); anything else is refused with a
domain error and changes nothing. The answers are the clinic's own events (``contracts``), the
same over NATS and over HTTP. Everything here is pure.
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
    def state(self) -> ReferralStatus: ...


def answered_on(answer: ClinicAnswer) -> date:
    """The day the answer speaks of (an acceptance's ``accepted_on``, the others' ``on``)."""
    return answer.accepted_on if isinstance(answer, ReferralAccepted) else answer.on


def step_for(
    referral: AnsweredReferral | None, referral_id: UUID, clinic_id: str, answer: ClinicAnswer
) -> Transition:
    """What ``answer`` from ``clinic_id`` does to ``referral``.

    Refused: an unknown referral (404 ``unknown_referral``), another clinic's referral (403
    ``other_clinic``), an answer dated before the referral (422 ``answer_before_referral``), a
    step the life cycle does not allow (409 :class:`~.lifecycle.IllegalTransition`, maybe
    ``premature``).
    """
    if referral is None:
        raise NotFound("unknown_referral", f"no referral {referral_id}")
    if referral.clinic_id != clinic_id:
        raise Forbidden("other_clinic", "this referral is addressed to another clinic")
    if answered_on(answer) < referral.referred_on:
        raise Invalid("answer_before_referral", "an answer cannot predate the referral")
    status = referral.state
    if isinstance(answer, ReferralAccepted):
        return lifecycle.accept(status)
    if isinstance(answer, ReferralDeclined):
        return lifecycle.decline(status)
    if isinstance(answer, ClientAttended):
        return lifecycle.attend(status)
    return lifecycle.complete(status, answer.outcome, answer.back_referral)
