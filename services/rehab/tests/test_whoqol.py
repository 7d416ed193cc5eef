"""WHOQOL-BREF scoring on worked examples: reversal, domains, and each missing-item rule."""

from __future__ import annotations

import pytest

from pulih.rehab.domain.whoqol import WhoqolFormError, score_whoqol

# A worked form. Items 3, 4 and 26 are reversed: 2 → 4, 1 → 5, 2 → 4.
FORM = {
    1: 3, 2: 4, 3: 2, 4: 1, 5: 3, 6: 4, 7: 3, 8: 3, 9: 4, 10: 3, 11: 4, 12: 2, 13: 3,
    14: 2, 15: 4, 16: 3, 17: 3, 18: 4, 19: 3, 20: 4, 21: 2, 22: 4, 23: 3, 24: 4, 25: 3, 26: 2,
}  # fmt: skip


def test_the_worked_form_scores_each_domain_from_its_items() -> None:
    scores = score_whoqol(FORM)
    # physical: 4 5 3 4 3 3 4 → mean 26/7 → x4 = 14.86 → (14.86 - 4) x 100/16
    assert scores.physical == 67.86
    assert scores.psychological == 62.5  # 3 4 3 4 3 4 → mean 3.5 → 14
    assert scores.social == 58.33  # 4 2 4 → 13.33
    assert scores.environment == 50.0  # mean 3 → 12


def test_all_middle_answers_score_fifty_everywhere() -> None:
    scores = score_whoqol(dict.fromkeys(range(1, 27), 3))
    assert (scores.physical, scores.psychological, scores.social, scores.environment) == (50, 50, 50, 50)


def test_negatively_worded_items_are_reversed() -> None:
    best = {**dict.fromkeys(range(1, 27), 5), 3: 1, 4: 1, 26: 1}  # no pain, no medicine, no low mood
    assert score_whoqol(best).physical == 100.0 and score_whoqol(best).psychological == 100.0
    unreversed = dict.fromkeys(range(1, 27), 5)  # "extremely" much pain and need of treatment
    assert score_whoqol(unreversed).physical == pytest.approx(71.43)


def test_the_global_items_belong_to_no_domain() -> None:
    assert score_whoqol({**FORM, 1: 1, 2: 1}) == score_whoqol({**FORM, 1: 5, 2: 5})


def test_up_to_two_missing_items_in_a_domain_take_its_mean() -> None:
    # physical without items 10 and 15: 4 5 3 3 4 → mean 3.8 → 15.2 → 70.0
    assert score_whoqol({**FORM, 10: None, 15: None}).physical == 70.0
    assert score_whoqol({k: v for k, v in FORM.items() if k not in (10, 15)}).physical == 70.0


def test_a_third_missing_item_leaves_a_domain_unscorable() -> None:
    with pytest.raises(WhoqolFormError) as error:
        score_whoqol({**FORM, 10: None, 15: None, 16: None})
    assert error.value.code == "whoqol_domain_incomplete" and error.value.field is None


def test_the_social_domain_needs_two_of_its_three_items() -> None:
    assert score_whoqol({**FORM, 21: None}).social == 75.0  # 4 4 → 16
    with pytest.raises(WhoqolFormError) as error:
        score_whoqol({**FORM, 20: None, 21: None})
    assert error.value.field is None and "the social domain" in error.value.message


def test_a_form_more_than_twenty_percent_missing_is_rejected() -> None:
    five = {**FORM, 1: None, 2: None, 5: None, 8: None, 10: None}
    score_whoqol(five)  # 5 of 26 is under 20%
    with pytest.raises(WhoqolFormError) as error:
        score_whoqol({**five, 20: None})
    assert error.value.code == "whoqol_too_many_missing" and error.value.field is None


def test_an_answer_outside_one_to_five_is_refused() -> None:
    with pytest.raises(WhoqolFormError) as error:
        score_whoqol({**FORM, 7: 6})
    assert error.value.field == "q7"
