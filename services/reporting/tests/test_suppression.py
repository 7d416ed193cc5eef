"""Small counts leave the regency as nulls, and no null can be worked out from the rest."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_suppression_solver import pinned_cells, published_is_consistent

from pulih.contracts.codes import Indicator
from pulih.reporting.domain.suppression import suppress

RELATED = {
    Indicator.CLIENTS_SCREENED,
    Indicator.SCREENED_LOW,
    Indicator.SCREENED_MODERATE,
    Indicator.SCREENED_HIGH,
    Indicator.SESSIONS_HELD,
    Indicator.SESSIONS_ATTENDED,
}


def figures(**counts: int) -> dict[str, int]:
    """A month's true figures: every indicator 0 unless given."""
    return {indicator.value: counts.get(indicator.value, 0) for indicator in Indicator}


def test_counts_from_1_to_4_are_null_and_zero_and_5_are_published() -> None:
    published = suppress(figures(clients_registered=1, dropouts=4, referrals_made=5, qol_improved=0))
    assert published["clients_registered"] is None
    assert published["dropouts"] is None
    assert published["referrals_made"] == 5
    assert published["qol_improved"] == 0


def test_the_threshold_is_configurable() -> None:
    published = suppress(figures(clients_registered=9, dropouts=10), below=10)
    assert published["clients_registered"] is None
    assert published["dropouts"] == 10


def test_a_threshold_of_1_or_0_hides_nothing() -> None:
    true = figures(clients_registered=1, screened_low=1, clients_screened=1)
    assert suppress(true, below=1) == true
    assert suppress(true, below=0) == true


def test_a_risk_hidden_alone_takes_the_smallest_other_risk_with_it() -> None:
    true = figures(clients_screened=20, screened_low=2, screened_moderate=11, screened_high=7)
    published = suppress(true)
    assert published["screened_low"] is None
    assert published["screened_high"] is None  # 7 < 11
    assert published["screened_moderate"] == 11
    assert published["clients_screened"] == 20


def test_a_zero_risk_is_not_taken_as_complement_while_a_count_is_left() -> None:
    true = figures(clients_screened=9, screened_low=3, screened_moderate=0, screened_high=6)
    published = suppress(true)
    assert published["screened_moderate"] == 0
    assert published["screened_high"] is None
    assert published["clients_screened"] == 9


def test_two_hidden_risks_need_no_complement() -> None:
    true = figures(clients_screened=12, screened_low=3, screened_moderate=4, screened_high=5)
    published = suppress(true)
    assert [
        published[k] for k in ("screened_low", "screened_moderate", "screened_high", "clients_screened")
    ] == [
        None,
        None,
        5,
        12,
    ]


def test_a_small_total_hides_its_parts_too() -> None:
    true = figures(clients_screened=3, screened_low=0, screened_moderate=0, screened_high=3)
    published = suppress(true)
    assert published["clients_screened"] is None
    assert published["screened_high"] is None
    assert published["screened_low"] == 0 and published["screened_moderate"] == 0


def test_two_hidden_risks_adding_up_to_2_take_a_complement() -> None:
    # Zeros are published, so a null is at least 1: low and moderate hidden under 7 screened
    # and 5 high would both be 1.
    true = figures(clients_screened=7, screened_low=1, screened_moderate=1, screened_high=5)
    published = suppress(true)
    assert [
        published[k] for k in ("screened_low", "screened_moderate", "screened_high", "clients_screened")
    ] == [None, None, None, 7]
    assert pinned_cells(published, cap=9) == {}


def test_the_total_is_the_complement_when_it_is_the_smallest_cell_left() -> None:
    true = figures(clients_screened=2, screened_low=1, screened_moderate=1, screened_high=0)
    published = suppress(true, below=2)
    assert published["clients_screened"] is None
    assert published["screened_high"] == 0
    assert pinned_cells(published, cap=4) == {}


@st.composite
def true_figures(draw: st.DrawFn) -> dict[str, int]:
    """A month's figures that obey EVENTS.md: the risks add up, attendance within sessions.
    Counts lean towards 0 to 3, where hidden cells add up to as many as there are of them."""
    small = st.one_of(st.integers(0, 3), st.integers(0, 14))
    counts = {indicator.value: draw(small) for indicator in Indicator if indicator not in RELATED}
    low, moderate, high = draw(small), draw(small), draw(small)
    held = draw(st.integers(0, 20))
    attended = draw(st.integers(0, held))
    counts |= {
        "screened_low": low,
        "screened_moderate": moderate,
        "screened_high": high,
        "clients_screened": low + moderate + high,
        "sessions_held": held,
        "sessions_attended": attended,
    }
    return counts


@settings(max_examples=300, deadline=None)
@given(true=true_figures(), below=st.integers(2, 8))
@example(true=figures(clients_screened=7, screened_low=1, screened_moderate=1, screened_high=5), below=5)
def test_no_null_can_be_worked_out_from_what_is_published(true: dict[str, int], below: int) -> None:
    published = suppress(true, below=below)
    assert published_is_consistent(published, true)
    for name, count in true.items():
        if 1 <= count < below:
            assert published[name] is None, name
        if published[name] is None:
            # The outsider's premise (a null is at least 1) must hold, or it would mislead
            # the solver below into finding nothing.
            assert count >= 1, name
    assert pinned_cells(published, cap=max(true.values()) + 2) == {}
