"""The simulator's calendar: months, and the four weeks each month is worked in."""

from __future__ import annotations

import calendar
import random
from datetime import date, timedelta


def month_end(month: date) -> date:
    """The last day of ``month``'s month."""
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def next_month(month: date) -> date:
    """The first day of the month after ``month``'s."""
    return month_end(month) + timedelta(days=1)


def weeks(month: date) -> list[tuple[date, date]]:
    """The month's weeks: days 1-7, 8-14, 15-21 and 22 to its end."""
    end = month_end(month)
    return [
        (month.replace(day=1), month.replace(day=7)),
        (month.replace(day=8), month.replace(day=14)),
        (month.replace(day=15), month.replace(day=21)),
        (month.replace(day=22), end),
    ]


def rng_day(rng: random.Random, start: date, end: date) -> date:
    """A day from ``start`` to ``end``, both included."""
    return start + timedelta(days=rng.randint(0, max(0, (end - start).days)))
