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
from test_answer_rejected import background, refusal
from test_recount import _cells, _diff, _project, recount

from pulih.contracts import new_event
from pulih.contracts.events.clinic import ReferralAccepted
from pulih.contracts.events.referral import ReferredToClinic

REFERRAL = UUID(int=3)
TODAY = date(2026, 2, 16)


def _event(data: Any, number: int, on: date) -> Any:
    return new_event(
        data, regency="3301", id=UUID(int=100 + number), time=datetime.combine(on, time(3, 0), UTC)
    )


def _referred_on_a_saturday(events: list[Any]) -> list[Any]:
    """:func:`test_answer_rejected.background`, its referral (urgent) made on Saturday 10 January
    to answer by Sunday the 11th."""
    return [
        ReferredToClinic.model_validate(
            {
                **event.model_dump(),
                "urgency": "urgent",
                "referred_on": date(2026, 1, 10),
                "respond_by": date(2026, 1, 11),
            }
        )
        if isinstance(event, ReferredToClinic)
        else event
        for event in events
    ]


BACKGROUND = _referred_on_a_saturday(background(REFERRAL))
FIRST = _event(ReferralAccepted(referral_id=REFERRAL, accepted_on=date(2026, 1, 13)), 3, date(2026, 1, 13))
SECOND = _event(ReferralAccepted(referral_id=REFERRAL, accepted_on=date(2026, 2, 4)), 4, date(2026, 2, 4))
REFUSAL = _event(refusal(SECOND), 5, date(2026, 2, 5))


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


def _projected(deliveries: list[Delivery], cut: int | None) -> dict[tuple[str, str, str, str], int]:
    """The cells the projection keeps for ``deliveries`` (in one batch, or two cut at ``cut``),
    asserted to be those a recount of them gives."""
    history = History(today=TODAY, stream=[d.event for d in deliveries], deliveries=deliveries)
    batches = [deliveries] if cut is None else [deliveries[:cut], deliveries[cut:]]
    cells = _cells(_project(history, batches))
    expected = recount(deliveries, today=TODAY, regency=history.regency, timezone=history.timezone)
    assert _diff(expected, cells) == []
    return cells


@pytest.mark.parametrize("cut", [None, 4, 5])
def test_two_acceptances_that_stand_both_count_and_the_first_answers_the_referral(cut: int | None) -> None:
    cells = _projected(_deliveries(refused=False), cut)
    assert _unit_cells(cells, "referrals_accepted") == {
        "2026-01": 1,
        "2026-W03": 1,
        "2026-02": 1,
        "2026-W06": 1,
    }
    # referred on Saturday 10 January, due on Sunday the 11th (W02's last day), accepted on the
    # 13th: never unanswered past its respond_by at the end of a week or month
    assert _unit_cells(cells, "referrals_overdue") == {}


@pytest.mark.parametrize("cut", [None, 5, 6])
def test_the_refused_second_acceptance_leaves_the_first(cut: int | None) -> None:
    """Refusing the second acceptance recounts its own day (February), not the referral's."""
    cells = _projected(_deliveries(refused=True), cut)
    assert _unit_cells(cells, "referrals_accepted") == {"2026-01": 1, "2026-W03": 1}
    assert _unit_cells(cells, "referrals_overdue") == {}
