"""Who may start the programme, on the default programme ibm-16w-2021: each refusal in its turn."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from pulih.contracts.codes import Recommendation
from pulih.contracts.consent import ConsentTerms
from pulih.kit.errors import Invalid
from pulih.kit.programme import load_programme
from pulih.rehab.domain.eligibility import NotEligible, ScreeningOutcome, check_may_enrol
from pulih.rehab.domain.programme import programme_from

IBM = programme_from(load_programme())
MONDAY = date(2026, 3, 2)
SCREENED = ScreeningOutcome(date(2026, 2, 23), Recommendation.IBM_PROGRAMME)
CONSENTED = (ConsentTerms(frozenset({"programme", "referral"}), date(2026, 2, 20)),)


def facts(**changed: Any) -> dict[str, Any]:
    """A client who may be enrolled on Monday 2 March 2026, changed by ``changed``."""
    return {
        "enrolled_on": MONDAY,
        "erased": False,
        "already_enrolled": False,
        "screening": SCREENED,
        "first_screened_on": SCREENED.screened_on,
        "consents": CONSENTED,
    } | changed


def test_a_screened_consenting_client_recommended_the_programme_may_be_enrolled() -> None:
    check_may_enrol(IBM, **facts())


@pytest.mark.parametrize(
    ("changed", "code"),
    [
        ({"erased": True, "already_enrolled": True}, "client_erased"),
        ({"already_enrolled": True, "screening": None}, "already_enrolled"),
        ({"screening": None, "first_screened_on": None, "consents": ()}, "not_screened"),
        (
            {"screening": ScreeningOutcome(MONDAY - timedelta(days=91), Recommendation.REFERRAL)},
            "screening_too_old",
        ),
        (
            {"screening": ScreeningOutcome(date(2026, 2, 23), Recommendation.REFERRAL)},
            "recommendation_not_programme",
        ),
        ({"consents": ()}, "consent_required"),
        ({"consents": (ConsentTerms(frozenset({"referral"}), date(2026, 2, 20)),)}, "consent_required"),
        (
            {"consents": (ConsentTerms(frozenset({"programme"}), date(2026, 2, 20), withdrawn_on=MONDAY),)},
            "consent_required",
        ),
        ({"consents": (ConsentTerms(frozenset({"programme"}), date(2026, 3, 3)),)}, "consent_required"),
    ],
)
def test_each_refusal_says_why_and_the_first_that_applies_wins(changed: dict[str, Any], code: str) -> None:
    with pytest.raises(NotEligible) as refused:
        check_may_enrol(IBM, **facts(**changed))
    assert (refused.value.code, refused.value.status) == (code, 409)


def test_a_screening_is_good_for_the_days_the_programme_file_says() -> None:
    assert IBM.screening_valid_days == 90
    ninety_days = ScreeningOutcome(MONDAY - timedelta(days=90), Recommendation.IBM_PROGRAMME)
    check_may_enrol(IBM, **facts(screening=ninety_days, first_screened_on=ninety_days.screened_on))
    older = ScreeningOutcome(MONDAY - timedelta(days=91), Recommendation.IBM_PROGRAMME)
    with pytest.raises(NotEligible) as refused:
        check_may_enrol(IBM, **facts(screening=older, first_screened_on=older.screened_on))
    assert refused.value.code == "screening_too_old"
    assert "91 days old" in refused.value.message and "screen the client again" in refused.value.message


def test_an_enrolment_dated_before_the_first_screening_is_a_wrong_date() -> None:
    with pytest.raises(Invalid) as refused:
        check_may_enrol(IBM, **facts(screening=None, first_screened_on=date(2026, 3, 5)))
    assert (refused.value.code, refused.value.status, refused.value.field) == (
        "date_before_screening",
        422,
        "enrolled_on",
    )
