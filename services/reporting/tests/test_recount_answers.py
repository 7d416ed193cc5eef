"""The shrunk example of a hypothesis failure of :mod:`test_recount`: a referral with two clinic
acceptances that both stand (the second is an illegal step the referral service will refuse,
but its refusal has not reached the stream yet). EVENTS.md counts ``referrals_accepted`` per
``ReferralAccepted`` by its ``accepted_on`` (two events, two days), and a referral is overdue only
while it is unanswered: accepted on 13 January, it is not overdue at the end of January, whatever
the clinic sends in February. The projection used to keep only the referral's latest acceptance
(4 February), losing January's and calling the referral overdue all January.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from uuid import UUID

import pytest
from reporting_histories import Delivery, History
from test_recount import _cells, _diff, _project, recount

from pulih.contracts import new_event
from pulih.contracts.events.clinic import ReferralAccepted
from pulih.contracts.events.outreach import ClientRegistered, UnitEstablished
from pulih.contracts.events.referral import AnswerRejected, ReferredToClinic

UNIT = UUID(int=1)
CLIENT = UUID(int=2)
REFERRAL = UUID(int=3)
TODAY = date(2026, 2, 16)
VILLAGE = "3301020003"


def _event(data: Any, number: int, on: date) -> Any:
    return new_event(
        data, regency="3301", id=UUID(int=100 + number), time=datetime.combine(on, time(3, 0), UTC)
    )


BACKGROUND = [
    UnitEstablished(unit_id=UNIT, name="Unit Melati", village_code=VILLAGE, established_on=date(2025, 12, 1)),
    ClientRegistered(
        client_id=CLIENT,
        unit_id=UNIT,
        registered_on=date(2026, 1, 5),
        sex="m",
        age_band="15_24",
        came_through="self",
    ),
    ReferredToClinic(
        referral_id=REFERRAL,
        client_id=CLIENT,
        unit_id=UNIT,
        clinic_id="klinik-a",
        service="rawat_jalan",
        reason="high_risk",
        urgency="urgent",
        referred_on=date(2026, 1, 10),
        respond_by=date(2026, 1, 11),
        consent_id=UUID(int=4),
    ),
]
FIRST = _event(ReferralAccepted(referral_id=REFERRAL, accepted_on=date(2026, 1, 13)), 3, date(2026, 1, 13))
SECOND = _event(ReferralAccepted(referral_id=REFERRAL, accepted_on=date(2026, 2, 4)), 4, date(2026, 2, 4))
REFUSAL = _event(
    AnswerRejected(
        referral_id=REFERRAL,
        clinic_id="klinik-a",
        answer_id=SECOND.id,
        answer_type=SECOND.type,
        error="illegal_transition",
        reason="accepted twice",
    ),
    5,
    date(2026, 2, 5),
)


def _deliveries(*, refused: bool) -> list[Delivery]:
    events = [_event(data, n, date(2026, 1, 10)) for n, data in enumerate(BACKGROUND)] + [FIRST, SECOND]
    events += [REFUSAL] if refused else []
    return [Delivery(event, seq) for seq, event in enumerate(events, start=1)]


def _unit_cells(cells: dict[tuple[str, str, str, str], int], indicator: str) -> dict[str, int]:
    return {
        period: value
        for (level, _, period, name), value in cells.items()
        if level == "unit" and name == indicator
    }


@pytest.mark.parametrize("cut", [None, 4, 5])
def test_two_acceptances_that_stand_both_count_and_the_first_answers_the_referral(cut: int | None) -> None:
    deliveries = _deliveries(refused=False)
    history = History(today=TODAY, stream=[d.event for d in deliveries], deliveries=deliveries)
    batches = [deliveries] if cut is None else [deliveries[:cut], deliveries[cut:]]
    cells = _cells(_project(history, batches))
    assert _unit_cells(cells, "referrals_accepted") == {
        "2026-01": 1,
        "2026-W03": 1,
        "2026-02": 1,
        "2026-W06": 1,
    }
    # referred on Saturday 10 January, due on Sunday the 11th (W02's last day), accepted on the
    # 13th: never unanswered past its respond_by at the end of a week or month
    assert _unit_cells(cells, "referrals_overdue") == {}
    expected = recount(deliveries, today=TODAY, regency=history.regency, timezone=history.timezone)
    assert _diff(expected, cells) == []


@pytest.mark.parametrize("cut", [None, 5, 6])
def test_the_refused_second_acceptance_leaves_the_first(cut: int | None) -> None:
    """Refusing the second acceptance recounts its own day (February), not the referral's."""
    deliveries = _deliveries(refused=True)
    history = History(today=TODAY, stream=[d.event for d in deliveries], deliveries=deliveries)
    batches = [deliveries] if cut is None else [deliveries[:cut], deliveries[cut:]]
    cells = _cells(_project(history, batches))
    assert _unit_cells(cells, "referrals_accepted") == {"2026-01": 1, "2026-W03": 1}
    assert _unit_cells(cells, "referrals_overdue") == {}
    expected = recount(deliveries, today=TODAY, regency=history.regency, timezone=history.timezone)
    assert _diff(expected, cells) == []
