"""What referral's API takes and gives back (request and response bodies).

Request bodies are strict (:mod:`pulih.kit.strict`: a date is ``YYYY-MM-DD``, a yes/no a JSON
boolean), each with an example of a request the service takes. Responses are built from rows
with ``model_validate(row, from_attributes=True)``; a clinic's answer over HTTP becomes the same
event it would publish on NATS (:meth:`Accepted.event` …).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, ValidationInfo, field_validator

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
from pulih.kit.dates import not_before
from pulih.kit.happened_on import HappenedOn
from pulih.kit.pagination import Page
from pulih.kit.strict import FROM_TEXT, STRICT_BODY, Day, Id, strict_body
from pulih.referral.domain.clinics import ClinicKind
from pulih.referral.domain.lifecycle import ReferralStatus


class Body(BaseModel):
    """Request bodies are strict and refuse unknown fields, so a typo is an error rather than
    ignored."""

    model_config = STRICT_BODY


class View(BaseModel):
    """Response bodies, read from rows."""

    model_config = ConfigDict(from_attributes=True)


class RegisterClinic(Body):
    model_config = strict_body(
        {
            "clinic_id": "klinik-pratama-sehat",
            "name": "Klinik Pratama Sehat",
            "kind": "klinik_pratama",
            "services": ["rawat_jalan", "medis"],
            "regencies": ["3301", "3302"],
        }
    )

    clinic_id: ClinicId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: Annotated[ClinicKind, FROM_TEXT]
    services: Annotated[list[Annotated[ClinicService, FROM_TEXT]], Field(min_length=1)]
    regencies: Annotated[list[RegencyCode], Field(min_length=1, description="the regencies it serves")]


class ClinicView(View):
    clinic_id: str
    name: str
    kind: ClinicKind
    services: list[ClinicService]
    regencies: list[str]


class ReferClient(Body):
    model_config = strict_body(
        {
            "client_id": "9d5b7c1e-2f4a-4e8b-8c3d-6a1f0e2b4c57",
            "clinic_id": "klinik-pratama-sehat",
            "service": "rawat_jalan",
            "reason": "high_risk",
        },
        {
            "client_id": "9d5b7c1e-2f4a-4e8b-8c3d-6a1f0e2b4c57",
            "clinic_id": "klinik-pratama-sehat",
            "service": "psikiatri",
            "reason": "psychiatric",
            "urgency": "urgent",
            "referred_on": "2025-01-14",
            "referral_id": "c2d4e6f8-1a3b-4c5d-9e7f-0a1b2c3d4e5f",
        },
    )

    client_id: Id
    clinic_id: ClinicId
    service: Annotated[ClinicService, FROM_TEXT]
    reason: Annotated[ReferralReason, FROM_TEXT]
    urgency: Annotated[Urgency, FROM_TEXT] = Urgency.ROUTINE
    referred_on: HappenedOn | None = Field(None, description="defaults to today in the regency")
    referral_id: Id | None = Field(None, description="a device-made id; one is assigned if absent")


class CancelReferral(Body):
    model_config = strict_body({"reason": "client_request"}, {"reason": "client_moved", "on": "2025-01-14"})

    reason: Annotated[CancelReason, FROM_TEXT]
    on: HappenedOn | None = Field(None, description="defaults to today in the regency")


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
    """The clinic takes the client; an appointment, if one is set, is on or after ``on``."""

    model_config = strict_body(
        {"answer": "accepted", "on": "2025-01-14"},
        {"answer": "accepted", "on": "2025-01-14", "appointment_on": "2025-01-20"},
    )

    answer: Literal["accepted"]
    on: HappenedOn
    appointment_on: Annotated[
        Day | None, Field(description="the day the client is expected: not before `on`")
    ] = None

    @field_validator("appointment_on")
    @classmethod
    def _not_before_acceptance(cls, appointment_on: date | None, info: ValidationInfo) -> date | None:
        # the domain's own rule and error (422 date_before_acceptance), checked as the body is read
        accepted_on = info.data.get("on")
        if appointment_on is not None and accepted_on is not None:
            not_before(appointment_on, accepted_on, "appointment_on", "acceptance")
        return appointment_on

    def event(self, referral_id: UUID) -> ReferralAccepted:
        """The clinic's event saying this."""
        return ReferralAccepted(
            referral_id=referral_id, accepted_on=self.on, appointment_on=self.appointment_on
        )


class Declined(Body):
    model_config = strict_body({"answer": "declined", "on": "2025-01-14", "reason": "no_capacity"})

    answer: Literal["declined"]
    on: HappenedOn
    reason: Annotated[DeclineReason, FROM_TEXT]

    def event(self, referral_id: UUID) -> ReferralDeclined:
        """The clinic's event saying this."""
        return ReferralDeclined(referral_id=referral_id, on=self.on, reason=self.reason)


class Attended(Body):
    model_config = strict_body({"answer": "attended", "on": "2025-01-20"})

    answer: Literal["attended"]
    on: HappenedOn

    def event(self, referral_id: UUID) -> ClientAttended:
        """The clinic's event saying this."""
        return ClientAttended(referral_id=referral_id, on=self.on)


class Completed(Body):
    model_config = strict_body(
        {"answer": "completed", "on": "2025-03-20", "outcome": "completed", "back_referral": True}
    )

    answer: Literal["completed"]
    on: HappenedOn
    outcome: Annotated[TreatmentOutcome, FROM_TEXT]
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


class ClinicPage(Page[ClinicView]):
    """A page of the clinic directory, by clinic id."""


class ReferralPage(Page[ReferralView]):
    """A page of referrals, oldest first."""


class SuggestedReferralPage(Page[SuggestedReferral]):
    """A page of suggested referrals, oldest screening first."""


class HandOverPage(Page[HandOverEntry]):
    """A page of a referral's identity hand-over audit, oldest attempt first."""
