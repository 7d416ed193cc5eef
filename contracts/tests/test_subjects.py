"""Subject and stream names of EVENTS.md, for each family of events."""

from collections.abc import Callable

import pytest
from event_samples import CLINIC, REGENCY, sample, sample_message

from pulih.contracts import Event, dlq_subject, stream_name, subject_for
from pulih.contracts.events import (
    AggregateReported,
    ClientScreened,
    PhaseCompleted,
    ReferralAccepted,
    ReferralClosed,
    ReferredToClinic,
    TreatmentCompleted,
    UnitEstablished,
)
from pulih.contracts.events.dead_letters import DEAD_LETTER_EVENTS, EventDeadLettered
from pulih.contracts.subjects import (
    clinic_answers,
    event_subject_pattern,
    referrals_for_clinic,
    regency_subjects,
)


def test_one_stream_per_regency_holds_all_its_subjects() -> None:
    assert stream_name("3301") == "IBM_3301"
    assert regency_subjects("3301") == "ibm.3301.>"


@pytest.mark.parametrize(
    ("model", "subject"),
    [
        (ClientScreened, "ibm.3301.outreach.client_screened"),
        (UnitEstablished, "ibm.3301.outreach.unit_established"),
        (PhaseCompleted, "ibm.3301.rehab.phase_completed"),
        (AggregateReported, "ibm.3301.reporting.aggregate_reported"),
    ],
)
def test_service_events_go_to_their_service_s_subject(model: type[Event], subject: str) -> None:
    assert subject_for(sample(model), REGENCY) == subject
    assert subject_for(sample_message(model), REGENCY) == subject
    assert event_subject_pattern(REGENCY, model) == subject


@pytest.mark.parametrize("model", [ReferredToClinic, ReferralClosed])
def test_referral_events_are_addressed_to_the_clinic_in_their_data(model: type[Event]) -> None:
    token = model.subject_token()
    expected = f"ibm.3301.referral.{token}.{CLINIC}"
    assert subject_for(sample_message(model), REGENCY) == expected
    assert subject_for(sample(model), REGENCY, clinic_id=CLINIC) == expected
    assert event_subject_pattern(REGENCY, model) == f"ibm.3301.referral.{token}.*"


def test_a_clinic_reads_only_the_referrals_addressed_to_it() -> None:
    assert referrals_for_clinic("3301", CLINIC) == "ibm.3301.referral.*.rsud-cilacap"
    assert event_subject_pattern("3301", ReferredToClinic, clinic_id=CLINIC) == (
        "ibm.3301.referral.referred_to_clinic.rsud-cilacap"
    )


@pytest.mark.parametrize("model", [ReferralAccepted, TreatmentCompleted])
def test_clinic_events_are_published_under_the_answering_clinic(model: type[Event]) -> None:
    token = model.subject_token()
    assert subject_for(sample(model), REGENCY, clinic_id="rsj-banyumas") == (
        f"ibm.3301.clinic.rsj-banyumas.{token}"
    )
    assert event_subject_pattern(REGENCY, model) == f"ibm.3301.clinic.*.{token}"
    assert event_subject_pattern(REGENCY, model, clinic_id="rsj-banyumas") == (
        f"ibm.3301.clinic.rsj-banyumas.{token}"
    )


def test_what_a_clinic_answers_is_under_its_own_prefix() -> None:
    assert clinic_answers("3301", CLINIC) == "ibm.3301.clinic.rsud-cilacap.>"


def test_dead_letters_go_to_the_consumer_s_subject() -> None:
    assert dlq_subject("3301", "referral") == "ibm.3301.dlq.referral"


@pytest.mark.parametrize("model", DEAD_LETTER_EVENTS, ids=lambda model: model.__name__)
def test_a_dead_letter_goes_to_its_service_s_dead_letter_subject(model: type[EventDeadLettered]) -> None:
    expected = f"ibm.3301.dlq.{model.service_name}"
    assert subject_for(sample_message(model), REGENCY) == expected
    assert event_subject_pattern(REGENCY, model) == expected
    with pytest.raises(ValueError, match="no clinic"):
        subject_for(sample(model), REGENCY, clinic_id=CLINIC)


def test_a_clinic_event_needs_the_clinic() -> None:
    with pytest.raises(ValueError, match="needs the clinic_id"):
        subject_for(sample(ReferralAccepted), REGENCY)


def test_a_referral_event_cannot_be_sent_to_another_clinic() -> None:
    with pytest.raises(ValueError, match="contradicts"):
        subject_for(sample(ReferredToClinic), REGENCY, clinic_id="rsj-banyumas")


def test_a_service_event_has_no_clinic() -> None:
    with pytest.raises(ValueError, match="no clinic"):
        subject_for(sample(ClientScreened), REGENCY, clinic_id=CLINIC)
    with pytest.raises(ValueError, match="no clinic"):
        event_subject_pattern(REGENCY, ClientScreened, clinic_id=CLINIC)


def test_an_event_is_published_only_in_its_own_regency() -> None:
    with pytest.raises(ValueError, match="belongs to regency 3301"):
        subject_for(sample_message(ClientScreened), "3302")
    with pytest.raises(ValueError, match="is not about 3302"):
        subject_for(sample(AggregateReported), "3302")


@pytest.mark.parametrize("regency", ["330", "33010", "33.01", "33O1", "*", ">", ""])
def test_a_malformed_regency_is_refused(regency: str) -> None:
    builders: list[Callable[[], str]] = [
        lambda: stream_name(regency),
        lambda: regency_subjects(regency),
        lambda: subject_for(sample(ClientScreened), regency),
        lambda: event_subject_pattern(regency, ClientScreened),
        lambda: dlq_subject(regency, "rehab"),
        lambda: clinic_answers(regency, CLINIC),
        lambda: referrals_for_clinic(regency, CLINIC),
    ]
    for build in builders:
        with pytest.raises(ValueError, match="4-digit"):
            build()


@pytest.mark.parametrize("clinic_id", ["RSUD", "rsud cilacap", "rsud.cilacap", "*", ">", "", "a" * 65])
def test_a_malformed_clinic_id_is_refused(clinic_id: str) -> None:
    builders: list[Callable[[], str]] = [
        lambda: subject_for(sample(ReferralAccepted), REGENCY, clinic_id=clinic_id),
        lambda: event_subject_pattern(REGENCY, ReferralAccepted, clinic_id=clinic_id),
        lambda: clinic_answers(REGENCY, clinic_id),
        lambda: referrals_for_clinic(REGENCY, clinic_id),
    ]
    for build in builders:
        with pytest.raises(ValueError, match="clinic_id must be a slug"):
            build()


@pytest.mark.parametrize("service", ["", "Rehab", "re.hab", "*", "re hab"])
def test_a_malformed_service_is_refused(service: str) -> None:
    with pytest.raises(ValueError, match="service must be"):
        dlq_subject(REGENCY, service)
