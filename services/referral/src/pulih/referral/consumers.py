"""What referral reacts to: outreach's clients, consents and screenings, and clinics' answers.

- ``outreach``: a pseudonymous read model (client → unit, consents, screening results) so a
  referral can check consent and screening without asking outreach, and suggest referrals. A
  client who withdraws their last ``referral`` consent has their open referrals cancelled.
- ``clinic-answers``: ``ibm.<r>.clinic.<clinic_id>.<event>``; the clinic is read from the
  subject, which its NATS credentials restrict. Illegal answers are dead-lettered at once with
  the reason and change nothing; an answer that is only early (attended before accepted,
  completed before attended) is retried, and dead-lettered as ``not_ready`` after the last
  attempt, because messages can overtake each other when one is redelivered.
"""

from __future__ import annotations

from typing import Any

from faststream.nats import NatsBroker
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.contracts import CloudEvent, Event
from pulih.contracts.codes import CancelReason, ConsentScope
from pulih.contracts.events.clinic import (
    ClientAttended,
    ReferralAccepted,
    ReferralDeclined,
    TreatmentCompleted,
)
from pulih.contracts.events.outreach import (
    ClientErased,
    ClientRegistered,
    ClientScreened,
    ConsentRecorded,
    ConsentWithdrawn,
)
from pulih.kit.consumers import Delivery, NotReadyYet, Rejected, subscribe_durable
from pulih.kit.runtime import ServiceRuntime
from pulih.referral.cancellation import cancel
from pulih.referral.clinic_answers import AnswerRefused, apply_answer
from pulih.referral.domain import OPEN
from pulih.referral.store import KnownClient, KnownConsent, KnownScreening, Referral

CLINIC_ANSWERS = "clinic-answers"
"""The durable name of the consumer of clinics' answers (the HTTP path records into its inbox)."""


def clinic_answers_consumer(runtime: ServiceRuntime) -> str:
    """The inbox name of the clinic-answers consumer, as the kit builds it."""
    return f"{runtime.name}.{CLINIC_ANSWERS}"


async def _known_client(session: AsyncSession, client_id: Any) -> KnownClient:
    client = await session.get(KnownClient, client_id)
    if client is None:
        raise NotReadyYet(f"client {client_id} not registered yet")
    return client


async def on_client_registered(
    session: AsyncSession, event: CloudEvent[ClientRegistered], _: Delivery
) -> None:
    data = event.data
    if await session.get(KnownClient, data.client_id) is None:
        session.add(
            KnownClient(client_id=data.client_id, unit_id=data.unit_id, registered_on=data.registered_on)
        )


async def on_consent_recorded(session: AsyncSession, event: CloudEvent[ConsentRecorded], _: Delivery) -> None:
    data = event.data
    await _known_client(session, data.client_id)
    if await session.get(KnownConsent, data.consent_id) is None:
        session.add(
            KnownConsent(
                consent_id=data.consent_id,
                client_id=data.client_id,
                scopes=sorted(s.value for s in data.scopes),
                given_on=data.given_on,
                expires_on=data.expires_on,
            )
        )


def consent_withdrawal_handler(runtime: ServiceRuntime) -> Any:
    """The handler of ``ConsentWithdrawn``: without a ``referral`` consent left, the client's open
    referrals are cancelled (``consent_withdrawn``), and their clinics told so."""

    async def on_consent_withdrawn(
        session: AsyncSession, event: CloudEvent[ConsentWithdrawn], _: Delivery
    ) -> None:
        data = event.data
        consent = await session.get(KnownConsent, data.consent_id)
        if consent is None:
            raise NotReadyYet(f"consent {data.consent_id} not recorded yet")
        consent.withdrawn_on = data.on
        await session.flush()
        consents = (
            await session.scalars(select(KnownConsent).where(KnownConsent.client_id == data.client_id))
        ).all()
        if any(c.terms().allows(ConsentScope.REFERRAL, data.on) for c in consents):
            return
        still_open = (
            await session.scalars(
                select(Referral).where(
                    Referral.client_id == data.client_id, Referral.status.in_([s.value for s in OPEN])
                )
            )
        ).all()

        async def emit(e: Event) -> None:
            await runtime.emitter.emit(
                session, e, correlationid=event.correlationid, causationid=str(event.id)
            )

        for referral in still_open:
            await cancel(referral, max(data.on, referral.referred_on), CancelReason.CONSENT_WITHDRAWN, emit)

    return on_consent_withdrawn


async def on_client_screened(session: AsyncSession, event: CloudEvent[ClientScreened], _: Delivery) -> None:
    data = event.data
    await _known_client(session, data.client_id)
    if await session.get(KnownScreening, data.screening_id) is None:
        session.add(
            KnownScreening(
                screening_id=data.screening_id,
                client_id=data.client_id,
                unit_id=data.unit_id,
                screened_on=data.screened_on,
                overall_risk=data.overall_risk.value,
                injected_last_3_months=data.injected_last_3_months,
                recommendation=data.recommendation.value,
            )
        )


async def on_client_erased(session: AsyncSession, event: CloudEvent[ClientErased], _: Delivery) -> None:
    client = await _known_client(session, event.data.client_id)
    client.erased_on = event.data.on


def clinic_of(subject: str) -> str:
    """The answering clinic, from ``ibm.<regency>.clinic.<clinic_id>.<event_name>``."""
    parts = subject.split(".")
    if len(parts) != 5 or parts[0] != "ibm" or parts[2] != "clinic":
        raise Rejected("unexpected_subject", f"{subject} is not a clinic's answer subject")
    return parts[3]


def answer_handler(runtime: ServiceRuntime) -> Any:
    """The handler of the four clinic events: legal answers apply, the rest are dead-lettered."""

    async def on_answer(session: AsyncSession, event: CloudEvent[Any], delivery: Delivery) -> None:
        clinic_id = clinic_of(delivery.subject)

        async def emit(data: Event) -> None:
            await runtime.emitter.emit(session, data, causationid=str(event.id))

        try:
            await apply_answer(session, clinic_id, event.data, emit)
        except AnswerRefused as exc:
            if exc.premature:
                # an earlier answer may still be on its way (redelivered later): retry this
                # one; after the last attempt the kit dead-letters it as not_ready
                raise NotReadyYet(f"{exc.code}: {exc.message}") from None
            raise Rejected(exc.code, f"{delivery.subject}: {exc.message}") from None

    return on_answer


def outreach_handlers(runtime: ServiceRuntime) -> dict[type[Event], Any]:
    """What referral does with each of outreach's events."""
    return {
        ClientRegistered: on_client_registered,
        ConsentRecorded: on_consent_recorded,
        ConsentWithdrawn: consent_withdrawal_handler(runtime),
        ClientScreened: on_client_screened,
        ClientErased: on_client_erased,
    }


def subscribe(runtime: ServiceRuntime, broker: NatsBroker) -> None:
    """Register referral's two durable consumers."""
    regency = runtime.settings.regency
    subscribe_durable(
        runtime,
        broker,
        durable="outreach",
        subject=f"ibm.{regency}.outreach.>",
        handlers=outreach_handlers(runtime),
    )
    on_answer = answer_handler(runtime)
    answers: dict[type[Event], Any] = {
        ReferralAccepted: on_answer,
        ReferralDeclined: on_answer,
        ClientAttended: on_answer,
        TreatmentCompleted: on_answer,
    }
    subscribe_durable(
        runtime, broker, durable=CLINIC_ANSWERS, subject=f"ibm.{regency}.clinic.>", handlers=answers
    )
