"""What rehab learns from other services' events, applied through the kit's inbox.

From outreach: clients, agents, consent and screenings (the read model enrolment checks). From
referral: a referral pauses the client's enrolment; its closing resumes it, moves the client to
aftercare (``back_referral``) or discharges them. An event about something rehab has not heard
of yet (a screening before its registration) is retried later, never dropped.

Handlers use only the dates in the events, never today's: replaying the stream gives the same
state.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from faststream.nats import NatsBroker
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.contracts import CloudEvent, Event
from pulih.contracts.codes import DischargeReason, ReferralOutcome
from pulih.contracts.events.outreach import (
    AgentDeactivated,
    AgentRegistered,
    ClientErased,
    ClientRegistered,
    ClientScreened,
    ConsentRecorded,
    ConsentWithdrawn,
)
from pulih.contracts.events.referral import ReferralClosed, ReferredToClinic
from pulih.contracts.events.rehab import ClientEnrolled
from pulih.kit.consumers import Delivery, NotReadyYet, subscribe_durable
from pulih.kit.runtime import ServiceRuntime
from pulih.rehab.progression import apply_changes, catch_up, programme_of, store_timeline, timeline_of
from pulih.rehab.store import (
    Enrolment,
    KnownAgent,
    KnownClient,
    KnownConsent,
    KnownReferral,
    KnownScreening,
    PhaseRecord,
)
from pulih.rehab.timeline import (
    Status,
    discharge,
    enrol_in_aftercare,
    pause,
    resume_in_aftercare,
    resume_where_paused,
)

OPEN = (Status.ACTIVE.value, Status.PAUSED.value)


async def _known_client(session: AsyncSession, client_id: uuid.UUID) -> KnownClient:
    client = await session.get(KnownClient, client_id)
    if client is None:
        raise NotReadyYet(f"client {client_id} is not registered here yet")
    return client


async def _open_enrolment(session: AsyncSession, client_id: uuid.UUID) -> Enrolment | None:
    return await session.scalar(
        select(Enrolment).where(Enrolment.client_id == client_id, Enrolment.status.in_(OPEN))
    )


async def on_client_registered(
    session: AsyncSession, event: CloudEvent[ClientRegistered], _: Delivery
) -> None:
    d = event.data
    if await session.get(KnownClient, d.client_id) is None:
        session.add(KnownClient(client_id=d.client_id, unit_id=d.unit_id, registered_on=d.registered_on))


async def on_agent_registered(session: AsyncSession, event: CloudEvent[AgentRegistered], _: Delivery) -> None:
    if await session.get(KnownAgent, event.data.agent_id) is None:
        session.add(KnownAgent(agent_id=event.data.agent_id, unit_id=event.data.unit_id, active=True))


async def on_agent_deactivated(
    session: AsyncSession, event: CloudEvent[AgentDeactivated], _: Delivery
) -> None:
    agent = await session.get(KnownAgent, event.data.agent_id)
    if agent is None:
        raise NotReadyYet(f"agent {event.data.agent_id} is not registered here yet")
    agent.active = False


async def on_consent_recorded(session: AsyncSession, event: CloudEvent[ConsentRecorded], _: Delivery) -> None:
    d = event.data
    await _known_client(session, d.client_id)
    if await session.get(KnownConsent, d.consent_id) is None:
        session.add(
            KnownConsent(
                consent_id=d.consent_id,
                client_id=d.client_id,
                scopes=[s.value for s in d.scopes],
                given_on=d.given_on,
                expires_on=d.expires_on,
            )
        )


async def on_consent_withdrawn(
    session: AsyncSession, event: CloudEvent[ConsentWithdrawn], _: Delivery
) -> None:
    consent = await session.get(KnownConsent, event.data.consent_id)
    if consent is None:
        raise NotReadyYet(f"consent {event.data.consent_id} is not recorded here yet")
    consent.withdrawn_on = event.data.on


async def on_client_screened(session: AsyncSession, event: CloudEvent[ClientScreened], _: Delivery) -> None:
    d = event.data
    await _known_client(session, d.client_id)
    if await session.get(KnownScreening, d.screening_id) is None:
        session.add(
            KnownScreening(
                screening_id=d.screening_id,
                client_id=d.client_id,
                unit_id=d.unit_id,
                agent_id=d.agent_id,
                screened_on=d.screened_on,
                overall_risk=d.overall_risk.value,
                recommendation=d.recommendation.value,
            )
        )


async def on_client_erased(session: AsyncSession, event: CloudEvent[ClientErased], _: Delivery) -> None:
    client = await _known_client(session, event.data.client_id)
    client.erased_on = event.data.on


OUTREACH_HANDLERS: dict[type[Event], Any] = {
    ClientRegistered: on_client_registered,
    AgentRegistered: on_agent_registered,
    AgentDeactivated: on_agent_deactivated,
    ConsentRecorded: on_consent_recorded,
    ConsentWithdrawn: on_consent_withdrawn,
    ClientScreened: on_client_screened,
    ClientErased: on_client_erased,
}
"""What rehab does with each of outreach's events."""


def referral_handlers(runtime: ServiceRuntime) -> dict[type[Event], Any]:
    """Handlers of referral events; they change enrolments, so they need the emitter."""
    programme = programme_of(runtime)

    async def on_referred(session: AsyncSession, event: CloudEvent[ReferredToClinic], _: Delivery) -> None:
        d = event.data
        await _known_client(session, d.client_id)
        if await session.get(KnownReferral, d.referral_id) is None:
            session.add(
                KnownReferral(
                    referral_id=d.referral_id,
                    client_id=d.client_id,
                    unit_id=d.unit_id,
                    clinic_id=d.clinic_id,
                    referred_on=d.referred_on,
                )
            )
        enrolment = await _open_enrolment(session, d.client_id)
        if enrolment is None or enrolment.status != Status.ACTIVE.value:
            return
        ids = {"correlationid": event.correlationid, "causationid": str(event.id)}
        await catch_up(session, runtime.emitter, programme, enrolment, d.referred_on, **ids)
        if enrolment.status == Status.ACTIVE.value:
            store_timeline(programme, enrolment, pause(timeline_of(enrolment), d.referred_on))
            enrolment.paused_by_referral = d.referral_id

    async def on_closed(session: AsyncSession, event: CloudEvent[ReferralClosed], _: Delivery) -> None:
        d = event.data
        referral = await session.get(KnownReferral, d.referral_id)
        if referral is None:
            raise NotReadyYet(f"referral {d.referral_id} is not known here yet")
        referral.closed_on, referral.outcome, referral.back_referral = d.on, d.outcome.value, d.back_referral
        ids = {"correlationid": event.correlationid, "causationid": str(event.id)}
        enrolment = await _open_enrolment(session, referral.client_id)
        if enrolment is None:
            if d.back_referral:
                await _enrol_in_aftercare(session, runtime, referral, d.on, ids)
            return
        timeline = timeline_of(enrolment)
        if d.back_referral:
            timeline, changes = resume_in_aftercare(programme, timeline, d.on)
            await apply_changes(session, runtime.emitter, programme, enrolment, timeline, changes, **ids)
        elif enrolment.paused_by_referral != d.referral_id:
            return  # the enrolment was not waiting on this referral
        elif d.outcome in (ReferralOutcome.DECLINED, ReferralOutcome.CANCELLED):
            store_timeline(programme, enrolment, resume_where_paused(timeline, d.on))
        else:
            reason = (
                DischargeReason.REFERRED_OUT
                if d.outcome is ReferralOutcome.COMPLETED
                else DischargeReason.DROPPED_OUT
            )
            timeline, change = discharge(timeline, d.on, reason)
            await apply_changes(session, runtime.emitter, programme, enrolment, timeline, [change], **ids)
        enrolment.paused_by_referral = None

    return {ReferredToClinic: on_referred, ReferralClosed: on_closed}


async def _enrol_in_aftercare(
    session: AsyncSession,
    runtime: ServiceRuntime,
    referral: KnownReferral,
    on: date,
    ids: dict[str, str | None],
) -> None:
    """A client a clinic sent back who was never enrolled: aftercare only, with the agent who
    screened them."""
    programme = programme_of(runtime)
    screening = await session.scalar(
        select(KnownScreening)
        .where(KnownScreening.client_id == referral.client_id)
        .order_by(KnownScreening.screened_on.desc())
    )
    if screening is None:
        raise NotReadyYet(f"no screening of client {referral.client_id} yet to find their agent")
    timeline = enrol_in_aftercare(programme, on)
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
    session.add(enrolment)
    await session.flush()
    session.add(PhaseRecord(enrollment_id=enrolment.enrollment_id, phase=timeline.phase.value, started_on=on))
    await runtime.emitter.emit(
        session,
        ClientEnrolled(
            enrollment_id=enrolment.enrollment_id,
            client_id=enrolment.client_id,
            unit_id=enrolment.unit_id,
            agent_id=enrolment.agent_id,
            enrolled_on=on,
            programme=programme.code,
            planned_end_on=enrolment.planned_end_on,
        ),
        **ids,
    )


def subscribe(runtime: ServiceRuntime, broker: NatsBroker) -> None:
    """Rehab's durable consumers: outreach's events, and referral's."""
    regency = runtime.settings.regency
    subscribe_durable(
        runtime,
        broker,
        durable="outreach-events",
        subject=f"ibm.{regency}.outreach.>",
        handlers=OUTREACH_HANDLERS,
    )
    subscribe_durable(
        runtime,
        broker,
        durable="referral-events",
        subject=f"ibm.{regency}.referral.>",
        handlers=referral_handlers(runtime),
    )
