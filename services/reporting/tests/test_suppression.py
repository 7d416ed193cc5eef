"""Small counts leave the regency as nulls, and no null can be worked out from the rest."""

from __future__ import annotations

from hypothesis import given, settings
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


def test_a_cell_hidden_in_an_earlier_revision_stays_hidden() -> None:
    first = figures(clients_screened=20, screened_low=2, screened_moderate=11, screened_high=7)
    later = figures(clients_screened=21, screened_low=2, screened_moderate=11, screened_high=8)
    hidden_first = {k for k, v in suppress(first).items() if v is None}
    published = suppress(later, keep_hidden=hidden_first)
    # Without it the revision would hide low and high again, but had high been the smaller of
    # the two the first time and moderate the second, low would follow from the difference.
    assert {k for k, v in published.items() if v is None} >= hidden_first


def test_a_kept_cell_now_zero_under_a_published_zero_total_hides_the_total() -> None:
    true = figures(sessions_held=0, sessions_attended=0)
    published = suppress(true, keep_hidden={"sessions_attended"})
    assert published["sessions_attended"] is None and published["sessions_held"] is None
    assert pinned_cells(published, cap=2) == {}


def test_kept_risks_now_zero_take_a_published_risk_with_them() -> None:
    true = figures(clients_screened=6, screened_low=0, screened_moderate=0, screened_high=6)
    published = suppress(true, keep_hidden={"screened_low", "screened_moderate"})
    # Two hidden parts adding up to 0 would each be 0: the 6 is hidden too.
    assert published["screened_high"] is None
    assert pinned_cells(published, cap=8) == {}


@st.composite
def true_figures(draw: st.DrawFn) -> dict[str, int]:
    """A month's figures that obey EVENTS.md: the risks add up, attendance within sessions."""
    small = st.integers(0, 14)
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
@given(
    true=true_figures(), below=st.integers(2, 8), kept=st.sets(st.sampled_from([i.value for i in RELATED]))
)
def test_no_null_can_be_worked_out_from_what_is_published(
    true: dict[str, int], below: int, kept: set[str]
) -> None:
    published = suppress(true, below=below, keep_hidden=kept)
    assert published_is_consistent(published, true)
    for name, count in true.items():
        if 1 <= count < below or name in kept:
            assert published[name] is None, name
    assert pinned_cells(published, cap=max(true.values()) + 2) == {}
