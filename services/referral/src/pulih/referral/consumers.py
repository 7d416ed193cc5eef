"""What referral reacts to, and with which handler.

- ``outreach``: the pseudonymous read model of outreach's clients, consents and screenings (the
  kit's), so a referral can check consent and screening without asking outreach, and suggest
  referrals; a client who withdraws their last ``referral`` consent has their open referrals
  cancelled.
- ``clinic-answers``: ``ibm.<r>.clinic.<clinic_id>.<event>``; the clinic is read from the
  subject, which its NATS credentials restrict. Refused answers change nothing and are
  dead-lettered at once with their code, and the clinic is told on its own subject
  (``AnswerRejected``, which its NATS user may read); an answer that is only early is retried,
  and after the last attempt dead-lettered as ``not_ready``, the clinic told so too.

Both consume ordered batches (:func:`pulih.kit.batch_consumer.subscribe_batches`): a batch's
events are applied in stream order in one transaction, a refused one rolled back to its own
savepoint.
"""

from __future__ import annotations

from functools import partial

from faststream.nats import NatsBroker

from pulih.contracts import Event
from pulih.contracts.events.clinic import (
    ClientAttended,
    ReferralAccepted,
    ReferralDeclined,
    TreatmentCompleted,
)
from pulih.contracts.events.outreach import ConsentWithdrawn
from pulih.kit.batch_consumer import subscribe_batches
from pulih.kit.consumers import EventHandler
from pulih.kit.runtime import ServiceRuntime
from pulih.referral import handlers
from pulih.referral.store import OUTREACH

CLINIC_ANSWERS = "clinic-answers"
"""The durable name of the consumer of clinics' answers (the HTTP path records into its inbox)."""

FROM_OUTREACH: dict[type[Event], EventHandler] = OUTREACH.then(
    {ConsentWithdrawn: handlers.cancel_when_referral_consent_withdrawn}
).handlers()
"""What referral does with each of outreach's events."""


def from_clinics(runtime: ServiceRuntime) -> dict[type[Event], EventHandler]:
    """What referral does with each of the clinics' answers (it reads the regency's clock and
    settings, and tells a clinic of a refusal in a transaction of its own)."""
    answer: EventHandler = partial(handlers.on_clinic_answer, runtime)
    return {
        ReferralAccepted: answer,
        ReferralDeclined: answer,
        ClientAttended: answer,
        TreatmentCompleted: answer,
    }


def clinic_answers_consumer(runtime: ServiceRuntime) -> str:
    """The inbox name of the clinic-answers consumer, as the kit builds it."""
    return f"{runtime.name}.{CLINIC_ANSWERS}"


def subscribe(runtime: ServiceRuntime, broker: NatsBroker) -> None:
    """Register referral's two durable consumers."""
    regency = runtime.settings.regency
    subscribe_batches(
        runtime, broker, durable="outreach", subject=f"ibm.{regency}.outreach.>", handlers=FROM_OUTREACH
    )
    subscribe_batches(
        runtime,
        broker,
        durable=CLINIC_ANSWERS,
        subject=f"ibm.{regency}.clinic.>",
        handlers=from_clinics(runtime),
        on_invalid=partial(handlers.tell_clinic_of_invalid_answer, runtime),
        on_dead_letter=partial(handlers.tell_clinic_of_refusal, runtime),
    )
