"""How long a clinic has to answer a referral: by urgency, from the programme file
(DOMAIN.md: *configurable*). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from pulih.contracts.codes import Urgency


@dataclass(frozen=True)
class ResponseTimes:
    """Days a clinic has to answer a referral, by urgency."""

    days: Mapping[Urgency, int]

    @classmethod
    def from_programme(cls, programme: Mapping[str, Any]) -> ResponseTimes:
        """Read ``[referral] respond_within_days`` of the programme file (ValueError if wrong)."""
        try:
            table = programme["referral"]["respond_within_days"]
            days = {urgency: int(table[urgency.value]) for urgency in Urgency}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                "the programme file needs [referral] respond_within_days = { routine = N, urgent = N }"
            ) from exc
        if any(d < 0 for d in days.values()):
            raise ValueError("respond_within_days cannot be negative")
        return cls(days)

    def respond_by(self, referred_on: date, urgency: Urgency) -> date:
        """The last day the clinic may answer a referral made on ``referred_on``."""
        return referred_on + timedelta(days=self.days[urgency])
