"""WHO ASSIST v3 scoring, written as the programme's rules."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pulih.outreach.domain.assist import (
    ITEM_VALUES,
    AssistAnswerError,
    AssistAnswers,
    AssistResult,
    Injecting,
    Recommendation,
    RiskLevel,
    ScreeningPath,
    Substance,
    SubstanceAnswers,
    SubstanceScore,
    risk_for,
    score_assist,
    specific_involvement_score,
)

RISK_ORDER = [RiskLevel.LOW, RiskLevel.MODERATE, RiskLevel.HIGH]
NON_ALCOHOL = [s for s in Substance if s is not Substance.ALCOHOL]


# --- small factories -----------------------------------------------------------------------------


def never_used(substance: Substance) -> SubstanceAnswers:
    return SubstanceAnswers(substance, ever_used=False)


def used(
    substance: Substance,
    *,
    q2: int,
    q3: int | None = None,
    q4: int | None = None,
    q5: int | None = None,
    q6: int = 0,
    q7: int = 0,
) -> SubstanceAnswers:
    """A substance ever used; Q3-Q5 default to 0 when Q2 > 0 (Q5 stays None for tobacco)."""
    if q2 > 0:
        q3 = 0 if q3 is None else q3
        q4 = 0 if q4 is None else q4
        if substance is not Substance.TOBACCO:
            q5 = 0 if q5 is None else q5
    return SubstanceAnswers(substance, True, q2=q2, q3=q3, q4=q4, q5=q5, q6=q6, q7=q7)


def with_item(answers: SubstanceAnswers, item: str, value: object) -> SubstanceAnswers:
    """The same answers with one item (``q2``..``q7``) changed, possibly to something impossible."""
    changes: dict[str, Any] = {item: value}
    return dataclasses.replace(answers, **changes)


def interview(*substances: SubstanceAnswers, injecting: Injecting = Injecting.NEVER) -> AssistAnswers:
    return AssistAnswers(substances=substances, injecting=injecting)


def refused(answers: AssistAnswers, code: str = "impossible_answer") -> AssistAnswerError:
    with pytest.raises(AssistAnswerError) as caught:
        score_assist(answers)
    assert caught.value.code == code
    return caught.value


# --- the thresholds, from real answer combinations -----------------------------------------------

# Each case: answers, expected score, expected risk.
THRESHOLD_CASES = [
    # cannabis: 3 is low, 4 is moderate
    pytest.param(used(Substance.CANNABIS, q2=0, q6=3), 3, RiskLevel.LOW, id="cannabis never lately, Q6=3"),
    pytest.param(used(Substance.CANNABIS, q2=3), 3, RiskLevel.LOW, id="cannabis monthly only = 3"),
    pytest.param(used(Substance.CANNABIS, q2=4), 4, RiskLevel.MODERATE, id="cannabis weekly only = 4"),
    # alcohol: 10 is low, 11 is moderate
    pytest.param(used(Substance.ALCOHOL, q2=4, q6=6), 10, RiskLevel.LOW, id="alcohol weekly, others worry"),
    pytest.param(used(Substance.ALCOHOL, q2=2, q3=4, q4=4), 10, RiskLevel.LOW, id="alcohol 2+4+4 = 10"),
    pytest.param(used(Substance.ALCOHOL, q2=2, q3=3, q6=6), 11, RiskLevel.MODERATE, id="alcohol 2+3+6 = 11"),
    pytest.param(used(Substance.ALCOHOL, q2=6, q3=5), 11, RiskLevel.MODERATE, id="alcohol daily, craving 5"),
    # alcohol with Q2 never can still reach moderate through Q6 and Q7
    pytest.param(used(Substance.ALCOHOL, q2=0, q6=6, q7=6), 12, RiskLevel.MODERATE, id="alcohol Q2 never"),
    # 26 is moderate and 27 high, for alcohol and for the rest
    pytest.param(
        used(Substance.ALCOHOL, q2=6, q3=6, q4=7, q5=7),
        26,
        RiskLevel.MODERATE,
        id="alcohol 6+6+7+7 = 26",
    ),
    pytest.param(used(Substance.ALCOHOL, q2=6, q3=6, q4=7, q5=8), 27, RiskLevel.HIGH, id="alcohol 27"),
    pytest.param(
        used(Substance.AMPHETAMINE_TYPE_STIMULANTS, q2=4, q3=5, q4=5, q5=6, q6=6),
        26,
        RiskLevel.MODERATE,
        id="sabu 4+5+5+6+6 = 26",
    ),
    pytest.param(
        used(Substance.AMPHETAMINE_TYPE_STIMULANTS, q2=3, q3=4, q4=5, q5=6, q6=3, q7=6),
        27,
        RiskLevel.HIGH,
        id="sabu 3+4+5+6+3+6 = 27",
    ),
    pytest.param(
        used(Substance.OPIOIDS, q2=6, q3=6, q4=7, q5=8, q6=6, q7=6),
        39,
        RiskLevel.HIGH,
        id="opioids maximum 39",
    ),
    # tobacco (no Q5): 3 low, 4 moderate, 26 moderate, 27 high, 31 at most
    pytest.param(used(Substance.TOBACCO, q2=0, q7=3), 3, RiskLevel.LOW, id="tobacco 3"),
    pytest.param(used(Substance.TOBACCO, q2=4), 4, RiskLevel.MODERATE, id="tobacco 4"),
    pytest.param(
        used(Substance.TOBACCO, q2=6, q3=6, q4=5, q6=3, q7=6),
        26,
        RiskLevel.MODERATE,
        id="tobacco 6+6+5+3+6 = 26",
    ),
    pytest.param(
        used(Substance.TOBACCO, q2=6, q3=6, q4=6, q6=3, q7=6),
        27,
        RiskLevel.HIGH,
        id="tobacco 6+6+6+3+6 = 27",
    ),
    pytest.param(
        used(Substance.TOBACCO, q2=6, q3=6, q4=7, q6=6, q7=6),
        31,
        RiskLevel.HIGH,
        id="tobacco maximum 31",
    ),
]


@pytest.mark.parametrize(("answers", "score", "risk"), THRESHOLD_CASES)
def test_worked_examples_at_every_threshold(answers: SubstanceAnswers, score: int, risk: RiskLevel) -> None:
    assert specific_involvement_score(answers) == score
    result = score_assist(interview(answers))
    assert result.substances == (SubstanceScore(answers.substance, score, risk),)
    assert result.overall_risk is risk


def test_a_cannabis_score_of_3_is_low_risk_and_4_is_moderate() -> None:
    assert risk_for(Substance.CANNABIS, 3) is RiskLevel.LOW
    assert risk_for(Substance.CANNABIS, 4) is RiskLevel.MODERATE


def test_alcohol_10_is_low_and_11_moderate() -> None:
    assert risk_for(Substance.ALCOHOL, 10) is RiskLevel.LOW
    assert risk_for(Substance.ALCOHOL, 11) is RiskLevel.MODERATE


@pytest.mark.parametrize("substance", list(Substance))
def test_26_is_moderate_and_27_high_for_every_substance(substance: Substance) -> None:
    assert risk_for(substance, 26) is RiskLevel.MODERATE
    assert risk_for(substance, 27) is RiskLevel.HIGH


@pytest.mark.parametrize("substance", NON_ALCOHOL)
def test_every_substance_but_alcohol_is_moderate_from_4(substance: Substance) -> None:
    assert risk_for(substance, 0) is RiskLevel.LOW
    assert risk_for(substance, 3) is RiskLevel.LOW
    assert risk_for(substance, 4) is RiskLevel.MODERATE
    assert risk_for(substance, 10) is RiskLevel.MODERATE


def test_a_negative_score_does_not_exist() -> None:
    with pytest.raises(ValueError):
        risk_for(Substance.CANNABIS, -1)


# --- what the interview asks and what it cannot produce ------------------------------------------


def test_a_substance_never_used_scores_0_and_is_left_out_of_the_result() -> None:
    assert specific_involvement_score(never_used(Substance.COCAINE)) == 0
    result = score_assist(interview(never_used(Substance.COCAINE), used(Substance.CANNABIS, q2=4)))
    assert [s.substance for s in result.substances] == [Substance.CANNABIS]


def test_nothing_ever_used_is_low_risk_and_brief_advice() -> None:
    result = score_assist(interview(*(never_used(s) for s in Substance)))
    assert result == AssistResult(
        substances=(),
        overall_risk=RiskLevel.LOW,
        injected_last_3_months=False,
        recommendation=Recommendation.ADVICE,
    )


def test_a_screening_names_at_least_one_substance() -> None:
    # asked about every substance and never used any is a screening (above); asked about none is not
    assert refused(interview(), "no_substances").field == "substances"


def test_tobacco_refuses_q5() -> None:
    answers = SubstanceAnswers(Substance.TOBACCO, True, q2=6, q3=0, q4=0, q5=0, q6=0, q7=0)
    error = refused(interview(never_used(Substance.ALCOHOL), answers))
    assert error.field == "substances[1].q5"
    assert "tobacco" in error.message


def test_tobacco_is_scored_without_q5() -> None:
    answers = SubstanceAnswers(Substance.TOBACCO, True, q2=6, q3=3, q4=4, q5=None, q6=0, q7=3)
    assert specific_involvement_score(answers) == 16


def test_q3_given_when_q2_is_never_is_refused() -> None:
    answers = SubstanceAnswers(Substance.CANNABIS, True, q2=0, q3=3, q6=0, q7=0)
    error = refused(interview(answers))
    assert error.field == "substances[0].q3"


@pytest.mark.parametrize("item", ["q4", "q5"])
def test_q4_and_q5_given_when_q2_is_never_are_refused(item: str) -> None:
    answers = with_item(used(Substance.ALCOHOL, q2=0), item, 0)
    assert refused(interview(answers)).field == f"substances[0].{item}"


@pytest.mark.parametrize("item", ["q2", "q3", "q4", "q5", "q6", "q7"])
def test_an_item_asked_but_not_answered_is_refused(item: str) -> None:
    answers = with_item(used(Substance.OPIOIDS, q2=2), item, None)
    assert refused(interview(answers)).field == f"substances[0].{item}"


@pytest.mark.parametrize("item", ["q2", "q3", "q4", "q5", "q6", "q7"])
def test_answers_after_q1_no_are_refused(item: str) -> None:
    answers = with_item(never_used(Substance.INHALANTS), item, 0)
    assert refused(interview(answers)).field == f"substances[0].{item}"


@pytest.mark.parametrize(
    ("item", "value"),
    [
        ("q2", 1),  # Q2 has no 1: once or twice is 2
        ("q2", 5),
        ("q3", 2),
        ("q3", 7),
        ("q4", 3),
        ("q4", 8),
        ("q5", 4),
        ("q5", 9),
        ("q6", 4),
        ("q7", 5),
        ("q7", -3),
    ],
)
def test_a_value_outside_the_item_is_refused_with_its_path(item: str, value: int) -> None:
    good = used(Substance.SEDATIVES, q2=2)
    answers = with_item(good, item, value)
    earlier = (never_used(Substance.TOBACCO), used(Substance.HALLUCINOGENS, q2=0))
    error = refused(interview(*earlier, answers))
    assert error.field == f"substances[2].{item}"
    assert str(value) in error.message


def test_a_bool_is_not_an_answer_value() -> None:
    answers = dataclasses.replace(used(Substance.CANNABIS, q2=2), q6=False)
    assert refused(interview(answers)).field == "substances[0].q6"


def test_the_first_impossible_answer_is_the_one_reported() -> None:
    answers = SubstanceAnswers(Substance.CANNABIS, True, q2=6, q3=1, q4=1, q5=1, q6=1, q7=1)
    assert refused(interview(used(Substance.ALCOHOL, q2=2), answers)).field == "substances[1].q3"


def test_specific_involvement_score_names_the_bare_item() -> None:
    with pytest.raises(AssistAnswerError) as caught:
        specific_involvement_score(dataclasses.replace(used(Substance.TOBACCO, q2=4), q5=5))
    assert caught.value.field == "q5"


def test_a_substance_answered_twice_is_refused() -> None:
    error = refused(
        interview(
            used(Substance.CANNABIS, q2=2),
            never_used(Substance.ALCOHOL),
            never_used(Substance.CANNABIS),
        )
    )
    assert error.field == "substances[2].substance"


# --- the path ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "recommendation"),
    [
        (used(Substance.CANNABIS, q2=3), Recommendation.ADVICE),
        (used(Substance.CANNABIS, q2=4), Recommendation.IBM_PROGRAMME),
        (
            used(Substance.AMPHETAMINE_TYPE_STIMULANTS, q2=3, q3=4, q4=5, q5=6, q6=3, q7=6),
            Recommendation.REFERRAL,
        ),
    ],
)
def test_the_national_path_low_advice_moderate_ibm_high_referral(
    answers: SubstanceAnswers, recommendation: Recommendation
) -> None:
    assert score_assist(interview(answers)).recommendation is recommendation


def test_injecting_in_the_past_3_months_forces_referral_even_for_low_risk() -> None:
    result = score_assist(interview(used(Substance.OPIOIDS, q2=2), injecting=Injecting.PAST_3_MONTHS))
    assert result.overall_risk is RiskLevel.LOW
    assert result.injected_last_3_months is True
    assert result.recommendation is Recommendation.REFERRAL


def test_injecting_earlier_is_recorded_but_changes_nothing() -> None:
    result = score_assist(interview(used(Substance.OPIOIDS, q2=2), injecting=Injecting.EARLIER))
    assert result.injected_last_3_months is False
    assert result.recommendation is Recommendation.ADVICE


def test_a_regency_that_sends_moderate_risk_to_referral() -> None:
    strict_regency = ScreeningPath(moderate=Recommendation.REFERRAL)
    result = score_assist(interview(used(Substance.CANNABIS, q2=4)), strict_regency)
    assert result.overall_risk is RiskLevel.MODERATE
    assert result.recommendation is Recommendation.REFERRAL


def test_recent_injecting_never_weakens_the_path_for_the_risk() -> None:
    # A regency that only offers IBM for recent injecting still refers high-risk clients.
    regency = ScreeningPath(recent_injecting=Recommendation.IBM_PROGRAMME)
    high = used(Substance.OPIOIDS, q2=6, q3=6, q4=7, q5=8)
    low = used(Substance.OPIOIDS, q2=2)
    recent = Injecting.PAST_3_MONTHS
    assert score_assist(interview(high, injecting=recent), regency).recommendation is (
        Recommendation.REFERRAL
    )
    assert score_assist(interview(low, injecting=recent), regency).recommendation is (
        Recommendation.IBM_PROGRAMME
    )


def test_the_overall_risk_is_the_highest_substance_risk() -> None:
    result = score_assist(
        interview(
            used(Substance.ALCOHOL, q2=4, q6=6),  # 10, low for alcohol
            used(Substance.CANNABIS, q2=4),  # 4, moderate
            used(Substance.TOBACCO, q2=0, q6=3),  # 3, low
        )
    )
    assert [s.risk for s in result.substances] == [
        RiskLevel.LOW,
        RiskLevel.MODERATE,
        RiskLevel.LOW,
    ]
    assert result.overall_risk is RiskLevel.MODERATE


def test_values_match_the_event_contract() -> None:
    assert [s.value for s in Substance] == [
        "tobacco",
        "alcohol",
        "cannabis",
        "cocaine",
        "amphetamine_type_stimulants",
        "inhalants",
        "sedatives",
        "hallucinogens",
        "opioids",
        "other",
    ]
    assert [r.value for r in RiskLevel] == ["low", "moderate", "high"]
    assert [r.value for r in Recommendation] == ["advice", "ibm_programme", "referral"]
    assert [i.value for i in Injecting] == ["never", "past_3_months", "earlier"]


# --- properties ----------------------------------------------------------------------------------


def item(name: str) -> st.SearchStrategy[int]:
    return st.sampled_from(sorted(ITEM_VALUES[name]))


@st.composite
def substance_answers(
    draw: st.DrawFn, substance: st.SearchStrategy[Substance] = st.sampled_from(Substance)
) -> SubstanceAnswers:
    """Any answers the interview can produce for one substance."""
    chosen = draw(substance)
    if not draw(st.booleans()):
        return never_used(chosen)
    q2 = draw(item("q2"))
    asked_more = q2 > 0
    return SubstanceAnswers(
        chosen,
        True,
        q2=q2,
        q3=draw(item("q3")) if asked_more else None,
        q4=draw(item("q4")) if asked_more else None,
        q5=draw(item("q5")) if asked_more and chosen is not Substance.TOBACCO else None,
        q6=draw(item("q6")),
        q7=draw(item("q7")),
    )


assist_answers = st.builds(
    AssistAnswers,
    substances=st.lists(substance_answers(), min_size=1, unique_by=lambda a: a.substance).map(tuple),
    injecting=st.sampled_from(Injecting),
)


@given(substance_answers())
def test_any_valid_answers_score_0_to_39_and_0_to_31_for_tobacco(
    answers: SubstanceAnswers,
) -> None:
    score = specific_involvement_score(answers)
    assert 0 <= score <= (31 if answers.substance is Substance.TOBACCO else 39)
    if not answers.ever_used:
        assert score == 0


@given(st.sampled_from(Substance), st.integers(0, 39), st.integers(0, 39))
def test_risk_is_monotone_in_score(substance: Substance, a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert RISK_ORDER.index(risk_for(substance, low)) <= RISK_ORDER.index(risk_for(substance, high))


@given(assist_answers)
def test_the_overall_risk_is_the_max_and_the_path_follows(answers: AssistAnswers) -> None:
    result = score_assist(answers)
    used_substances = [a.substance for a in answers.substances if a.ever_used]
    assert [s.substance for s in result.substances] == used_substances
    expected = max((RISK_ORDER.index(s.risk) for s in result.substances), default=0)
    assert result.overall_risk is RISK_ORDER[expected]
    assert result.injected_last_3_months is (answers.injecting is Injecting.PAST_3_MONTHS)
    if result.injected_last_3_months or result.overall_risk is RiskLevel.HIGH:
        assert result.recommendation is Recommendation.REFERRAL


@given(
    substance_answers().filter(lambda a: a.ever_used and a.q2 != 0),
    st.sampled_from(["q2", "q3", "q4", "q5", "q6", "q7"]),
    st.integers(-10, 20),
)
def test_any_value_outside_an_item_is_refused_with_its_field(
    answers: SubstanceAnswers, name: str, value: int
) -> None:
    # Q2 > 0 (from the strategy) keeps Q3-Q5 asked, so the bad value is the first problem.
    assume(value not in ITEM_VALUES[name])
    assume(not (name == "q5" and answers.substance is Substance.TOBACCO))
    bad = with_item(answers, name, value)
    with pytest.raises(AssistAnswerError) as caught:
        score_assist(AssistAnswers((bad,), Injecting.NEVER))
    assert caught.value.field == f"substances[0].{name}"
