"""A day that happened: its schema's pattern says the floor :func:`not_in_future` checks."""

from __future__ import annotations

import re
from datetime import date, timedelta

from pydantic import TypeAdapter

from pulih.kit.dates import EARLIEST, not_in_future
from pulih.kit.errors import Invalid
from pulih.kit.happened_on import NOT_BEFORE_1900, HappenedOn

PATTERN = re.compile(NOT_BEFORE_1900)
LATEST = date(9999, 12, 31)


def too_early(day: date) -> bool:
    try:
        not_in_future(day, LATEST - timedelta(days=1), "on")
    except Invalid as refused:
        assert refused.code == "date_too_early"
        return True
    return False


def test_the_pattern_takes_a_date_exactly_when_it_is_not_too_early() -> None:
    days = [date(1, 1, 1), LATEST, EARLIEST, EARLIEST - timedelta(days=1)]
    days += [date(year, month, 28) for year in (1000, 1899, 1900, 1999, 2000, 2999) for month in (1, 12)]
    days += [date(1899, 12, 31) + timedelta(days=n) for n in range(-400, 400)]
    disagree = [day for day in days if bool(PATTERN.fullmatch(day.isoformat())) == too_early(day)]
    assert not disagree


def test_the_schema_of_a_day_that_happened_carries_the_pattern() -> None:
    schema = TypeAdapter(HappenedOn).json_schema()
    assert schema == {"type": "string", "format": "date", "pattern": NOT_BEFORE_1900}
