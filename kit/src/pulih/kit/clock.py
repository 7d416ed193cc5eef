"""The clock services read the date from, so that time-driven rules can be tested and simulated.

Programme rules count weeks (stage ends, dropouts, follow-ups, a clinic's deadline). Code asks
``runtime.clock.today()`` instead of the system date; a test or the simulator swaps in a
:class:`ManualClock` and runs sixteen weeks in seconds. Dates are in the regency's time zone
(``Asia/Jakarta`` by default: a WIB day, not a UTC one).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    """Where a service reads the current time and date."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    def today(self) -> date:
        """The current date in the regency's time zone."""
        ...


class SystemClock:
    """The real time, with dates in the regency's time zone."""

    def __init__(self, timezone: str = "Asia/Jakarta") -> None:
        self.zone = ZoneInfo(timezone)

    def now(self) -> datetime:
        """The current time in the regency's time zone."""
        return datetime.now(self.zone)

    def today(self) -> date:
        """Today's date in the regency's time zone."""
        return self.now().date()


class ManualClock:
    """A clock that stands still until it is moved: for tests, the simulator and demos.

    Moving it calls every listener (a service's periodic jobs), so time-driven rules run at
    once for the new date instead of at their next tick.
    """

    def __init__(self, start: date | None = None, timezone: str = "Asia/Jakarta") -> None:
        self.zone = ZoneInfo(timezone)
        self._today = start or datetime.now(self.zone).date()
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> datetime:
        """Noon of the clock's date, in the regency's time zone."""
        return datetime(self._today.year, self._today.month, self._today.day, 12, tzinfo=self.zone)

    def today(self) -> date:
        """The clock's date."""
        return self._today

    def set(self, day: date) -> None:
        """Move to ``day`` (forwards or backwards) and wake the listeners."""
        self._today = day
        for listener in list(self._listeners):
            listener()

    def advance(self, delta: timedelta) -> date:
        """Move forward by ``delta`` (whole days count) and return the new date."""
        self.set(self._today + timedelta(days=delta.days))
        return self._today

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever the clock is moved."""
        self._listeners.append(listener)


def clock_from(kind: str, timezone: str, start: date | None = None) -> SystemClock | ManualClock:
    """The clock a service runs on: ``system`` (the default) or ``manual``."""
    if kind == "manual":
        return ManualClock(start, timezone)
    if kind == "system":
        return SystemClock(timezone)
    raise ValueError(f"unknown clock {kind!r}: use system or manual")


def utc_now() -> datetime:
    """The current time in UTC, for timestamps that are not programme dates."""
    return datetime.now(UTC)
