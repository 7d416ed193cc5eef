"""Reporting periods: months and ISO weeks, their days, and the day a stock is counted on."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pulih.reporting.domain.periods import (
    PeriodKind,
    as_of,
    first_day,
    kind_of,
    last_day,
    month_of,
    months_between,
    periods_between,
    week_of,
    weeks_between,
)


def test_an_iso_week_belongs_to_the_year_of_its_thursday() -> None:
    assert week_of(date(2024, 12, 30)) == "2025-W01"
    assert week_of(date(2026, 12, 31)) == week_of(date(2027, 1, 3)) == "2026-W53"
    assert week_of(date(2027, 1, 4)) == "2027-W01"


def test_the_days_of_a_month_and_of_a_week() -> None:
    assert (first_day("2028-02"), last_day("2028-02")) == (date(2028, 2, 1), date(2028, 2, 29))
    assert (first_day("2026-12"), last_day("2026-12")) == (date(2026, 12, 1), date(2026, 12, 31))
    assert (first_day("2026-W05"), last_day("2026-W05")) == (date(2026, 1, 26), date(2026, 2, 1))


def test_a_stock_is_counted_on_the_last_day_or_today_while_the_period_runs() -> None:
    assert as_of("2026-02", date(2026, 3, 15)) == date(2026, 2, 28)
    assert as_of("2026-03", date(2026, 3, 15)) == date(2026, 3, 15)


def test_ranges_include_both_ends() -> None:
    assert months_between(date(2025, 11, 30), date(2026, 2, 1)) == [
        "2025-11",
        "2025-12",
        "2026-01",
        "2026-02",
    ]
    assert weeks_between(date(2026, 1, 4), date(2026, 1, 12)) == ["2026-W01", "2026-W02", "2026-W03"]
    assert periods_between(date(2026, 3, 1), date(2026, 3, 2)) == ["2026-03", "2026-W09", "2026-W10"]


@pytest.mark.parametrize("bad", ["2026-13", "2026-1", "2026-W00", "2026-W54", "2025-W53", "26-01", ""])
def test_what_is_no_period(bad: str) -> None:
    with pytest.raises(ValueError, match="neither a month"):
        kind_of(bad)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)))
def test_every_day_lies_in_its_month_and_its_week(day: date) -> None:
    for period, kind in ((month_of(day), PeriodKind.MONTH), (week_of(day), PeriodKind.WEEK)):
        assert kind_of(period) is kind
        assert first_day(period) <= day <= last_day(period)
