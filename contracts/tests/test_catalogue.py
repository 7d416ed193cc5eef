"""The registry holds exactly the events of EVENTS.md, with its names, subjects and fields."""

import pytest

from pulih.contracts import EVENT_TYPES, Event, InvalidEvent, model_for
from pulih.contracts.codes import Indicator
from pulih.contracts.events import ALL_EVENTS, DEAD_LETTER_EVENTS

# type -> (subject token, field the CloudEvent subject is, data fields in catalogue order)
CATALOGUE: dict[str, tuple[str, str, list[str]]] = {
    "pulih.outreach.UnitEstablished.v1": (
        "unit_established",
        "unit_id",
        ["unit_id", "name", "village_code", "established_on"],
    ),
    "pulih.outreach.AgentRegistered.v1": (
        "agent_registered",
        "agent_id",
        ["agent_id", "unit_id", "trained_on"],
    ),
    "pulih.outreach.AgentDeactivated.v1": (
        "agent_deactivated",
        "agent_id",
        ["agent_id", "unit_id", "on", "reason_code"],
    ),
    "pulih.outreach.OutreachActivityRecorded.v1": (
        "outreach_activity_recorded",
        "unit_id",
        ["activity_id", "unit_id", "agent_id", "kind", "held_on", "people_reached"],
    ),
    "pulih.outreach.ClientRegistered.v1": (
        "client_registered",
        "client_id",
        ["client_id", "unit_id", "registered_on", "sex", "age_band", "came_through"],
    ),
    "pulih.outreach.ConsentRecorded.v1": (
        "consent_recorded",
        "client_id",
        ["consent_id", "client_id", "scopes", "given_on", "expires_on"],
    ),
    "pulih.outreach.ConsentWithdrawn.v1": (
        "consent_withdrawn",
        "client_id",
        ["consent_id", "client_id", "on"],
    ),
    "pulih.outreach.ClientScreened.v1": (
        "client_screened",
        "client_id",
        [
            "screening_id",
            "client_id",
            "unit_id",
            "agent_id",
            "screened_on",
            "instrument",
            "substances",
            "injected_last_3_months",
            "overall_risk",
            "recommendation",
        ],
    ),
    "pulih.outreach.ClientErased.v1": ("client_erased", "client_id", ["client_id", "on"]),
    "pulih.rehab.ClientEnrolled.v1": (
        "client_enrolled",
        "client_id",
        [
            "enrollment_id",
            "client_id",
            "unit_id",
            "agent_id",
            "enrolled_on",
            "programme",
            "planned_end_on",
        ],
    ),
    "pulih.rehab.SessionHeld.v1": (
        "session_held",
        "client_id",
        [
            "session_id",
            "enrollment_id",
            "client_id",
            "unit_id",
            "agent_id",
            "held_on",
            "kind",
            "attended",
            "minutes",
        ],
    ),
    "pulih.rehab.QualityOfLifeAssessed.v1": (
        "quality_of_life_assessed",
        "client_id",
        [
            "assessment_id",
            "enrollment_id",
            "client_id",
            "timepoint",
            "physical",
            "psychological",
            "social",
            "environment",
            "assessed_on",
        ],
    ),
    "pulih.rehab.PhaseCompleted.v1": (
        "phase_completed",
        "client_id",
        ["enrollment_id", "client_id", "phase", "completed_on", "next_phase"],
    ),
    "pulih.rehab.ClientDischarged.v1": (
        "client_discharged",
        "client_id",
        ["enrollment_id", "client_id", "on", "reason"],
    ),
    "pulih.rehab.FollowUpRecorded.v1": (
        "follow_up_recorded",
        "client_id",
        ["follow_up_id", "client_id", "on", "status"],
    ),
    "pulih.referral.ReferredToClinic.v1": (
        "referred_to_clinic",
        "referral_id",
        [
            "referral_id",
            "client_id",
            "unit_id",
            "clinic_id",
            "service",
            "reason",
            "urgency",
            "referred_on",
            "respond_by",
            "consent_id",
        ],
    ),
    "pulih.referral.ReferralEscalated.v1": (
        "referral_escalated",
        "referral_id",
        ["referral_id", "clinic_id", "on", "reason"],
    ),
    "pulih.referral.ReferralCancelled.v1": (
        "referral_cancelled",
        "referral_id",
        ["referral_id", "clinic_id", "on", "reason"],
    ),
    "pulih.referral.AnswerRejected.v1": (
        "answer_rejected",
        "referral_id",
        ["referral_id", "clinic_id", "answer_id", "answer_type", "error", "reason"],
    ),
    "pulih.rehab.DropoutReversed.v1": (
        "dropout_reversed",
        "client_id",
        ["enrollment_id", "client_id", "dropped_out_on", "on"],
    ),
    "pulih.referral.ReferralClosed.v1": (
        "referral_closed",
        "referral_id",
        ["referral_id", "clinic_id", "on", "outcome", "back_referral"],
    ),
    "pulih.clinic.ReferralAccepted.v1": (
        "referral_accepted",
        "referral_id",
        ["referral_id", "accepted_on", "appointment_on"],
    ),
    "pulih.clinic.ReferralDeclined.v1": (
        "referral_declined",
        "referral_id",
        ["referral_id", "on", "reason"],
    ),
    "pulih.clinic.ClientAttended.v1": ("client_attended", "referral_id", ["referral_id", "on"]),
    "pulih.clinic.TreatmentCompleted.v1": (
        "treatment_completed",
        "referral_id",
        ["referral_id", "on", "outcome", "back_referral"],
    ),
    "pulih.reporting.AggregateReported.v1": (
        "aggregate_reported",
        "regency",
        [
            "regency",
            "period",
            "generated_at",
            "indicators",
            "units_by_phase",
            "suppressed_below",
            "revision",
        ],
    ),
}

DEAD_LETTER_FIELDS = [
    "consumer",
    "subject",
    "stream_seq",
    "attempts",
    "error",
    "reason",
    "payload",
    "payload_encoding",
    "payload_size",
    "payload_truncated",
    "payload_redacted",
]
DEAD_LETTERS = {
    f"pulih.{service}.EventDeadLettered.v1": ("event_dead_lettered", "subject", DEAD_LETTER_FIELDS)
    for service in ("outreach", "rehab", "referral", "reporting")
}
"""Every consuming service's dead letter (EVENTS.md, "Dead letters")."""
CATALOGUE.update(DEAD_LETTERS)

OPTIONAL_FIELDS = {
    ("ConsentRecorded", "expires_on"),
    ("ReferralAccepted", "appointment_on"),
    # optional additions since EVENTS.md v1 (readers of older events fall back, see the models)
    ("QualityOfLifeAssessed", "assessed_on"),
    ("AggregateReported", "revision"),
}


def test_the_registry_holds_exactly_the_catalogue() -> None:
    assert sorted(EVENT_TYPES) == sorted(CATALOGUE)
    assert len(ALL_EVENTS) == len(CATALOGUE) == 30
    assert sorted(model.type_name() for model in DEAD_LETTER_EVENTS) == sorted(DEAD_LETTERS)


@pytest.mark.parametrize("type_name", sorted(CATALOGUE))
def test_event_names_subjects_and_fields_follow_the_catalogue(type_name: str) -> None:
    token, about, fields = CATALOGUE[type_name]
    model = model_for(type_name)
    _, service, name, _ = type_name.split(".")

    assert model.event_name() == name
    assert model.service_name == service
    assert model.type_name() == type_name
    assert model.subject_token() == token
    assert model.about == about
    assert list(model.model_fields) == fields


@pytest.mark.parametrize("model", ALL_EVENTS, ids=lambda model: model.__name__)
def test_only_the_fields_marked_optional_may_be_left_out(model: type[Event]) -> None:
    optional = {name for name, field in model.model_fields.items() if not field.is_required()}
    assert optional == {field for event, field in OPTIONAL_FIELDS if event == model.__name__}


def test_phase_completed_must_say_next_phase_even_when_there_is_none() -> None:
    assert model_for("pulih.rehab.PhaseCompleted.v1").model_fields["next_phase"].is_required()


def test_the_nineteen_indicators_are_the_catalogue_s() -> None:
    assert [indicator.value for indicator in Indicator] == [
        "outreach_people_reached",
        "clients_registered",
        "clients_screened",
        "screened_low",
        "screened_moderate",
        "screened_high",
        "clients_enrolled",
        "clients_active",
        "sessions_held",
        "sessions_attended",
        "referrals_made",
        "referrals_accepted",
        "referrals_completed",
        "referrals_overdue",
        "back_referrals",
        "programmes_completed",
        "dropouts",
        "follow_ups_relapsed",
        "qol_improved",
    ]


def test_an_unknown_type_has_no_model() -> None:
    with pytest.raises(InvalidEvent) as raised:
        model_for("pulih.outreach.ClientScreened.v2")
    assert raised.value.reason == "unknown type pulih.outreach.ClientScreened.v2"


def test_a_concrete_event_must_name_a_field_as_its_subject() -> None:
    with pytest.raises(TypeError, match="about must name one of its fields"):

        class ClientMisdescribed(Event):
            service_name = "outreach"
            about = "client"
            client_id: str


def test_a_concrete_event_must_belong_to_a_known_service() -> None:
    with pytest.raises(TypeError, match="service_name must be one of"):

        class ClientElsewhere(Event):
            service_name = "billing"
            about = "client_id"
            client_id: str
