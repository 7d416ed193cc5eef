"""Follow-ups after discharge: recorded only once the client has been discharged, never dated
before that day. (When they fall due is the programme's ``follow_up_months``.)"""

from __future__ import annotations

from datetime import date

from pulih.kit.dates import not_before
from pulih.kit.errors import Conflict


def check_follow_up(discharged_on: date | None, on: date) -> None:
    """Refuse a follow-up of a client not discharged (409) or dated before the discharge (422)."""
    if discharged_on is None:
        raise Conflict("not_discharged", "follow-ups are recorded after the client's discharge")
    not_before(on, discharged_on, "on", "discharge")
