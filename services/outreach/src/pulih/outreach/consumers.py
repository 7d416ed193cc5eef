"""What outreach learns from other services' events: referral's referrals, so that outreach checks
for itself, from its own records, that an identity hand-over is allowed (a ``service`` token is
not a master key).

- ``ReferredToClinic``: the referral, its client and the clinic it is addressed to;
- ``ReferralClosed``: the referral ended (completed, declined, cancelled…), so its clinic gets no
  identity any more. A close before its referral is retried, never dropped.

Every other event on ``ibm.<regency>.referral.>`` is acknowledged and skipped. The consumer
applies ordered batches (:func:`pulih.kit.batch_consumer.subscribe_batches`), one transaction a
batch.
"""

from __future__ import annotations

from faststream.nats import NatsBroker

from pulih.contracts import Event
from pulih.kit.batch_consumer import subscribe_batches
from pulih.kit.consumers import EventHandler
from pulih.kit.runtime import ServiceRuntime
from pulih.outreach.store import REFERRALS

FROM_REFERRAL: dict[type[Event], EventHandler] = REFERRALS.handlers()
"""What outreach does with each of referral's events: the kit's read model of referrals
(:class:`pulih.kit.read_model.ReferralReadModel`) on outreach's ``known_referrals``."""


def subscribe(runtime: ServiceRuntime, broker: NatsBroker) -> None:
    """Outreach's durable consumer of referral's events."""
    regency = runtime.settings.regency
    subscribe_batches(
        runtime,
        broker,
        durable="referral-events",
        subject=f"ibm.{regency}.referral.>",
        handlers=FROM_REFERRAL,
    )
