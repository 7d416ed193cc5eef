"""Events of the referral service: referrals to clinics and what became of them.

Each is published on a subject that ends with the clinic's id, so a clinic reads only the
referrals addressed to it.
"""

from datetime import date
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import Field

from pulih.contracts.codes import (
    CancelReason,
    ClinicId,
    ClinicService,
    EscalationReason,
    ReferralOutcome,
    ReferralReason,
    Urgency,
)
from pulih.contracts.event import Event


class _ReferralEvent(Event):
    service_name: ClassVar[str] = "referral"
    about: ClassVar[str] = "referral_id"


class ReferredToClinic(_ReferralEvent):
    """A unit referred a consenting client to a clinic, which should answer by ``respond_by``."""

    referral_id: UUID
    client_id: UUID
    unit_id: UUID
    clinic_id: ClinicId
    service: ClinicService
    """The clinic service the client is referred to."""
    reason: ReferralReason
    urgency: Urgency
    referred_on: date
    respond_by: date
    consent_id: UUID
    """The consent (with scope ``referral``) that allows this referral."""


class ReferralEscalated(_ReferralEvent):
    """A referral needs the unit's attention: the clinic did not answer in time, or declined."""

    referral_id: UUID
    clinic_id: ClinicId
    on: date
    reason: EscalationReason


class ReferralCancelled(_ReferralEvent):
    """A referral was cancelled before the clinic finished with it."""

    referral_id: UUID
    clinic_id: ClinicId
    on: date
    reason: CancelReason


class ReferralClosed(_ReferralEvent):
    """A referral ended, with its outcome and whether the client came back to the unit."""

    referral_id: UUID
    clinic_id: ClinicId
    on: date
    outcome: ReferralOutcome
    back_referral: bool
    """The client was referred back to the IBM unit for aftercare."""


class AnswerRejected(_ReferralEvent):
    """A clinic's answer was not applied (dated before the referral, an illegal transition,
    another clinic's referral…): sent to that clinic so it learns why."""

    referral_id: UUID
    clinic_id: ClinicId
    """The clinic whose answer was refused (the subject ends with it)."""
    answer_id: UUID
    """The refused event's ``id``."""
    answer_type: Annotated[str, Field(pattern=r"^pulih\.[a-z]+\.[A-Za-z]+\.v[0-9]+$", max_length=200)]
    """The refused event's ``type``, e.g. ``pulih.clinic.ReferralAccepted.v1``."""
    error: Annotated[str, Field(pattern=r"^[a-z][a-z_]*$", max_length=60)]
    """The refusal's code, e.g. ``illegal_transition``."""
    reason: Annotated[str, Field(max_length=500)]
    """What was wrong, in words."""
