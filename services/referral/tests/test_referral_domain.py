"""The referral's life cycle and response times, without a store or a broker."""

from __future__ import annotations

from datetime import date

import pytest

from pulih.contracts.codes import (
    ClinicService,
    EscalationReason,
    ReferralOutcome,
    TreatmentOutcome,
    Urgency,
)
from pulih.kit.errors import Invalid
from pulih.kit.programme import load_programme
from pulih.referral.domain import clinics
from pulih.referral.domain import lifecycle as domain
from pulih.referral.domain.lifecycle import IllegalTransition, ReferralStatus
from pulih.referral.domain.response_times import ResponseTimes

S = ReferralStatus


def test_a_clinic_accepts_a_referral_it_has_not_answered() -> None:
    assert domain.accept(S.REFERRED).status is S.ACCEPTED
    assert domain.accept(S.REFERRED).closes_with is None


@pytest.mark.parametrize("status", [S.ACCEPTED, S.DECLINED, S.ATTENDED, S.COMPLETED, S.CANCELLED])
def test_a_referral_is_accepted_only_once_and_only_while_open(status: ReferralStatus) -> None:
    with pytest.raises(IllegalTransition):
        domain.accept(status)


def test_a_decline_closes_the_referral_and_escalates_it() -> None:
    step = domain.decline(S.REFERRED)
    assert step.status is S.DECLINED
    assert step.closes_with is ReferralOutcome.DECLINED and step.back_referral is False
    assert step.escalates is EscalationReason.DECLINED


def test_a_clinic_cannot_decline_a_client_it_accepted() -> None:
    with pytest.raises(IllegalTransition):
        domain.decline(S.ACCEPTED)


def test_a_client_attends_only_after_acceptance() -> None:
    assert domain.attend(S.ACCEPTED).status is S.ATTENDED
    for status in (S.REFERRED, S.ATTENDED, S.COMPLETED):
        with pytest.raises(IllegalTransition):
            domain.attend(status)


def test_completion_with_back_referral_closes_with_the_treatment_outcome() -> None:
    step = domain.complete(S.ATTENDED, TreatmentOutcome.COMPLETED, back_referral=True)
    assert step.status is S.COMPLETED
    assert step.closes_with is ReferralOutcome.COMPLETED and step.back_referral is True


def test_completed_before_accepted_is_illegal() -> None:
    with pytest.raises(IllegalTransition, match="referred cannot be completed") as caught:
        domain.complete(S.REFERRED, TreatmentOutcome.COMPLETED, back_referral=False)
    assert (caught.value.code, caught.value.status, caught.value.referral_status) == (
        "illegal_transition",
        409,
        S.REFERRED,
    )


def test_an_accepted_client_who_never_came_can_only_have_dropped_out() -> None:
    step = domain.complete(S.ACCEPTED, TreatmentOutcome.DROPPED_OUT, back_referral=True)
    assert step.closes_with is ReferralOutcome.DROPPED_OUT and step.back_referral is True
    with pytest.raises(IllegalTransition):
        domain.complete(S.ACCEPTED, TreatmentOutcome.COMPLETED, back_referral=False)


@pytest.mark.parametrize("status", [S.REFERRED, S.ACCEPTED, S.ATTENDED])
def test_an_open_referral_can_be_cancelled(status: ReferralStatus) -> None:
    step = domain.cancel(status)
    assert step.status is S.CANCELLED and step.closes_with is ReferralOutcome.CANCELLED


@pytest.mark.parametrize("status", [S.DECLINED, S.COMPLETED, S.CANCELLED])
def test_nothing_happens_to_a_closed_referral(status: ReferralStatus) -> None:
    for attempt in (
        lambda: domain.cancel(status),
        lambda: domain.accept(status),
        lambda: domain.attend(status),
        lambda: domain.complete(status, TreatmentOutcome.DROPPED_OUT, back_referral=False),
    ):
        with pytest.raises(IllegalTransition):
            attempt()


def test_the_default_programme_gives_clinics_3_days_routine_and_1_day_urgent() -> None:
    times = ResponseTimes.from_programme(load_programme())
    assert times.respond_by(date(2026, 3, 1), Urgency.ROUTINE) == date(2026, 3, 4)
    assert times.respond_by(date(2026, 3, 1), Urgency.URGENT) == date(2026, 3, 2)


def test_a_regency_may_set_its_own_response_times() -> None:
    times = ResponseTimes.from_programme({"referral": {"respond_within_days": {"routine": 7, "urgent": 2}}})
    assert times.respond_by(date(2026, 3, 1), Urgency.ROUTINE) == date(2026, 3, 8)


def test_a_programme_without_response_times_is_refused() -> None:
    with pytest.raises(ValueError, match="respond_within_days"):
        ResponseTimes.from_programme({"referral": {"respond_within_days": {"routine": 3}}})


def test_a_referral_is_overdue_the_day_after_respond_by_if_still_unanswered() -> None:
    respond_by = date(2026, 3, 4)
    assert not domain.overdue(S.REFERRED, respond_by, date(2026, 3, 4), escalated=False)
    assert domain.overdue(S.REFERRED, respond_by, date(2026, 3, 5), escalated=False)
    assert not domain.overdue(S.REFERRED, respond_by, date(2026, 3, 5), escalated=True)
    assert not domain.overdue(S.ACCEPTED, respond_by, date(2026, 3, 9), escalated=False)
    assert domain.escalated_on(respond_by) == date(2026, 3, 5)


def test_a_clinic_takes_only_the_services_it_offers() -> None:
    assert clinics.offers(["rawat_jalan", "medis"], ClinicService.MEDIS)
    assert not clinics.offers(["rawat_jalan"], ClinicService.RAWAT_INAP)


def test_an_answer_that_is_only_early_is_premature_and_may_be_retried() -> None:
    for attempt in (
        lambda: domain.attend(S.REFERRED),
        lambda: domain.complete(S.REFERRED, TreatmentOutcome.COMPLETED, back_referral=True),
        lambda: domain.complete(S.ACCEPTED, TreatmentOutcome.COMPLETED, back_referral=True),
    ):
        with pytest.raises(IllegalTransition) as caught:
            attempt()
        assert caught.value.premature


def test_a_duplicate_a_step_back_or_anything_after_closing_is_never_premature() -> None:
    for attempt in (
        lambda: domain.accept(S.ACCEPTED),
        lambda: domain.attend(S.ATTENDED),
        lambda: domain.decline(S.ATTENDED),
        lambda: domain.accept(S.DECLINED),
        lambda: domain.complete(S.COMPLETED, TreatmentOutcome.COMPLETED, back_referral=True),
        lambda: domain.attend(S.CANCELLED),
    ):
        with pytest.raises(IllegalTransition) as caught:
            attempt()
        assert not caught.value.premature


def test_a_cancellation_lies_between_the_referral_or_the_clinics_last_answer_and_today() -> None:
    referred, today = date(2026, 3, 1), date(2026, 3, 20)
    assert domain.cancellation_day(date(2026, 3, 1), referred, today) == date(2026, 3, 1)
    assert domain.cancellation_day(date(2026, 3, 10), referred, today, date(2026, 3, 10)) == date(2026, 3, 10)
    for on, last_answer, code in (
        (date(2026, 2, 28), None, "cancelled_before_referral"),
        (date(2999, 1, 1), None, "date_in_future"),
        (date(2026, 3, 9), date(2026, 3, 10), "cancelled_before_answer"),
    ):
        with pytest.raises(Invalid) as caught:
            domain.cancellation_day(on, referred, today, last_answer)
        assert (caught.value.code, caught.value.field) == (code, "on")


def test_a_withdrawn_consent_cancels_on_its_day_unless_the_referral_or_an_answer_came_later() -> None:
    referred = date(2026, 3, 1)
    assert domain.cancelled_on_withdrawal(date(2026, 3, 5), referred) == date(2026, 3, 5)
    assert domain.cancelled_on_withdrawal(date(2026, 2, 20), referred) == referred
    assert domain.cancelled_on_withdrawal(date(2026, 3, 5), referred, date(2026, 3, 8)) == date(2026, 3, 8)


def test_a_clinic_serves_only_its_own_regencies() -> None:
    assert clinics.serves(["3301", "3302"], "3301")
    assert not clinics.serves(["3302"], "3301")
