"""Cancelling a referral: by the unit (the route), or because the client withdrew the consent
that allowed it (the outreach consumer). Either way it closes as ``cancelled``, so rehab resumes
the client's enrolment where it paused."""

from __future__ import annotations

from datetime import date

from pulih.contracts.codes import CancelReason, ReferralOutcome
from pulih.contracts.events.referral import ReferralCancelled, ReferralClosed
from pulih.referral import domain
from pulih.referral.clinic_answers import Emit
from pulih.referral.store import Referral


async def cancel(referral: Referral, on: date, reason: CancelReason, emit: Emit) -> None:
    """Cancel an open referral on ``on``; :class:`domain.IllegalTransition` if it is not open."""
    step = domain.cancel(referral.state)
    referral.status = step.status.value
    referral.cancel_reason = reason.value
    referral.closed_on = on
    referral.outcome = ReferralOutcome.CANCELLED.value
    referral.back_referral = False
    await emit(
        ReferralCancelled(
            referral_id=referral.referral_id, clinic_id=referral.clinic_id, on=on, reason=reason
        )
    )
    await emit(
        ReferralClosed(
            referral_id=referral.referral_id,
            clinic_id=referral.clinic_id,
            on=on,
            outcome=ReferralOutcome.CANCELLED,
            back_referral=False,
        )
    )
