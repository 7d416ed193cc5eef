"""Reporting periods: months (``2026-01``) and ISO weeks (``2026-W05``). Everything here is pure.

An indicator is counted per period of the event's own domain date, in the regency's local days.
An ISO week runs Monday to Sunday and belongs to the year of its Thursday, so 2026-12-31 is in
``2026-W53`` and 2027-01-01 as well; 2024-12-30 is in ``2025-W01``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache

_MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")
_WEEK = re.compile(r"^([0-9]{4})-W(0[1-9]|[1-4][0-9]|5[0-3])$")


class PeriodKind(StrEnum):
    """A calendar month or an ISO week."""

    MONTH = "month"
    WEEK = "week"


@lru_cache(maxsize=4096)
def month_of(day: date) -> str:
    """The month ``day`` falls in: ``YYYY-MM``."""
    return f"{day.year:04d}-{day.month:02d}"


@lru_cache(maxsize=4096)
def week_of(day: date) -> str:
    """The ISO week ``day`` falls in: ``YYYY-Www``."""
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


def kind_of(period: str) -> PeriodKind:
    """Whether ``period`` is a month or a week; ValueError if it is neither."""
    if _MONTH.match(period):
        return PeriodKind.MONTH
    match = _WEEK.match(period)
    if match and int(match.group(2)) <= _weeks_in(int(match.group(1))):
        return PeriodKind.WEEK
    raise ValueError(f"{period!r} is neither a month (2026-01) nor an ISO week (2026-W05)")


def _weeks_in(year: int) -> int:
    # 28 December is always in the last ISO week of its year.
    return date(year, 12, 28).isocalendar()[1]


def first_day(period: str) -> date:
    """The first day of a month or of an ISO week (its Monday)."""
    if kind_of(period) is PeriodKind.MONTH:
        return date(int(period[:4]), int(period[5:7]), 1)
    return date.fromisocalendar(int(period[:4]), int(period[6:8]), 1)


def last_day(period: str) -> date:
    """The last day of a month or of an ISO week (its Sunday)."""
    if kind_of(period) is PeriodKind.MONTH:
        year, month = int(period[:4]), int(period[5:7])
        following = date(year + month // 12, month % 12 + 1, 1)
        return following - timedelta(days=1)
    return date.fromisocalendar(int(period[:4]), int(period[6:8]), 7)


def as_of(period: str, today: date) -> date:
    """The day a stock of ``period`` is counted on: its last day, or ``today`` while it runs."""
    return min(last_day(period), today)


def days(start: date, end: date) -> Iterator[date]:
    """Every day from ``start`` to ``end``, both included."""
    for offset in range((end - start).days + 1):
        yield start + timedelta(days=offset)


def months_between(start: date, end: date) -> list[str]:
    """The months from ``start``'s to ``end``'s, both included, in order."""
    months: list[str] = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def weeks_between(start: date, end: date) -> list[str]:
    """The ISO weeks from ``start``'s to ``end``'s, both included, in order."""
    monday = start - timedelta(days=start.weekday())
    weeks: list[str] = []
    while monday <= end:
        weeks.append(week_of(monday))
        monday += timedelta(days=7)
    return weeks


def periods_between(start: date, end: date) -> list[str]:
    """Every month and ISO week from ``start``'s to ``end``'s: months first, then weeks."""
    return months_between(start, end) + weeks_between(start, end)


def span(periods: set[str] | frozenset[str]) -> tuple[date, date] | None:
    """The first and last day the ``periods`` cover together, or None if there are none."""
    if not periods:
        return None
    return min(first_day(p) for p in periods), max(last_day(p) for p in periods)
