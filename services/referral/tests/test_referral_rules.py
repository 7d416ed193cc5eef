"""The rules of referring, of clinics' answers and of the identity hand-over, without a store or
a broker: plain facts in, a decision or a domain error (the code the caller sees) out."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from uuid import UUID

import pytest

from pulih.contracts.codes import ClinicService, DeclineReason, EscalationReason, ReferralOutcome
from pulih.contracts.consent import ConsentTerms
from pulih.contracts.events.clinic import (
    ClientAttended,
    ReferralAccepted,
    ReferralDeclined,
    TreatmentCompleted,
)
from pulih.kit.errors import Conflict, Forbidden, Gone, Invalid, NotFound, PulihError
from pulih.referral.domain import answers, hand_over, referring
from pulih.referral.domain.lifecycle import IllegalTransition, ReferralStatus

MARCH_1 = date(2026, 3, 1)
UNIT = uuid.uuid4()


@dataclass
class Client:
    unit_id: UUID
    erased_on: date | None = None
    registered_on: date = date(2026, 2, 1)


@dataclass
class Clinic:
    name: str = "Klinik Sehat"
    services: tuple[str, ...] = ("rawat_jalan",)
    regencies: tuple[str, ...] = ("3301",)


@dataclass
class Consent:
    scopes: tuple[str, ...]
    given_on: date = date(2026, 2, 1)
    withdrawn_on: date | None = None

    def allows(self, scope: str | None, day: date) -> bool:
        return ConsentTerms(frozenset(self.scopes), self.given_on, None, self.withdrawn_on).allows(scope, day)


@dataclass
class Screening:
    client_id: UUID
    screened_on: date


@dataclass
class Referral:
    clinic_id: str = "klinik-sehat"
    referred_on: date = MARCH_1
    state: ReferralStatus = ReferralStatus.REFERRED
    accepted_on: date | None = None
    attended_on: date | None = None


def refused(error: type[PulihError], call: Callable[[], object]) -> tuple[str, int, str | None]:
    """The code, HTTP status and field of the ``error`` that ``call`` raises."""
    with pytest.raises(error) as caught:
        call()
    return caught.value.code, caught.value.status, caught.value.field


def test_a_referral_is_dated_between_the_clients_registration_and_today() -> None:
    registered = date(2026, 2, 1)
    assert referring.referral_day(None, MARCH_1, registered) == MARCH_1
    assert referring.referral_day(date(2026, 2, 27), MARCH_1, registered) == date(2026, 2, 27)
    assert referring.referral_day(registered, MARCH_1, registered) == registered
    assert referring.referral_day(date(2026, 3, 2), MARCH_1, registered) == date(2026, 3, 2), "a day of slack"
    cases = [
        (date(2026, 3, 3), "date_in_future"),
        (date(2999, 1, 1), "date_in_future"),
        (date(2026, 1, 31), "date_before_registration"),
    ]
    for day, code in cases:
        assert refused(Invalid, lambda d=day: referring.referral_day(d, MARCH_1, registered)) == (
            code,
            422,
            "referred_on",
        )


def test_a_unit_refers_a_known_client_of_its_own_who_was_not_erased() -> None:
    client = Client(UNIT)
    assert referring.client_to_refer(client, uuid.uuid4(), lambda unit: unit == UNIT) is client
    someone = uuid.uuid4()
    assert refused(NotFound, lambda: referring.client_to_refer(None, someone, lambda _: True)) == (
        "client_not_found",
        404,
        "client_id",
    )
    assert refused(Forbidden, lambda: referring.client_to_refer(client, someone, lambda _: False)) == (
        "other_unit",
        403,
        "client_id",
    )
    erased = Client(UNIT, erased_on=date(2026, 2, 20))
    assert refused(Gone, lambda: referring.client_to_refer(erased, someone, lambda _: True)) == (
        "client_erased",
        410,
        None,
    )


def test_the_clinic_must_be_in_the_directory_serve_the_regency_and_offer_the_service() -> None:
    clinic = Clinic()
    rawat_jalan, rawat_inap = ClinicService.RAWAT_JALAN, ClinicService.RAWAT_INAP
    assert referring.clinic_to_refer_to(clinic, "k", "3301", rawat_jalan) is clinic
    cases = [
        (lambda: referring.clinic_to_refer_to(None, "k", "3301", rawat_jalan), "unknown_clinic", "clinic_id"),
        (
            lambda: referring.clinic_to_refer_to(clinic, "k", "3302", rawat_jalan),
            "clinic_out_of_area",
            "clinic_id",
        ),
        (
            lambda: referring.clinic_to_refer_to(clinic, "k", "3301", rawat_inap),
            "service_not_offered",
            "service",
        ),
    ]
    for call, code, field in cases:
        assert refused(Invalid, call) == (code, 422, field)


def test_a_referral_needs_a_screening_and_a_referral_consent_on_its_day() -> None:
    screened = Screening(uuid.uuid4(), date(2026, 2, 20))
    referring.screened_before(screened, MARCH_1)
    assert refused(Conflict, lambda: referring.screened_before(None, MARCH_1)) == ("not_screened", 409, None)
    later = Screening(uuid.uuid4(), date(2026, 3, 5))
    assert refused(Invalid, lambda: referring.screened_before(None, MARCH_1, later)) == (
        "date_before_screening",
        422,
        "referred_on",
    )
    programme_only = Consent(("programme",))
    referral = Consent(("programme", "referral"))
    assert referring.consent_to_refer([programme_only, referral], MARCH_1) is referral
    withdrawn = Consent(("referral",), withdrawn_on=date(2026, 2, 20))
    later = Consent(("referral",), given_on=date(2026, 3, 2))
    assert refused(
        Conflict, lambda: referring.consent_to_refer([programme_only, withdrawn, later], MARCH_1)
    ) == (
        "consent_required",
        409,
        None,
    )


def test_one_open_referral_per_clinic_and_a_device_made_id_must_be_new() -> None:
    referring.none_open(None)
    assert refused(Conflict, lambda: referring.none_open(uuid.uuid4()))[:2] == ("referral_open", 409)
    fresh = uuid.uuid4()
    assert referring.new_referral_id(fresh, taken=False) == fresh
    assert refused(Conflict, lambda: referring.new_referral_id(fresh, taken=True)) == (
        "referral_exists",
        409,
        "referral_id",
    )


def test_a_suggestion_is_each_clients_latest_screening_not_yet_followed_by_a_referral() -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    old_a, new_a = Screening(a, date(2026, 2, 1)), Screening(a, date(2026, 2, 10))
    b_screened, c_screened = Screening(b, date(2026, 2, 5)), Screening(c, date(2026, 2, 5))
    referred = [(b, date(2026, 2, 5)), (c, date(2026, 2, 4))]
    assert referring.suggestions([old_a, b_screened, c_screened, new_a], referred) == [new_a, c_screened]


def test_only_the_addressed_clinic_answers_and_never_before_the_referral() -> None:
    rid = uuid.uuid4()
    accepted = ReferralAccepted(referral_id=rid, accepted_on=date(2026, 3, 2))
    referral = Referral()
    assert (
        answers.step_for(referral, rid, "klinik-sehat", accepted, MARCH_1).status is ReferralStatus.ACCEPTED
    )
    assert refused(NotFound, lambda: answers.step_for(None, rid, "klinik-sehat", accepted, MARCH_1)) == (
        "unknown_referral",
        404,
        None,
    )
    assert refused(Forbidden, lambda: answers.step_for(referral, rid, "rsud", accepted, MARCH_1)) == (
        "other_clinic",
        403,
        None,
    )
    early = ReferralAccepted(referral_id=rid, accepted_on=date(2026, 2, 28))
    assert refused(Invalid, lambda: answers.step_for(referral, rid, "klinik-sehat", early, MARCH_1)) == (
        "answer_before_referral",
        422,
        "accepted_on",
    )


def test_another_clinic_learns_only_that_the_referral_is_not_its_own() -> None:
    """Whatever is wrong with its answer besides (dates, order), another clinic is told only
    ``other_clinic``: nothing of the referral's dates or status."""
    rid = uuid.uuid4()
    attended = Referral(state=ReferralStatus.ATTENDED, accepted_on=MARCH_1, attended_on=date(2026, 3, 10))
    for answer in (
        ReferralAccepted(referral_id=rid, accepted_on=date(2026, 2, 1)),
        ReferralAccepted(referral_id=rid, accepted_on=date(2999, 1, 1)),
        ClientAttended(referral_id=rid, on=date(2026, 3, 2)),
    ):
        with pytest.raises(Forbidden) as caught:
            answers.step_for(attended, rid, "rsud", answer, MARCH_1)
        assert (caught.value.code, caught.value.message) == (
            "other_clinic",
            "this referral is not addressed to you",
        )


def test_an_answer_is_never_dated_after_today_nor_before_the_answer_it_follows() -> None:
    rid, today = uuid.uuid4(), date(2026, 4, 1)
    accepted = Referral(state=ReferralStatus.ACCEPTED, accepted_on=date(2026, 3, 5))
    attended = Referral(
        state=ReferralStatus.ATTENDED, accepted_on=date(2026, 3, 5), attended_on=date(2026, 3, 10)
    )
    cases = [
        (
            Referral(),
            ReferralAccepted(referral_id=rid, accepted_on=date(2999, 1, 1)),
            "date_in_future",
            "accepted_on",
        ),
        (accepted, ClientAttended(referral_id=rid, on=date(2999, 1, 1)), "date_in_future", "on"),
        (
            Referral(),
            ReferralAccepted(referral_id=rid, accepted_on=date(2026, 3, 5), appointment_on=date(2026, 3, 4)),
            "date_before_acceptance",
            "appointment_on",
        ),
        (accepted, ClientAttended(referral_id=rid, on=date(2026, 3, 4)), "date_before_acceptance", "on"),
        (
            attended,
            TreatmentCompleted(referral_id=rid, on=date(2026, 3, 9), outcome="completed", back_referral=True),  # type: ignore[arg-type]
            "date_before_attendance",
            "on",
        ),
        (
            accepted,
            TreatmentCompleted(
                referral_id=rid, on=date(2026, 3, 4), outcome="dropped_out", back_referral=False
            ),  # type: ignore[arg-type]
            "date_before_acceptance",
            "on",
        ),
    ]
    for referral, answer, code, field in cases:
        assert refused(
            Invalid, lambda r=referral, a=answer: answers.step_for(r, rid, "klinik-sehat", a, today)
        ) == (
            code,
            422,
            field,
        ), answer
    # on the day of the answer it follows, or later; an appointment in the future is fine
    answers.step_for(
        attended,
        rid,
        "klinik-sehat",
        TreatmentCompleted(referral_id=rid, on=date(2026, 3, 10), outcome="completed", back_referral=True),
        today,
    )  # type: ignore[arg-type]
    answers.step_for(
        accepted, rid, "klinik-sehat", ClientAttended(referral_id=rid, on=date(2026, 3, 5)), today
    )
    later = ReferralAccepted(referral_id=rid, accepted_on=MARCH_1, appointment_on=date(2026, 6, 1))
    assert answers.step_for(Referral(), rid, "klinik-sehat", later, MARCH_1).status is ReferralStatus.ACCEPTED


def test_an_answer_takes_the_step_the_life_cycle_allows() -> None:
    rid = uuid.uuid4()
    declined = ReferralDeclined(referral_id=rid, on=date(2026, 3, 2), reason=DeclineReason.NO_CAPACITY)
    step = answers.step_for(Referral(), rid, "klinik-sehat", declined, MARCH_1)
    assert (step.closes_with, step.escalates) == (ReferralOutcome.DECLINED, EscalationReason.DECLINED)
    attended = ClientAttended(referral_id=rid, on=date(2026, 3, 2))
    with pytest.raises(IllegalTransition) as caught:
        answers.step_for(Referral(), rid, "klinik-sehat", attended, MARCH_1)
    assert caught.value.code == "illegal_transition" and caught.value.premature
    assert answers.answered_on(attended) == date(2026, 3, 2)


def test_a_hand_over_states_a_purpose_of_3_to_150_printable_characters() -> None:
    assert hand_over.stated_purpose("admission") == "admission"
    for purpose in ("x", "y" * 151, "admission\x00"):
        assert refused(Invalid, lambda p=purpose: hand_over.stated_purpose(p)) == (
            "invalid_purpose",
            422,
            "purpose",
        )


def test_the_identity_goes_only_to_the_addressed_clinic_of_an_open_referral_with_consent() -> None:
    consents = [Consent(("referral", "identity_to_clinic"))]
    open_referral = Referral()
    hand_over.may_hand_over(open_referral, "klinik-sehat", consents, None, MARCH_1)
    closed = Referral(state=ReferralStatus.CANCELLED)
    cases = [
        (
            lambda: hand_over.may_hand_over(open_referral, None, consents, None, MARCH_1),
            "not_addressed_clinic",
        ),
        (
            lambda: hand_over.may_hand_over(open_referral, "rsud", consents, None, MARCH_1),
            "not_addressed_clinic",
        ),
        (
            lambda: hand_over.may_hand_over(None, "klinik-sehat", consents, None, MARCH_1),
            "not_addressed_clinic",
        ),
        (lambda: hand_over.may_hand_over(closed, "klinik-sehat", consents, None, MARCH_1), "referral_closed"),
        (
            lambda: hand_over.may_hand_over(
                open_referral, "klinik-sehat", [Consent(("referral",))], None, MARCH_1
            ),
            "consent_required",
        ),
    ]
    for call, code in cases:
        assert refused(Forbidden, call) == (code, 403, None)
    erased = date(2026, 2, 20)
    assert refused(
        Gone, lambda: hand_over.may_hand_over(open_referral, "klinik-sehat", consents, erased, MARCH_1)
    ) == (
        "client_erased",
        410,
        None,
    )
