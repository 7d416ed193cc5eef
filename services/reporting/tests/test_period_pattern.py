"""The OpenAPI document's pattern of a period parameter takes exactly the periods the service
takes: every month and ISO week of the years 0001 to 9999, week 53 only in a year that has one."""

from __future__ import annotations

import re

from pulih.reporting.api.params import PERIOD
from pulih.reporting.domain.periods import first_day

PATTERN = re.compile(PERIOD["pattern"])


def taken(period: str) -> bool:
    try:
        first_day(period)
    except ValueError:
        return False
    return True


def test_the_pattern_and_the_service_agree_on_every_year() -> None:
    endings = ["-01", "-12", "-13", "-00", "-W00", "-W01", "-W52", "-W53", "-W54"]
    disagree = [
        f"{year:04d}{ending}"
        for year in range(10_000)
        for ending in endings
        if bool(PATTERN.fullmatch(f"{year:04d}{ending}")) != taken(f"{year:04d}{ending}")
    ]
    assert not disagree, disagree[:20]


def test_week_53_is_a_week_only_in_a_year_that_has_one() -> None:
    assert PATTERN.fullmatch("2026-W53") and PATTERN.fullmatch("2020-W53")
    assert not PATTERN.fullmatch("2025-W53") and not PATTERN.fullmatch("2000-W53")
