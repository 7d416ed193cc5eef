"""Events of the reporting service: the aggregates a regency shares with the national hub."""

from typing import ClassVar

from pydantic import AwareDatetime, Field

from pulih.contracts.codes import Count, Indicator, Period, RegencyCode, UnitPhase
from pulih.contracts.event import Event


class AggregateReported(Event):
    """A regency's monthly indicators; the only event that leaves the regency.

    Counts between 1 and ``suppressed_below - 1`` are suppressed (sent as null) so that no
    person can be singled out.
    """

    service_name: ClassVar[str] = "reporting"
    about: ClassVar[str] = "regency"

    regency: RegencyCode
    period: Period
    generated_at: AwareDatetime
    indicators: dict[Indicator, Count | None]
    """Indicator name to count, or null where the count was suppressed."""
    units_by_phase: dict[UnitPhase, Count]
    """How many IBM units are in each maturity phase."""
    suppressed_below: Count
    """Counts from 1 up to this value minus one are suppressed."""
    revision: int = Field(default=1, ge=1)
    """1 for the first aggregate of a period, one more each time a late event changed it: the
    highest revision of a period is the one that counts (``generated_at`` grows with it)."""
