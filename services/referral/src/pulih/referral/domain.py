"""The referral's rules as pure functions: its life cycle, when a clinic must answer, consent.

The life cycle follows FHIR Task::

    referred ──► accepted ──► attended ──► completed
        │            │            │
        │            └────────────┴──► completed (dropped_out: accepted, never came)
        ├──► declined                  (escalated, closed)
        └──► cancelled  (also from accepted and attended; closed)

Every answer that does not fit (a second accept, completion before acceptance, anything after
the referral closed) is an :class:`IllegalTransition`: it changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from pulih.contracts.codes import (
    ClinicService,
    EscalationReason,
    ReferralOutcome,
    TreatmentOutcome,
    Urgency,
)


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


class ClinicKind(StrEnum):
    """Kinds of clinic a unit refers to.

    ``klinik_pratama``: primary clinic. ``balai`` and ``loka``: BNN's own rehabilitation centres
    (large and small). ``rumah_sakit``: hospital. ``puskesmas_ipwl``: community health centre
    registered as an IPWL (*Institusi Penerima Wajib Lapor*, where drug users report for
    treatment). ``sosial``: a social-rehabilitation institution.
    """

    KLINIK_PRATAMA = "klinik_pratama"
    BALAI = "balai"
    LOKA = "loka"
    RUMAH_SAKIT = "rumah_sakit"
    PUSKESMAS_IPWL = "puskesmas_ipwl"
    SOSIAL = "sosial"


class IllegalTransition(Exception):
    """An answer or command that does not fit the referral's status: it changes nothing.

    ``premature`` says it would fit once an earlier answer arrives (attended before accepted,
    completed before attended): a message consumer should retry it later, since messages can
    overtake each other on redelivery, and give up only after its last attempt.
    """

    def __init__(self, status: ReferralStatus, attempted: str, *, premature: bool = False) -> None:
        super().__init__(f"a referral that is {status.value} cannot be {attempted}")
        self.status = status
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


@dataclass(frozen=True)
class ResponseTimes:
    """Days a clinic has to answer a referral, by urgency (DOMAIN.md: *configurable*)."""

    days: Mapping[Urgency, int]

    @classmethod
    def from_programme(cls, programme: Mapping[str, Any]) -> ResponseTimes:
        """Read ``[referral] respond_within_days`` of the programme file."""
        try:
            table = programme["referral"]["respond_within_days"]
            days = {urgency: int(table[urgency.value]) for urgency in Urgency}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                "the programme file needs [referral] respond_within_days = { routine = N, urgent = N }"
            ) from exc
        if any(d < 0 for d in days.values()):
            raise ValueError("respond_within_days cannot be negative")
        return cls(days)

    def respond_by(self, referred_on: date, urgency: Urgency) -> date:
        """The last day the clinic may answer a referral made on ``referred_on``."""
        return referred_on + timedelta(days=self.days[urgency])


def overdue(status: ReferralStatus, respond_by: date, today: date, escalated: bool) -> bool:
    """Whether an unanswered referral has passed its ``respond_by`` and is not escalated yet."""
    return status is ReferralStatus.REFERRED and not escalated and respond_by < today


def escalated_on(respond_by: date) -> date:
    """The day a referral without an answer becomes overdue: the day after ``respond_by``."""
    return respond_by + timedelta(days=1)


def offers(services: Iterable[str], service: ClinicService) -> bool:
    """Whether a clinic offering ``services`` can take a client referred for ``service``."""
    return service.value in set(services)
