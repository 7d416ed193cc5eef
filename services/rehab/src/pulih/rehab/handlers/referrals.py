"""What referral's events do to enrolments: a referral pauses the client's enrolment; its
closing resumes it, moves the client to aftercare (``back_referral``) or discharges them.

This is rehab's own reaction, chained after the kit's read model of referrals
(:data:`pulih.rehab.store.REFERRALS`) has noted the event: the referral row is there already,
and its client is known.

They use only the dates in the events, never today's: replaying the stream gives the same state.
"""

from __future__ import annotations

import uuid
from datetime import date

from pulih.contracts.codes import DischargeReason, ReferralOutcome
from pulih.contracts.events.referral import ReferralClosed, ReferredToClinic
from pulih.kit.consumers import NotReadyYet
from pulih.kit.unit_of_work import UnitOfWork
from pulih.rehab.domain.programme import Programme
from pulih.rehab.domain.timeline import (
    Status,
    discharge,
    pause,
    resume_in_aftercare,
    resume_where_paused,
)
from pulih.rehab.domain.timeline import enrol_in_aftercare as aftercare_only
from pulih.rehab.handlers.enrolments import start_enrolment
from pulih.rehab.progression import apply_changes, catch_up, store_timeline, timeline_of
from pulih.rehab.store import (
    OUTREACH,
    REFERRALS,
    Enrolment,
    KnownReferral,
    KnownScreening,
    open_enrolment,
)


async def pause_for_referral(uow: UnitOfWork, programme: Programme, referred: ReferredToClinic) -> None:
    """A client referred to a clinic: their active enrolment pauses (the time rules due by the
    referral day applied first)."""
    enrolment = await open_enrolment(uow.session, referred.client_id)
    if enrolment is None or enrolment.status != Status.ACTIVE.value:
        return
    await catch_up(uow, programme, enrolment, referred.referred_on)
    if enrolment.status == Status.ACTIVE.value:
        store_timeline(programme, enrolment, pause(timeline_of(enrolment), referred.referred_on))
        enrolment.paused_by_referral = referred.referral_id


async def resume_after_referral(uow: UnitOfWork, programme: Programme, closed: ReferralClosed) -> None:
    """A referral closed. Sent back (``back_referral``): the client goes on in aftercare (bina
    lanjut), enrolled in it if they never were. Otherwise the enrolment the referral paused
    resumes where it was (the clinic declined, the referral was cancelled) or ends (referred out
    when the clinic completed the treatment, dropped out otherwise)."""
    referral = await REFERRALS.referral(uow.session, closed.referral_id)
    enrolment = await open_enrolment(uow.session, referral.client_id)
    if enrolment is None:
        if closed.back_referral:
            await enrol_in_aftercare(uow, programme, referral, closed.on)
        return
    timeline = timeline_of(enrolment)
    if closed.back_referral:
        timeline, changes = resume_in_aftercare(programme, timeline, closed.on)
        await apply_changes(uow, programme, enrolment, timeline, changes)
    elif enrolment.paused_by_referral != closed.referral_id:
        return  # the enrolment was not waiting on this referral
    elif closed.outcome in (ReferralOutcome.DECLINED, ReferralOutcome.CANCELLED):
        store_timeline(programme, enrolment, resume_where_paused(timeline, closed.on))
    else:
        reason = (
            DischargeReason.REFERRED_OUT
            if closed.outcome is ReferralOutcome.COMPLETED
            else DischargeReason.DROPPED_OUT
        )
        timeline, change = discharge(timeline, closed.on, reason)
        await apply_changes(uow, programme, enrolment, timeline, [change])
    enrolment.paused_by_referral = None


async def enrol_in_aftercare(
    uow: UnitOfWork, programme: Programme, referral: KnownReferral, on: date
) -> Enrolment:
    """A client a clinic sent back who was never enrolled: aftercare only, with the agent who
    screened them."""
    screening = await OUTREACH.latest_screening(uow.session, referral.client_id)
    if not isinstance(screening, KnownScreening):  # None: no screening yet
        raise NotReadyYet(f"no screening of client {referral.client_id} yet to find their agent")
    timeline = aftercare_only(programme, on)
    enrolment = Enrolment(
        enrollment_id=uuid.uuid4(),
        client_id=referral.client_id,
        unit_id=referral.unit_id,
        agent_id=screening.agent_id,
        programme=programme.code,
        programme_version=programme.version,
        enrolled_on=on,
        planned_end_on=programme.planned_end(on, timeline.phase),
        aftercare_only=True,
    )
    store_timeline(programme, enrolment, timeline)
    await start_enrolment(uow, programme, enrolment, timeline.phase)
    return enrolment
