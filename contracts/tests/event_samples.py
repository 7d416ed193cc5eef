"""Small factories of valid events for the contract tests: one per event, overridable."""

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from uuid import uuid4

from pulih.contracts import CloudEvent, Event, new_event
from pulih.contracts.codes import (
    AgeBand,
    CameThrough,
    ConsentScope,
    Indicator,
    Phase,
    RiskLevel,
    Substance,
    UnitPhase,
)
from pulih.contracts.events import (
    AgentDeactivated,
    AgentRegistered,
    AggregateReported,
    AnswerRejected,
    ClientAttended,
    ClientDischarged,
    ClientEnrolled,
    ClientErased,
    ClientRegistered,
    ClientScreened,
    ConsentRecorded,
    ConsentWithdrawn,
    DropoutReversed,
    FollowUpRecorded,
    OutreachActivityRecorded,
    PhaseCompleted,
    QualityOfLifeAssessed,
    ReferralAccepted,
    ReferralCancelled,
    ReferralClosed,
    ReferralDeclined,
    ReferralEscalated,
    ReferredToClinic,
    SessionHeld,
    SubstanceResult,
    TreatmentCompleted,
    UnitEstablished,
)
from pulih.contracts.events.dead_letters import DEAD_LETTER_EVENTS, EventDeadLettered

REGENCY = "3301"
CLINIC = "rsud-cilacap"
DAY = date(2024, 3, 4)

EventT = TypeVar("EventT", bound=Event)


def _screening() -> dict[str, Any]:
    return {
        "screening_id": uuid4(),
        "client_id": uuid4(),
        "unit_id": uuid4(),
        "agent_id": uuid4(),
        "screened_on": DAY,
        "instrument": "assist_v3",
        "substances": [
            SubstanceResult(substance=Substance.CANNABIS, score=27, risk=RiskLevel.HIGH),
            SubstanceResult(substance=Substance.TOBACCO, score=5, risk=RiskLevel.MODERATE),
        ],
        "injected_last_3_months": False,
        "overall_risk": "high",
        "recommendation": "referral",
    }


def _aggregate() -> dict[str, Any]:
    indicators: dict[Indicator, int | None] = {name: 12 for name in Indicator}
    indicators[Indicator.FOLLOW_UPS_RELAPSED] = None  # suppressed: between 1 and 4
    return {
        "regency": REGENCY,
        "period": "2024-03",
        "generated_at": datetime(2024, 4, 1, 1, 0, tzinfo=UTC),
        "indicators": indicators,
        "units_by_phase": {UnitPhase.RINTISAN: 3, UnitPhase.TUMBUH: 1},
        "suppressed_below": 5,
    }


def _dead_letter() -> dict[str, Any]:
    return {
        "consumer": "referral.clinic-answers",
        "subject": f"ibm.{REGENCY}.clinic.{CLINIC}.referral_accepted",
        "stream_seq": 42,
        "attempts": 1,
        "error": "other_clinic",
        "reason": "the referral is addressed to another clinic",
        "payload": '{"specversion":"1.0","type":"pulih.clinic.ReferralAccepted.v1"}',
        "payload_encoding": "utf-8",
        "payload_size": 62,
        "payload_truncated": False,
        "payload_redacted": False,
    }


_DEAD_LETTERS: dict[type[EventDeadLettered], Callable[[], dict[str, Any]]] = {
    model: _dead_letter for model in DEAD_LETTER_EVENTS
}

_FIELDS: dict[type[Event], Callable[[], dict[str, Any]]] = {
    UnitEstablished: lambda: {
        "unit_id": uuid4(),
        "name": "IBM Desa Kutawaru",
        "village_code": "3301012001",
        "established_on": DAY,
    },
    AgentRegistered: lambda: {"agent_id": uuid4(), "unit_id": uuid4(), "trained_on": DAY},
    AgentDeactivated: lambda: {
        "agent_id": uuid4(),
        "unit_id": uuid4(),
        "on": DAY,
        "reason_code": "moved",
    },
    OutreachActivityRecorded: lambda: {
        "activity_id": uuid4(),
        "unit_id": uuid4(),
        "agent_id": uuid4(),
        "kind": "penjangkauan",
        "held_on": DAY,
        "people_reached": 14,
    },
    ClientRegistered: lambda: {
        "client_id": uuid4(),
        "unit_id": uuid4(),
        "registered_on": DAY,
        "sex": "m",
        "age_band": AgeBand.AGE_15_24,
        "came_through": CameThrough.OUTREACH,
    },
    ConsentRecorded: lambda: {
        "consent_id": uuid4(),
        "client_id": uuid4(),
        "scopes": [ConsentScope.PROGRAMME, ConsentScope.REFERRAL],
        "given_on": DAY,
        "expires_on": date(2025, 3, 4),
    },
    ConsentWithdrawn: lambda: {"consent_id": uuid4(), "client_id": uuid4(), "on": DAY},
    ClientScreened: _screening,
    ClientErased: lambda: {"client_id": uuid4(), "on": DAY},
    ClientEnrolled: lambda: {
        "enrollment_id": uuid4(),
        "client_id": uuid4(),
        "unit_id": uuid4(),
        "agent_id": uuid4(),
        "enrolled_on": DAY,
        "programme": "ibm-16w-2021",
        "planned_end_on": date(2024, 6, 24),
    },
    SessionHeld: lambda: {
        "session_id": uuid4(),
        "enrollment_id": uuid4(),
        "client_id": uuid4(),
        "unit_id": uuid4(),
        "agent_id": uuid4(),
        "held_on": DAY,
        "kind": "konseling",
        "attended": True,
        "minutes": 60,
    },
    QualityOfLifeAssessed: lambda: {
        "assessment_id": uuid4(),
        "enrollment_id": uuid4(),
        "client_id": uuid4(),
        "timepoint": "baseline",
        "physical": 56.25,
        "psychological": 50.0,
        "social": 75.0,
        "environment": 62.5,
    },
    PhaseCompleted: lambda: {
        "enrollment_id": uuid4(),
        "client_id": uuid4(),
        "phase": Phase.INTERVENSI,
        "completed_on": DAY,
        "next_phase": Phase.BINA_LANJUT,
    },
    ClientDischarged: lambda: {
        "enrollment_id": uuid4(),
        "client_id": uuid4(),
        "on": DAY,
        "reason": "completed",
    },
    FollowUpRecorded: lambda: {
        "follow_up_id": uuid4(),
        "client_id": uuid4(),
        "on": DAY,
        "status": "abstinent",
    },
    ReferredToClinic: lambda: {
        "referral_id": uuid4(),
        "client_id": uuid4(),
        "unit_id": uuid4(),
        "clinic_id": CLINIC,
        "service": "rawat_jalan",
        "reason": "injecting",
        "urgency": "urgent",
        "referred_on": DAY,
        "respond_by": date(2024, 3, 6),
        "consent_id": uuid4(),
    },
    ReferralEscalated: lambda: {
        "referral_id": uuid4(),
        "clinic_id": CLINIC,
        "on": DAY,
        "reason": "no_response",
    },
    ReferralCancelled: lambda: {
        "referral_id": uuid4(),
        "clinic_id": CLINIC,
        "on": DAY,
        "reason": "consent_withdrawn",
    },
    AnswerRejected: lambda: {
        "referral_id": uuid4(),
        "clinic_id": CLINIC,
        "answer_id": uuid4(),
        "answer_type": "pulih.clinic.ReferralAccepted.v1",
        "error": "answer_before_referral",
        "reason": "an answer cannot predate the referral",
    },
    DropoutReversed: lambda: {
        "enrollment_id": uuid4(),
        "client_id": uuid4(),
        "dropped_out_on": DAY,
        "on": date(2024, 2, 20),
    },
    ReferralClosed: lambda: {
        "referral_id": uuid4(),
        "clinic_id": CLINIC,
        "on": DAY,
        "outcome": "completed",
        "back_referral": True,
    },
    ReferralAccepted: lambda: {
        "referral_id": uuid4(),
        "accepted_on": DAY,
        "appointment_on": date(2024, 3, 8),
    },
    ReferralDeclined: lambda: {"referral_id": uuid4(), "on": DAY, "reason": "no_capacity"},
    ClientAttended: lambda: {"referral_id": uuid4(), "on": DAY},
    TreatmentCompleted: lambda: {
        "referral_id": uuid4(),
        "on": DAY,
        "outcome": "completed",
        "back_referral": True,
    },
    AggregateReported: _aggregate,
    **_DEAD_LETTERS,
}

SAMPLED_EVENTS: tuple[type[Event], ...] = tuple(_FIELDS)

VARIANTS: list[tuple[type[Event], dict[str, Any]]] = [
    (ConsentRecorded, {"expires_on": None}),
    (PhaseCompleted, {"phase": Phase.BINA_LANJUT, "next_phase": None}),
    (ReferralAccepted, {"appointment_on": None}),
    (ClientScreened, {"substances": [], "overall_risk": "low", "recommendation": "advice"}),
    (AggregateReported, {"indicators": {}, "units_by_phase": {}}),
]
"""Samples with optional or nullable fields left empty."""


def sample(model: type[EventT], **overrides: Any) -> EventT:
    """A valid ``model`` event with fresh ids; ``overrides`` replace any field."""
    return model(**{**_FIELDS[model](), **overrides})


def sample_message(model: type[EventT], **overrides: Any) -> CloudEvent[EventT]:
    """A ``model`` event in its envelope, published in :data:`REGENCY`."""
    return new_event(
        sample(model, **overrides),
        regency=REGENCY,
        correlationid=str(uuid4()),
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )
