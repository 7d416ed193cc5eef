"""What rehab learns from other services' events, applied through the kit's inbox.

From outreach: clients, agents, consents and screenings, the read model enrolment checks
(written once in :mod:`pulih.kit.read_model`). From referral: the referrals (the kit's read
model too), then rehab's own reaction: a referral pauses the client's enrolment; its closing
resumes it, moves the client to aftercare or discharges them
(:mod:`pulih.rehab.handlers.referrals`). An event about something rehab has not heard of yet (a
screening before its registration) is retried later, never dropped.

Both consume ordered batches (:func:`pulih.kit.batch_consumer.subscribe_batches`): a batch's
events are applied in stream order in one transaction, with their inbox rows, and acknowledged
after the commit.
"""

from __future__ import annotations

from faststream.nats import NatsBroker

from pulih.contracts import CloudEvent, Event
from pulih.contracts.events.referral import ReferralClosed, ReferredToClinic
from pulih.kit.batch_consumer import subscribe_batches
from pulih.kit.consumers import Delivery, EventHandler
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.unit_of_work import UnitOfWork
from pulih.rehab import handlers
from pulih.rehab.deps import RehabDeps
from pulih.rehab.domain.programme import Programme
from pulih.rehab.store import OUTREACH, REFERRALS

OUTREACH_HANDLERS: dict[type[Event], EventHandler] = OUTREACH.handlers()
"""What rehab does with each of outreach's events."""


def referral_handlers(programme: Programme) -> dict[type[Event], EventHandler]:
    """What rehab does with referral's events, under the regency's ``programme``: the read model
    notes the referral, then rehab pauses or resumes the client's enrolment."""

    async def referred(uow: UnitOfWork, event: CloudEvent[ReferredToClinic], _: Delivery) -> None:
        await handlers.pause_for_referral(uow, programme, event.data)

    async def closed(uow: UnitOfWork, event: CloudEvent[ReferralClosed], _: Delivery) -> None:
        await handlers.resume_after_referral(uow, programme, event.data)

    return REFERRALS.then({ReferredToClinic: referred, ReferralClosed: closed}).handlers()


def subscribe(runtime: ServiceRuntime, broker: NatsBroker) -> None:
    """Rehab's durable consumers: outreach's events, and referral's."""
    regency = runtime.settings.regency
    subscribe_batches(
        runtime,
        broker,
        durable="outreach-events",
        subject=f"ibm.{regency}.outreach.>",
        handlers=OUTREACH_HANDLERS,
    )
    subscribe_batches(
        runtime,
        broker,
        durable="referral-events",
        subject=f"ibm.{regency}.referral.>",
        handlers=referral_handlers(runtime.deps_as(RehabDeps).programme),
    )
