"""Events a clinic publishes about a referral addressed to it.

The clinic's id is in the subject (``ibm.<regency>.clinic.<clinic_id>.<event_name>``), which
the clinic's credentials restrict, so it is not repeated in the data.
"""

from datetime import date
from typing import ClassVar
from uuid import UUID

from pulih.contracts.codes import DeclineReason, TreatmentOutcome
from pulih.contracts.event import Event


class _ClinicEvent(Event):
    service_name: ClassVar[str] = "clinic"
    about: ClassVar[str] = "referral_id"


class ReferralAccepted(_ClinicEvent):
    """The clinic accepted a referral, possibly with an appointment date."""

    referral_id: UUID
    accepted_on: date
    appointment_on: date | None = None


class ReferralDeclined(_ClinicEvent):
    """The clinic declined a referral."""

    referral_id: UUID
    on: date
    reason: DeclineReason


class ClientAttended(_ClinicEvent):
    """The referred client came to the clinic."""

    referral_id: UUID
    on: date


class TreatmentCompleted(_ClinicEvent):
    """The clinic's treatment of a referred client ended."""

    referral_id: UUID
    on: date
    outcome: TreatmentOutcome
    back_referral: bool
    """The client returns to the IBM unit for aftercare."""
