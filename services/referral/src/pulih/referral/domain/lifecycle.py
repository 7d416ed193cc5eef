"""A referral's life cycle, after FHIR Task::

    referred ──► accepted ──► attended ──► completed
        │            │            │
        │            └────────────┴──► completed (dropped_out: accepted, never came)
        ├──► declined                  (escalated, closed)
        └──► cancelled  (also from accepted and attended; closed)

Every answer that does not fit (a second accept, completion before acceptance, anything after
the referral closed) is an :class:`IllegalTransition`: it changes nothing. Everything here is pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from pulih.contracts.codes import EscalationReason, ReferralOutcome, TreatmentOutcome
from pulih.kit.dates import not_before, not_in_future
from pulih.kit.errors import Conflict, Invalid


class ReferralStatus(StrEnum):
    """Where a referral stands (FHIR Task status, in the programme's words)."""

    REFERRED = "referred"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    ATTENDED = "attended"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


OPEN = frozenset({ReferralStatus.REFERRED, ReferralStatus.ACCEPTED, ReferralStatus.ATTENDED})
"""Statuses in which the clinic still has something to do."""


class IllegalTransition(Conflict):
    """An answer or command that does not fit the referral's status (409 ``illegal_transition``):
    it changes nothing.

    ``premature`` says it would fit once an earlier answer arrives (attended before accepted,
    completed before attended): a message consumer should retry it later, since messages can
    overtake each other on redelivery, and give up only after its last attempt.
    """

    def __init__(self, status: ReferralStatus, attempted: str, *, premature: bool = False) -> None:
        super().__init__("illegal_transition", f"a referral that is {status.value} cannot be {attempted}")
        self.referral_status = status  # ``status`` is the HTTP status of every kit error
        self.attempted = attempted
        self.premature = premature


@dataclass(frozen=True)
class Transition:
    """What an answer does: the new status and, if the referral ends, how it closes."""

    status: ReferralStatus
    closes_with: ReferralOutcome | None = None
    back_referral: bool = False
    escalates: EscalationReason | None = None


_STEP = {
    ReferralStatus.REFERRED: 0,
    ReferralStatus.ACCEPTED: 1,
    ReferralStatus.ATTENDED: 2,
    ReferralStatus.COMPLETED: 3,
}


def _from(status: ReferralStatus, allowed: Iterable[ReferralStatus], attempted: str) -> None:
    if status not in allowed:
        # an open referral that has not yet reached the step before this one
        ahead = status in OPEN and all(_STEP[status] < _STEP.get(a, -1) for a in allowed)
        raise IllegalTransition(status, attempted, premature=ahead)


def accept(status: ReferralStatus) -> Transition:
    """The clinic accepts a referral it has not answered yet."""
    _from(status, {ReferralStatus.REFERRED}, "accepted")
    return Transition(ReferralStatus.ACCEPTED)


def decline(status: ReferralStatus) -> Transition:
    """The clinic declines: the referral closes and the unit must find another way."""
    _from(status, {ReferralStatus.REFERRED}, "declined")
    return Transition(
        ReferralStatus.DECLINED,
        closes_with=ReferralOutcome.DECLINED,
        escalates=EscalationReason.DECLINED,
    )


def attend(status: ReferralStatus) -> Transition:
    """The client came to the clinic that accepted them."""
    _from(status, {ReferralStatus.ACCEPTED}, "attended")
    return Transition(ReferralStatus.ATTENDED)


def complete(status: ReferralStatus, outcome: TreatmentOutcome, back_referral: bool) -> Transition:
    """Treatment ended. Only a client who attended can have completed it; a client who was
    accepted but never came can only have dropped out."""
    if status is ReferralStatus.ACCEPTED and outcome is TreatmentOutcome.DROPPED_OUT:
        pass
    else:
        _from(status, {ReferralStatus.ATTENDED}, f"completed ({outcome.value})")
    return Transition(
        ReferralStatus.COMPLETED,
        closes_with=ReferralOutcome(outcome.value),
        back_referral=back_referral,
    )


def cancel(status: ReferralStatus) -> Transition:
    """The unit cancels a referral the clinic has not finished with."""
    _from(status, OPEN, "cancelled")
    return Transition(ReferralStatus.CANCELLED, closes_with=ReferralOutcome.CANCELLED)


def cancellation_day(on: date, referred_on: date, today: date, last_answer_on: date | None = None) -> date:
    """The day a unit cancels a referral: never after the regency's today (422 ``date_in_future``),
    never before the referral was made (422 ``cancelled_before_referral``) nor before the clinic's
    last answer (422 ``cancelled_before_answer``)."""
    not_in_future(on, today, "on")
    if on < referred_on:
        raise Invalid("cancelled_before_referral", "a cancellation cannot predate the referral", "on")
    if last_answer_on is not None:
        not_before(on, last_answer_on, "on", "clinic's last answer", code="cancelled_before_answer")
    return on


def cancelled_on_withdrawal(
    withdrawn_on: date, referred_on: date, last_answer_on: date | None = None
) -> date:
    """The day a withdrawn consent cancels a referral: the withdrawal's, unless the referral or
    the clinic's last answer came later (a withdrawal recorded late), then that day."""
    return max(d for d in (withdrawn_on, referred_on, last_answer_on) if d is not None)


def overdue(status: ReferralStatus, respond_by: date, today: date, escalated: bool) -> bool:
    """Whether an unanswered referral has passed its ``respond_by`` and is not escalated yet."""
    return status is ReferralStatus.REFERRED and not escalated and respond_by < today


def escalated_on(respond_by: date) -> date:
    """The day a referral without an answer becomes overdue: the day after ``respond_by``."""
    return respond_by + timedelta(days=1)
