"""What referral's API takes and gives back (request and response bodies).

Responses are built from rows with ``model_validate(row, from_attributes=True)``; a clinic's
answer over HTTP becomes the same event it would publish on NATS (:meth:`Accepted.event` …).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from pulih.contracts.codes import (
    CancelReason,
    ClinicId,
    ClinicService,
    DeclineReason,
    ReferralReason,
    RegencyCode,
    Sex,
    TreatmentOutcome,
    Urgency,
)
from pulih.contracts.events.clinic import (
    ClientAttended,
    ReferralAccepted,
    ReferralDeclined,
    TreatmentCompleted,
)
from pulih.referral.domain.clinics import ClinicKind
from pulih.referral.domain.lifecycle import ReferralStatus


class Body(BaseModel):
    """Request bodies refuse unknown fields, so a typo is an error rather than ignored."""

    model_config = ConfigDict(extra="forbid")


class View(BaseModel):
    """Response bodies, read from rows."""

    model_config = ConfigDict(from_attributes=True)


class RegisterClinic(Body):
    clinic_id: ClinicId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: ClinicKind
    services: Annotated[list[ClinicService], Field(min_length=1)]
    regencies: Annotated[list[RegencyCode], Field(min_length=1)]


class ClinicView(View):
    clinic_id: str
    name: str
    kind: ClinicKind
    services: list[ClinicService]
    regencies: list[str]


class ReferClient(Body):
    client_id: UUID
    clinic_id: ClinicId
    service: ClinicService
    reason: ReferralReason
    urgency: Urgency = Urgency.ROUTINE
    referred_on: date | None = Field(None, description="defaults to today in the regency")
    referral_id: UUID | None = Field(None, description="a device-made id; one is assigned if absent")


class CancelReferral(Body):
    reason: CancelReason
    on: date | None = Field(None, description="defaults to today in the regency")


class ReferralView(View):
    """A referral as agents, facilitators and its clinic see it: pseudonymous."""

    referral_id: UUID
    client_id: UUID
    unit_id: UUID
    clinic_id: str
    service: ClinicService
    reason: ReferralReason
    urgency: Urgency
    referred_on: date
    respond_by: date
    consent_id: UUID
    status: ReferralStatus
    accepted_on: date | None = None
    appointment_on: date | None = None
    attended_on: date | None = None
    closed_on: date | None = None
    outcome: str | None = None
    back_referral: bool | None = None
    escalated: bool = False
    escalated_on: date | None = None
    escalation_reason: str | None = None


class SuggestedReferral(View):
    """A screening that recommends referral and has no referral since: a human decides."""

    client_id: UUID
    unit_id: UUID
    screening_id: UUID
    screened_on: date
    overall_risk: str
    injected_last_3_months: bool


class Accepted(Body):
    answer: Literal["accepted"]
    on: date
    appointment_on: date | None = None

    def event(self, referral_id: UUID) -> ReferralAccepted:
        """The clinic's event saying this."""
        return ReferralAccepted(
            referral_id=referral_id, accepted_on=self.on, appointment_on=self.appointment_on
        )


class Declined(Body):
    answer: Literal["declined"]
    on: date
    reason: DeclineReason

    def event(self, referral_id: UUID) -> ReferralDeclined:
        """The clinic's event saying this."""
        return ReferralDeclined(referral_id=referral_id, on=self.on, reason=self.reason)


class Attended(Body):
    answer: Literal["attended"]
    on: date

    def event(self, referral_id: UUID) -> ClientAttended:
        """The clinic's event saying this."""
        return ClientAttended(referral_id=referral_id, on=self.on)


class Completed(Body):
    answer: Literal["completed"]
    on: date
    outcome: TreatmentOutcome
    back_referral: bool

    def event(self, referral_id: UUID) -> TreatmentCompleted:
        """The clinic's event saying this."""
        return TreatmentCompleted(
            referral_id=referral_id, on=self.on, outcome=self.outcome, back_referral=self.back_referral
        )


ClinicAnswer = Annotated[Accepted | Declined | Attended | Completed, Field(discriminator="answer")]
"""A clinic's answer over HTTP: the same facts as its events on NATS."""


_BODY_FIELDS = {"accepted_on": "on"}


def body_field(event_field: str | None) -> str | None:
    """The field of an HTTP answer that holds the event's ``event_field`` (an acceptance's
    ``accepted_on`` is the body's ``on``)."""
    return _BODY_FIELDS.get(event_field, event_field) if event_field else event_field


class ClientIdentityView(BaseModel):
    """Who a referred client is, for the clinic the referral is addressed to."""

    referral_id: UUID
    client_id: UUID
    full_name: str
    nik: str
    birth_date: date
    sex: Sex
    phone: str | None
    address: str | None


def _utc_isoformat(moment: datetime) -> str:
    # SQLite gives back naive datetimes for DateTime(timezone=True): they were stored in UTC.
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).isoformat()


class HandOverEntry(View):
    """One attempt to get a referred client's identity, as the audit shows it."""

    actor: str
    actor_role: str
    clinic_id: str | None
    purpose: str
    outcome: str
    reason: str | None
    read_at: Annotated[datetime, PlainSerializer(_utc_isoformat, return_type=str)]
