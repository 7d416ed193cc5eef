"""The range of periods a reporting request asks for.

A range is ``from``/``to`` in the form of ``by`` (``2026-01`` for months, ``2026-W05`` for ISO
weeks), both included. Left out, it is the last twelve months (or thirteen weeks) up to the
regency's today. Every refusal is a kit error naming the parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from pulih.kit.errors import Invalid
from pulih.reporting.domain.periods import (
    PeriodKind,
    first_day,
    kind_of,
    last_day,
    month_of,
    months_between,
    week_of,
    weeks_between,
)

MOST_PERIODS = 260
"""The longest range one request may ask for: five years of weeks, or twenty years of months."""

MOST_ROWS = 50_000
"""The most rows (org unit by period) one indicator request may ask for (a year of a thousand units'
months is twelve thousand; their five years of weeks would be a quarter of a million)."""

DEFAULT_PERIODS = {PeriodKind.MONTH: 12, PeriodKind.WEEK: 13}
"""How many periods up to today a range covers when ``from`` is left out."""

EXAMPLES = {PeriodKind.MONTH: "a month YYYY-MM", PeriodKind.WEEK: "an ISO week YYYY-Www"}


@dataclass(frozen=True)
class PeriodRange:
    """Consecutive periods of one kind, oldest first, and the days they cover."""

    by: PeriodKind
    periods: tuple[str, ...]

    @property
    def first(self) -> str:
        """The range's first period."""
        return self.periods[0]

    @property
    def last(self) -> str:
        """The range's last period."""
        return self.periods[-1]

    @property
    def first_day(self) -> date:
        """The first day of the first period."""
        return first_day(self.first)

    @property
    def last_day(self) -> date:
        """The last day of the last period."""
        return last_day(self.last)


def _start_of(by: PeriodKind, text: str, field: str) -> date:
    """The first day of ``text``, a period of kind ``by``; 422 naming ``field`` if it is not one."""
    try:
        if kind_of(text) is by:
            return first_day(text)
    except ValueError:
        pass
    raise Invalid("invalid_period", f"{field} must be {EXAMPLES[by]}, not {text!r}", field)


def period_range(by: PeriodKind, since: str | None, until: str | None, today: date) -> PeriodRange:
    """The periods from ``since`` to ``until`` (both in the form of ``by``; by default the last
    twelve months or thirteen weeks up to today's); 422 for a bad form, a start after the end,
    or a range longer than :data:`MOST_PERIODS`."""
    current = month_of(today) if by is PeriodKind.MONTH else week_of(today)
    # an empty ``to=`` is a bad period, as an empty ``from=`` is (not "left out")
    end = _start_of(by, current if until is None else until, "to")
    if since is not None:
        start = _start_of(by, since, "from")
    elif by is PeriodKind.MONTH:
        # never before 0001-01, the first month a date can be in
        months_back = max(end.year * 12 + end.month - DEFAULT_PERIODS[by], 12)
        start = date(months_back // 12, months_back % 12 + 1, 1)
    else:
        back = timedelta(weeks=DEFAULT_PERIODS[by] - 1)
        start = end - back if end - date.min >= back else date.min  # 0001-01-01, a Monday
    if start > end:
        raise Invalid("from_after_to", f"from ({since}) is after to ({until or current})", "from")
    periods = (
        []
        if (end - start).days > 31 * MOST_PERIODS
        else (months_between if by is PeriodKind.MONTH else weeks_between)(start, end)
    )
    if not periods or len(periods) > MOST_PERIODS:
        raise Invalid("range_too_long", f"ask for at most {MOST_PERIODS} periods at once", "from")
    return PeriodRange(by, tuple(periods))
