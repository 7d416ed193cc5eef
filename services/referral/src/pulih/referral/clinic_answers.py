"""Applying a clinic's answer to a referral: the one path for answers over NATS and over HTTP.

Only the clinic the referral is addressed to may answer, and only with a legal transition
(:mod:`pulih.referral.domain`); anything else is refused and changes nothing. When the referral
ends, ``ReferralClosed`` is always emitted: rehab resumes, continues or discharges the client
on it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pulih.contracts import Event
from pulih.contracts.events.clinic import (
    ClientAttended,
    ReferralAccepted,
    ReferralDeclined,
    TreatmentCompleted,
)
from pulih.contracts.events.referral import ReferralClosed, ReferralEscalated
from pulih.referral import domain
from pulih.referral.store import Referral

security_log = logging.getLogger("pulih.referral.security")

ClinicEvent = ReferralAccepted | ReferralDeclined | ClientAttended | TreatmentCompleted
Emit = Callable[[Event], Awaitable[Any]]


class AnswerRefused(Exception):
    """A clinic's answer that must not be applied.

    ``code`` is ``unknown_referral``, ``other_clinic``, ``illegal_transition`` or
    ``answer_before_referral``; ``premature`` marks an illegal transition that an earlier answer,
    not applied yet, would make legal.
    """

    def __init__(self, code: str, message: str, *, premature: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.premature = premature


def _answered_on(answer: ClinicEvent) -> Any:
    return answer.accepted_on if isinstance(answer, ReferralAccepted) else answer.on


def _transition(referral: Referral, answer: ClinicEvent) -> domain.Transition:
    status = referral.state
    if isinstance(answer, ReferralAccepted):
        return domain.accept(status)
    if isinstance(answer, ReferralDeclined):
        return domain.decline(status)
    if isinstance(answer, ClientAttended):
        return domain.attend(status)
    return domain.complete(status, answer.outcome, answer.back_referral)


def refuse(clinic_id: str, answer: ClinicEvent, code: str, message: str) -> AnswerRefused:
    """Log a refused answer as a security event (ids and codes only, never an identity)."""
    security_log.warning(
        "refused clinic answer",
        extra={
            "clinic_id": clinic_id,
            "referral_id": str(answer.referral_id),
            "answer": type(answer).__name__,
            "refusal": code,
        },
    )
    return AnswerRefused(code, message)


async def apply_answer(session: AsyncSession, clinic_id: str, answer: ClinicEvent, emit: Emit) -> Referral:
    """Apply ``answer`` from ``clinic_id`` in the caller's transaction, emitting what follows.

    Raises :class:`AnswerRefused` (after a security log line) when it must not be applied.
    """
    referral = await session.get(Referral, answer.referral_id)
    if referral is None:
        raise refuse(clinic_id, answer, "unknown_referral", f"no referral {answer.referral_id}")
    if referral.clinic_id != clinic_id:
        raise refuse(clinic_id, answer, "other_clinic", "this referral is addressed to another clinic")
    on = _answered_on(answer)
    if on < referral.referred_on:
        raise refuse(clinic_id, answer, "answer_before_referral", "an answer cannot predate the referral")
    try:
        step = _transition(referral, answer)
    except domain.IllegalTransition as exc:
        if exc.premature:
            raise AnswerRefused("illegal_transition", str(exc), premature=True) from None
        raise refuse(clinic_id, answer, "illegal_transition", str(exc)) from None

    referral.status = step.status.value
    if isinstance(answer, ReferralAccepted):
        referral.accepted_on = answer.accepted_on
        referral.appointment_on = answer.appointment_on
    elif isinstance(answer, ReferralDeclined):
        referral.decline_reason = answer.reason.value
    elif isinstance(answer, ClientAttended):
        referral.attended_on = answer.on
    if step.escalates is not None:
        referral.escalated = True
        referral.escalated_on = on
        referral.escalation_reason = step.escalates.value
        await emit(
            ReferralEscalated(
                referral_id=referral.referral_id, clinic_id=clinic_id, on=on, reason=step.escalates
            )
        )
    if step.closes_with is not None:
        referral.closed_on = on
        referral.outcome = step.closes_with.value
        referral.back_referral = step.back_referral
        await emit(
            ReferralClosed(
                referral_id=referral.referral_id,
                clinic_id=clinic_id,
                on=on,
                outcome=step.closes_with,
                back_referral=step.back_referral,
            )
        )
    await session.flush()
    return referral
