"""The projection on SQLite and PostgreSQL: what a batch of events writes, and the indicator cells
that follow, including the cases whose outcome depends on order and batch boundaries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from reporting_histories import Delivery
from reporting_projection import TODAY, Projection, envelope, ids
from sqlalchemy import select

from pulih.contracts.events.clinic import ReferralAccepted
from pulih.contracts.events.outreach import ClientRegistered, ClientScreened, SubstanceResult, UnitEstablished
from pulih.contracts.events.referral import ReferralClosed, ReferredToClinic
from pulih.contracts.events.rehab import (
    ClientDischarged,
    ClientEnrolled,
    DropoutReversed,
    QualityOfLifeAssessed,
    SessionHeld,
)
from pulih.reporting import indicators
from pulih.reporting.store import LIVE

UNIT, CLIENT, ENROLMENT, AGENT = ids(4)
VILLAGE = "3301012001"


def unit() -> UnitEstablished:
    return UnitEstablished(
        unit_id=UNIT, name="Unit Mawar", village_code=VILLAGE, established_on=date(2026, 1, 2)
    )


def client(on: date = date(2026, 1, 5)) -> ClientRegistered:
    return ClientRegistered(
        client_id=CLIENT, unit_id=UNIT, registered_on=on, sex="f", age_band="25_34", came_through="self"
    )


def enrolled(on: date = date(2026, 1, 10)) -> ClientEnrolled:
    return ClientEnrolled(
        enrollment_id=ENROLMENT,
        client_id=CLIENT,
        unit_id=UNIT,
        agent_id=AGENT,
        enrolled_on=on,
        programme="ibm-16w-2021",
        planned_end_on=on + timedelta(weeks=16),
    )


def session(on: date, attended: bool = True) -> SessionHeld:
    return SessionHeld(
        session_id=ids(1)[0],
        enrollment_id=ENROLMENT,
        client_id=CLIENT,
        unit_id=UNIT,
        agent_id=AGENT,
        held_on=on,
        kind="konseling",
        attended=attended,
        minutes=45,
    )


def screened(on: date, risk: str) -> ClientScreened:
    return ClientScreened(
        screening_id=ids(1)[0],
        client_id=CLIENT,
        unit_id=UNIT,
        agent_id=AGENT,
        screened_on=on,
        instrument="assist_v3",
        substances=[SubstanceResult(substance="alcohol", score={"low": 3, "high": 30}[risk], risk=risk)],
        injected_last_3_months=False,
        overall_risk=risk,
        recommendation="advice" if risk == "low" else "referral",
    )


def qol(timepoint: str, score: float, assessed_on: date | None) -> QualityOfLifeAssessed:
    return QualityOfLifeAssessed(
        assessment_id=ids(1)[0],
        enrollment_id=ENROLMENT,
        client_id=CLIENT,
        timepoint=timepoint,
        physical=score,
        psychological=score,
        social=score,
        environment=score,
        assessed_on=assessed_on,
    )


async def test_an_event_that_arrives_twice_counts_once(projection_store: Projection) -> None:
    held = envelope(session(date(2026, 2, 3)))
    await projection_store.feed(unit(), client(), enrolled(), held, held)  # twice in one batch
    await projection_store.feed(Delivery(held, 4))  # redelivered
    await projection_store.feed(held)  # published again: a new stream sequence
    cells = await projection_store.cells()
    assert cells[("2026-02", "sessions_held")] == 1
    assert cells[("2026-W06", "sessions_attended")] == 1
    assert len(await projection_store.rows(LIVE.sessions)) == 1
    assert len(await projection_store.rows(LIVE.applied_events)) == 4


async def test_every_level_has_the_unit_its_village_its_district_and_the_regency(
    projection_store: Projection,
) -> None:
    await projection_store.feed(unit(), client())
    for level, org in (
        ("unit", str(UNIT)),
        ("village", VILLAGE),
        ("district", VILLAGE[:6]),
        ("regency", "3301"),
    ):
        assert (await projection_store.cells(level, org))[("2026-01", "clients_registered")] == 1, level


async def test_a_dropout_reversed_in_a_later_batch_no_longer_counts(projection_store: Projection) -> None:
    await projection_store.feed(unit(), client(), enrolled(), session(date(2026, 2, 2)))
    await projection_store.feed(
        ClientDischarged(
            enrollment_id=ENROLMENT, client_id=CLIENT, on=date(2026, 2, 25), reason="dropped_out"
        )
    )
    cells = await projection_store.cells()
    assert cells[("2026-02", "dropouts")] == 1
    assert ("2026-03", "clients_active") not in cells
    # A session held before the dropout syncs late: the dropout is reversed.
    await projection_store.feed(
        session(date(2026, 2, 20)),
        DropoutReversed(
            enrollment_id=ENROLMENT, client_id=CLIENT, dropped_out_on=date(2026, 2, 25), on=date(2026, 2, 20)
        ),
    )
    cells = await projection_store.cells()
    assert ("2026-02", "dropouts") not in cells
    assert cells[("2026-03", "clients_active")] == 1
    assert cells[("2026-02", "sessions_held")] == 2
    (row,) = await projection_store.rows(LIVE.enrolments)
    assert (row.discharged_on, row.discharge_reason) == (None, None)


async def test_a_discharge_and_its_reversal_in_one_batch_then_a_second_discharge(
    projection_store: Projection,
) -> None:
    await projection_store.feed(
        unit(),
        client(),
        enrolled(),
        ClientDischarged(
            enrollment_id=ENROLMENT, client_id=CLIENT, on=date(2026, 2, 10), reason="dropped_out"
        ),
        DropoutReversed(
            enrollment_id=ENROLMENT, client_id=CLIENT, dropped_out_on=date(2026, 2, 10), on=date(2026, 2, 5)
        ),
        ClientDischarged(enrollment_id=ENROLMENT, client_id=CLIENT, on=date(2026, 3, 2), reason="completed"),
    )
    (row,) = await projection_store.rows(LIVE.enrolments)
    assert (row.discharged_on, row.discharge_reason) == (date(2026, 3, 2), "completed")
    cells = await projection_store.cells()
    assert ("2026-02", "dropouts") not in cells
    assert cells[("2026-03", "programmes_completed")] == 1
    # Active on the last day of February; on 15 March (today) no more: discharged before it.
    assert cells[("2026-02", "clients_active")] == 1
    assert ("2026-03", "clients_active") not in cells


async def test_a_discharge_on_the_last_day_still_counts_the_client_active_that_month(
    projection_store: Projection,
) -> None:
    await projection_store.feed(
        unit(),
        client(),
        enrolled(),
        ClientDischarged(enrollment_id=ENROLMENT, client_id=CLIENT, on=date(2026, 2, 28), reason="moved"),
    )
    cells = await projection_store.cells()
    assert cells[("2026-02", "clients_active")] == 1
    assert ("2026-03", "clients_active") not in cells


@pytest.mark.parametrize("one_batch", [True, False])
async def test_a_referral_accepted_then_closed_keeps_everything_whatever_the_batches(
    projection_store: Projection, one_batch: bool
) -> None:
    referral = ids(1)[0]
    events = [
        unit(),
        client(),
        ReferredToClinic(
            referral_id=referral,
            client_id=CLIENT,
            unit_id=UNIT,
            clinic_id="klinik-a",
            service="rawat_jalan",
            reason="high_risk",
            urgency="routine",
            referred_on=date(2026, 2, 2),
            respond_by=date(2026, 2, 5),
            consent_id=ids(1)[0],
        ),
        ReferralAccepted(referral_id=referral, accepted_on=date(2026, 2, 4)),
        ReferralClosed(
            referral_id=referral,
            clinic_id="klinik-a",
            on=date(2026, 3, 3),
            outcome="completed",
            back_referral=True,
        ),
    ]
    if one_batch:
        await projection_store.feed(*events)
    else:
        for event in events:
            await projection_store.feed(event)
    (row,) = await projection_store.rows(LIVE.referrals)
    assert (row.referred_on, row.accepted_on, row.closed_on, row.outcome, row.back_referral) == (
        date(2026, 2, 2),
        date(2026, 2, 4),
        date(2026, 3, 3),
        "completed",
        True,
    )
    assert row.unit_id == UNIT and row.clinic_id == "klinik-a"
    cells = await projection_store.cells()
    assert cells[("2026-02", "referrals_made")] == cells[("2026-02", "referrals_accepted")] == 1
    assert cells[("2026-03", "referrals_completed")] == cells[("2026-03", "back_referrals")] == 1
    assert not any(indicator == "referrals_overdue" for _, indicator in cells)


async def test_an_unanswered_referral_is_overdue_from_the_day_after_respond_by(
    projection_store: Projection,
) -> None:
    referral = ids(1)[0]
    made = ReferredToClinic(
        referral_id=referral,
        client_id=CLIENT,
        unit_id=UNIT,
        clinic_id="klinik-a",
        service="medis",
        reason="medical",
        urgency="urgent",
        referred_on=date(2026, 1, 30),
        respond_by=date(2026, 1, 31),
        consent_id=ids(1)[0],
    )
    await projection_store.feed(unit(), client(), made, today=date(2026, 2, 1))
    cells = await projection_store.cells()
    assert ("2026-01", "referrals_overdue") not in cells  # respond_by is the month's last day
    assert cells[("2026-02", "referrals_overdue")] == 1  # on 1 February, today
    assert cells[("2026-W05", "referrals_overdue")] == 1  # Sunday 1 February
    # Accepted on 10 February: overdue at the end of week 6, no more at the end of February.
    await projection_store.feed(ReferralAccepted(referral_id=referral, accepted_on=date(2026, 2, 10)))
    cells = await projection_store.cells()
    assert cells[("2026-W06", "referrals_overdue")] == 1
    assert ("2026-02", "referrals_overdue") not in cells
    assert ("2026-W07", "referrals_overdue") not in cells


async def test_the_last_screening_of_the_period_decides_the_risk(projection_store: Projection) -> None:
    await projection_store.feed(unit(), client(), screened(date(2026, 2, 3), "high"))
    await projection_store.feed(screened(date(2026, 2, 3), "low"))  # the same day, later in the stream
    await projection_store.feed(screened(date(2026, 1, 20), "high"))  # late: an earlier month
    cells = await projection_store.cells()
    assert cells[("2026-02", "clients_screened")] == cells[("2026-02", "screened_low")] == 1
    assert ("2026-02", "screened_high") not in cells
    assert cells[("2026-01", "screened_high")] == 1


async def test_an_assessment_without_its_day_takes_the_regencys_day_of_its_time(
    projection_store: Projection,
) -> None:
    evening = datetime(2026, 1, 31, 20, 0, tzinfo=UTC)  # 03:00 on 1 February in Jakarta
    await projection_store.feed(
        unit(),
        client(),
        enrolled(),
        qol("baseline", 40.0, date(2026, 1, 10)),
        envelope(qol("exit", 60.0, None), time=evening),
    )
    exits = [row for row in await projection_store.rows(LIVE.qol_assessments) if row.timepoint == "exit"]
    assert exits[0].assessed_on == date(2026, 2, 1)
    cells = await projection_store.cells()
    assert cells[("2026-02", "qol_improved")] == cells[("2026-W05", "qol_improved")] == 1
    (change,) = await projection_store.rows(LIVE.qol_changes)
    assert (change.baseline_social, change.exit_social, change.exit_on) == (40.0, 60.0, date(2026, 2, 1))


async def test_a_late_baseline_makes_an_earlier_exit_count_as_improved(projection_store: Projection) -> None:
    await projection_store.feed(unit(), client(), enrolled(), qol("exit", 70.0, date(2026, 3, 2)))
    assert ("2026-03", "qol_improved") not in await projection_store.cells()
    assert await projection_store.rows(LIVE.qol_changes) == []
    await projection_store.feed(qol("baseline", 50.0, date(2026, 1, 12)))  # synced two months late
    assert (await projection_store.cells())[("2026-03", "qol_improved")] == 1
    assert len(await projection_store.rows(LIVE.qol_changes)) == 1


async def test_a_late_session_corrects_its_own_month(projection_store: Projection) -> None:
    await projection_store.feed(unit(), client(), enrolled(), session(date(2026, 3, 2)))
    await projection_store.feed(session(date(2026, 2, 26), attended=False))
    cells = await projection_store.cells()
    assert cells[("2026-02", "sessions_held")] == 1 and ("2026-02", "sessions_attended") not in cells
    assert cells[("2026-03", "sessions_attended")] == 1


async def test_the_position_only_moves_forward(projection_store: Projection) -> None:
    first, second = envelope(unit()), envelope(client())
    await projection_store.feed(Delivery(first, 3), Delivery(second, 7))
    await projection_store.feed(Delivery(first, 3))  # an old message again
    positions = {row.consumer: row for row in await projection_store.rows(LIVE.position)}
    assert (positions["stream"].stream_seq, positions["stream"].event_id) == (7, second.id)
    async with projection_store.database.transaction() as session:
        assert (
            await session.scalar(
                select(LIVE.applied_events.c.stream_seq).order_by(LIVE.applied_events.c.stream_seq.desc())
            )
            == 7
        )


async def test_deferred_batches_are_recounted_when_the_consumer_catches_up(
    projection_store: Projection,
) -> None:
    await projection_store.feed(unit(), client(), enrolled(), session(date(2026, 1, 20)), defer=True)
    await projection_store.feed(session(date(2026, 2, 20)), defer=True)
    assert await projection_store.all_cells() == set()
    markers = {row.consumer for row in await projection_store.rows(LIVE.position)}
    assert markers == {"stream", indicators.DEFERRED_SINCE}  # stocks are counted as of no day
    await projection_store.feed(session(date(2026, 3, 10)))
    live = await projection_store.all_cells()
    await projection_store.recount()
    assert live == await projection_store.all_cells()
    cells = await projection_store.cells()
    assert cells[("2026-01", "sessions_held")] == cells[("2026-02", "sessions_held")] == 1
    assert cells[("2026-01", "clients_active")] == cells[("2026-03", "clients_active")] == 1


async def test_stocks_roll_forward_with_no_event(projection_store: Projection) -> None:
    await projection_store.feed(unit(), client(), enrolled(), today=date(2026, 1, 31))
    assert ("2026-02", "clients_active") not in await projection_store.cells()
    await projection_store.feed(today=TODAY)  # a job's refresh: nothing new, time went on
    cells = await projection_store.cells()
    assert cells[("2026-02", "clients_active")] == cells[("2026-03", "clients_active")] == 1
    assert cells[("2026-W11", "clients_active")] == 1
