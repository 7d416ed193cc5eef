"""A clinic answer the referral service refused (``AnswerRejected``, always later in the stream)
changes no indicator, on SQLite and PostgreSQL, wherever the batches are cut: the referral keeps
the answers that stand (its earliest of each kind answers it; each acceptance that stands counts
on its own day), a refused answer takes its day out again, and an answer the clinic publishes
again after a refusal stands until it is refused again."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

import pytest
from reporting_histories import Delivery
from reporting_projection import Projection, envelope, ids

from pulih.contracts import CloudEvent
from pulih.contracts.events.clinic import ClientAttended, ReferralAccepted, ReferralDeclined
from pulih.contracts.events.outreach import ClientRegistered, UnitEstablished
from pulih.contracts.events.referral import AnswerRejected, ReferredToClinic
from pulih.reporting.store import LIVE

UNIT, CLIENT = ids(2)
CLINIC = "klinik-a"

BATCHINGS = ["one_batch", "each_alone", "answer_with_refusal"]
"""Every event in one batch; each in a batch of its own; the answer and its refusal together."""


def background(referral: UUID) -> list[Any]:
    """A unit, its client, and a referral made on 2 February to answer by 5 February."""
    return [
        UnitEstablished(
            unit_id=UNIT, name="Unit Melati", village_code="3301012001", established_on=date(2026, 1, 2)
        ),
        ClientRegistered(
            client_id=CLIENT,
            unit_id=UNIT,
            registered_on=date(2026, 1, 5),
            sex="m",
            age_band="15_24",
            came_through="self",
        ),
        ReferredToClinic(
            referral_id=referral,
            client_id=CLIENT,
            unit_id=UNIT,
            clinic_id=CLINIC,
            service="rawat_jalan",
            reason="high_risk",
            urgency="routine",
            referred_on=date(2026, 2, 2),
            respond_by=date(2026, 2, 5),
            consent_id=ids(1)[0],
        ),
    ]


def refusal(answer: CloudEvent[Any], error: str = "illegal_transition") -> AnswerRejected:
    """The referral service's refusal of ``answer``."""
    return AnswerRejected(
        referral_id=answer.data.referral_id,
        clinic_id=CLINIC,
        answer_id=answer.id,
        answer_type=answer.type,
        error=error,
        reason="refused in a test",
    )


async def feed(projection: Projection, events: list[Any], batching: str, answer: CloudEvent[Any]) -> None:
    if batching == "one_batch":
        await projection.feed(*events)
    elif batching == "each_alone":
        for event in events:
            await projection.feed(event)
    else:
        at = events.index(answer)
        await projection.feed(*events[:at])
        await projection.feed(*events[at : at + 2])
        if events[at + 2 :]:
            await projection.feed(*events[at + 2 :])


async def referral_row(projection: Projection) -> Any:
    (row,) = await projection.rows(LIVE.referrals)
    return row


async def same_after_a_recount(projection: Projection) -> None:
    """What the live projection holds is what the rebuild's recount of everything gives."""
    live = await projection.all_cells()
    await projection.recount()
    assert await projection.all_cells() == live


@pytest.mark.parametrize("batching", BATCHINGS)
@pytest.mark.parametrize("kind", ["accepted", "declined"])
async def test_a_refused_answer_changes_no_indicator(
    projection_store: Projection, batching: str, kind: str
) -> None:
    referral = ids(1)[0]
    data: Any = (
        ReferralAccepted(referral_id=referral, accepted_on=date(2026, 2, 4))
        if kind == "accepted"
        else ReferralDeclined(referral_id=referral, on=date(2026, 2, 4), reason="no_capacity")
    )
    answer = envelope(data)
    await feed(
        projection_store, [*background(referral), answer, refusal(answer, "other_clinic")], batching, answer
    )
    row = await referral_row(projection_store)
    assert (row.accepted_on, row.declined_on) == (None, None)
    cells = await projection_store.cells()
    assert ("2026-02", "referrals_accepted") not in cells
    # Still unanswered: overdue from 6 February on, at the end of February and of week 6.
    assert cells[("2026-02", "referrals_overdue")] == 1
    assert cells[("2026-W06", "referrals_overdue")] == 1
    assert cells[("2026-03", "referrals_overdue")] == 1
    await same_after_a_recount(projection_store)


async def test_an_answer_counts_until_it_is_refused(projection_store: Projection) -> None:
    referral = ids(1)[0]
    answer = envelope(ReferralAccepted(referral_id=referral, accepted_on=date(2026, 2, 4)))
    await projection_store.feed(*background(referral), answer)
    cells = await projection_store.cells()
    assert cells[("2026-02", "referrals_accepted")] == 1
    assert ("2026-02", "referrals_overdue") not in cells
    await projection_store.feed(refusal(answer, "answer_before_referral"))
    cells = await projection_store.cells()
    assert ("2026-02", "referrals_accepted") not in cells
    assert cells[("2026-02", "referrals_overdue")] == 1


@pytest.mark.parametrize("batching", BATCHINGS)
async def test_a_refused_second_acceptance_gives_the_first_its_day_back(
    projection_store: Projection, batching: str
) -> None:
    referral = ids(1)[0]
    first = envelope(ReferralAccepted(referral_id=referral, accepted_on=date(2026, 2, 4)))
    second = envelope(ReferralAccepted(referral_id=referral, accepted_on=date(2026, 3, 2)))
    events = [*background(referral), first, second, refusal(second)]
    await feed(projection_store, events, batching, second)
    assert (await referral_row(projection_store)).accepted_on == date(2026, 2, 4)
    cells = await projection_store.cells()
    assert cells[("2026-02", "referrals_accepted")] == 1
    assert ("2026-03", "referrals_accepted") not in cells
    assert not any(indicator == "referrals_overdue" for _, indicator in cells)
    await same_after_a_recount(projection_store)


async def test_the_day_a_refused_answer_replaced_is_recounted_when_it_stands_and_when_refused(
    projection_store: Projection,
) -> None:
    referral = ids(1)[0]
    first = envelope(ReferralAccepted(referral_id=referral, accepted_on=date(2026, 2, 4)))
    second = envelope(ReferralAccepted(referral_id=referral, accepted_on=date(2026, 3, 2)))
    await projection_store.feed(*background(referral), first)
    await projection_store.feed(second)  # stands until refused: both count, each on its own day
    cells = await projection_store.cells()
    assert cells[("2026-02", "referrals_accepted")] == 1
    assert cells[("2026-03", "referrals_accepted")] == 1
    assert (await referral_row(projection_store)).accepted_on == date(2026, 2, 4)  # the earliest
    await projection_store.feed(refusal(second))
    cells = await projection_store.cells()
    assert cells[("2026-02", "referrals_accepted")] == 1
    assert ("2026-03", "referrals_accepted") not in cells


async def test_an_answer_published_again_after_its_refusal_stands(projection_store: Projection) -> None:
    referral = ids(1)[0]
    answer = envelope(ReferralAccepted(referral_id=referral, accepted_on=date(2026, 2, 4)))
    attended = envelope(ClientAttended(referral_id=referral, on=date(2026, 2, 9)))
    await projection_store.feed(*background(referral), attended, refusal(attended, "not_ready"))
    first_copy = projection_store.seq - 1
    await projection_store.feed(answer)
    await projection_store.feed(Delivery(attended, first_copy))  # its first copy, redelivered
    assert (await referral_row(projection_store)).attended_on is None
    await projection_store.feed(attended)  # the clinic publishes it again: a new stream sequence
    row = await referral_row(projection_store)
    assert (row.accepted_on, row.attended_on) == (date(2026, 2, 4), date(2026, 2, 9))
    await projection_store.feed(Delivery(attended, projection_store.seq))  # redelivered: no change
    assert (await referral_row(projection_store)).attended_on == date(2026, 2, 9)
    await projection_store.feed(refusal(attended))  # refused again, after its latest copy
    assert (await referral_row(projection_store)).attended_on is None
    assert len(await projection_store.rows(LIVE.referral_answers)) == 2


async def test_an_acceptance_published_again_in_the_batch_of_its_refusal(
    projection_store: Projection,
) -> None:
    """Copy, refusal, copy in one batch: the second copy stands; copy, copy, refusal: refused."""
    referral, other = ids(2)
    answer = envelope(ReferralAccepted(referral_id=referral, accepted_on=date(2026, 2, 4)))
    other_answer = envelope(ReferralAccepted(referral_id=other, accepted_on=date(2026, 2, 4)))
    made = background(referral)
    again = made[2].model_copy(update={"referral_id": other})
    await projection_store.feed(
        *made,
        again,
        answer,
        refusal(answer, "not_ready"),
        answer,
        other_answer,
        other_answer,
        refusal(other_answer),
    )
    rows = {row.referral_id: row for row in await projection_store.rows(LIVE.referrals)}
    assert rows[referral].accepted_on == date(2026, 2, 4)
    assert rows[other].accepted_on is None
    cells = await projection_store.cells()
    assert cells[("2026-02", "referrals_accepted")] == 1
    assert cells[("2026-02", "referrals_overdue")] == 1
    await same_after_a_recount(projection_store)


async def test_a_refusal_of_an_answer_never_applied_changes_nothing(projection_store: Projection) -> None:
    referral = ids(1)[0]
    answer = envelope(ReferralAccepted(referral_id=referral, accepted_on=date(2026, 2, 4)))
    never = envelope(ReferralAccepted(referral_id=referral, accepted_on=date(2026, 2, 3)))
    await projection_store.feed(*background(referral), answer)
    before = await projection_store.all_cells()
    await projection_store.feed(refusal(never, "invalid_event"))
    assert (await referral_row(projection_store)).accepted_on == date(2026, 2, 4)
    assert await projection_store.all_cells() == before
