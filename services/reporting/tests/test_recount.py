"""The independent recount: a plain fold over the same events, written from EVENTS.md's table of
indicator definitions (and not from reporting's SQL), must give every cell the projection holds,
at every level and period, however the deliveries are cut into batches.

The histories (:mod:`reporting_histories`) have late events, out-of-order months, duplicates and
redeliveries, and clinic answers the referral service refused. The fold reads each event id once
(the first copy, with its stream sequence), and leaves out every answer refused after its last
copy (a clinic may publish an answer refused as early again: that copy stands).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reporting_histories import Delivery, History, generate, histories, split
from sqlalchemy import Engine, create_engine, select

from pulih.contracts.events.clinic import ReferralAccepted, ReferralDeclined
from pulih.contracts.events.outreach import (
    ClientRegistered,
    ClientScreened,
    OutreachActivityRecorded,
    UnitEstablished,
)
from pulih.contracts.events.referral import (
    AnswerRejected,
    ReferralCancelled,
    ReferralClosed,
    ReferredToClinic,
)
from pulih.contracts.events.rehab import (
    ClientDischarged,
    ClientEnrolled,
    DropoutReversed,
    FollowUpRecorded,
    QualityOfLifeAssessed,
    SessionHeld,
)
from pulih.kit.database import Database
from pulih.reporting import indicators, projection
from pulih.reporting.store import LIVE, metadata

Cell = tuple[str, str, str, str]
"""(level, org_id, period, indicator)."""


def _month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


def _periods_until(first: date, today: date) -> dict[str, date]:
    """Every month and ISO week from ``first``'s to ``today``'s, with the day its stocks are
    counted on: its last day, or today while it runs."""
    counted: dict[str, date] = {}
    day = first
    while day <= today:
        for period in (_month(day), _week(day)):
            counted[period] = day  # ends as the period's last day, or today
        day += timedelta(days=1)
    return counted


def recount(deliveries: Iterable[Delivery], *, today: date, regency: str, timezone: str) -> dict[Cell, int]:
    """Every non-zero indicator cell, by EVENTS.md's definitions, over ``deliveries``."""
    first: dict[UUID, tuple[Any, int]] = {}
    last_copy: dict[UUID, int] = {}
    for d in deliveries:
        first.setdefault(d.event.id, (d.event, d.stream_seq))  # ids that arrive twice count once
        last_copy[d.event.id] = max(last_copy.get(d.event.id, 0), d.stream_seq)
    events = list(first.values())
    refused = {  # refused after the last copy of the answer (a refusal counts once, too)
        e.data.answer_id
        for e, seq in events
        if isinstance(e.data, AnswerRejected) and seq > last_copy.get(e.data.answer_id, seq)
    }
    data = [e.data for e, _ in events]
    units = {u.unit_id: u.village_code for u in data if isinstance(u, UnitEstablished)}
    home = {c.client_id: c.unit_id for c in data if isinstance(c, ClientRegistered)}
    referrals = {r.referral_id: r for r in data if isinstance(r, ReferredToClinic)}
    cells: dict[Cell, int] = defaultdict(int)

    def orgs(unit: UUID | None) -> list[tuple[str, str]]:
        if unit not in units:
            return []
        village = units[unit]
        return [("unit", str(unit)), ("village", village), ("district", village[:6]), ("regency", regency)]

    def count(unit: UUID | None, day: date, indicator: str, amount: int = 1) -> None:
        for level, org in orgs(unit):
            for period in (_month(day), _week(day)):
                cells[(level, org, period, indicator)] += amount

    def referral_home(referral_id: UUID) -> UUID | None:  # no unit_id: the client's unit
        referral = referrals.get(referral_id)
        return home.get(referral.client_id) if referral else None

    answers: dict[UUID, list[date]] = defaultdict(list)
    discharges: list[ClientDischarged] = []
    reversed_ = {(r.enrollment_id, r.dropped_out_on) for r in data if isinstance(r, DropoutReversed)}
    screenings: dict[tuple[str, str, str], dict[UUID, tuple[date, int, str]]] = defaultdict(dict)
    assessments: list[tuple[QualityOfLifeAssessed, date]] = []
    enrolments: list[ClientEnrolled] = []
    for envelope, seq in events:
        e = envelope.data
        if envelope.id in refused:
            continue
        match e:
            case OutreachActivityRecorded():
                count(e.unit_id, e.held_on, "outreach_people_reached", e.people_reached)
            case ClientRegistered():
                count(e.unit_id, e.registered_on, "clients_registered")
            case ClientScreened():
                for level, org in orgs(e.unit_id):
                    for period in (_month(e.screened_on), _week(e.screened_on)):
                        last = screenings[(level, org, period)].get(e.client_id)
                        if last is None or (e.screened_on, seq) > last[:2]:
                            screenings[(level, org, period)][e.client_id] = (
                                e.screened_on,
                                seq,
                                e.overall_risk,
                            )
            case ClientEnrolled():
                count(e.unit_id, e.enrolled_on, "clients_enrolled")
                enrolments.append(e)
            case SessionHeld():
                count(e.unit_id, e.held_on, "sessions_held")
                count(e.unit_id, e.held_on, "sessions_attended", int(e.attended))
            case ReferredToClinic():
                count(e.unit_id, e.referred_on, "referrals_made")
            case ReferralAccepted():
                count(referral_home(e.referral_id), e.accepted_on, "referrals_accepted")
                answers[e.referral_id].append(e.accepted_on)
            case ReferralDeclined() | ReferralCancelled():
                answers[e.referral_id].append(e.on)
            case ReferralClosed():
                answers[e.referral_id].append(e.on)
                count(
                    referral_home(e.referral_id), e.on, "referrals_completed", int(e.outcome == "completed")
                )
                count(referral_home(e.referral_id), e.on, "back_referrals", int(e.back_referral))
            case ClientDischarged():
                discharges.append(e)
                count(home.get(e.client_id), e.on, "programmes_completed", int(e.reason == "completed"))
                dropout = e.reason == "dropped_out" and (e.enrollment_id, e.on) not in reversed_
                count(home.get(e.client_id), e.on, "dropouts", int(dropout))
            case FollowUpRecorded():
                count(home.get(e.client_id), e.on, "follow_ups_relapsed", int(e.status == "relapsed"))
            case QualityOfLifeAssessed():
                day = e.assessed_on or envelope.time.astimezone(ZoneInfo(timezone)).date()
                assessments.append((e, day))
    for (level, org, period), clients in screenings.items():
        cells[(level, org, period, "clients_screened")] += len(clients)
        for _, _, risk in clients.values():
            cells[(level, org, period, f"screened_{risk}")] += 1
    _count_qol_improved(assessments, home, orgs, cells)
    dates = [day for _, day in assessments] + [e.enrolled_on for e in enrolments]
    dates += [r.referred_on for r in referrals.values()]
    if dates:
        _count_stocks(min(dates), today, enrolments, discharges, reversed_, referrals, answers, orgs, cells)
    return {cell: value for cell, value in cells.items() if value}


def _count_qol_improved(
    assessments: Sequence[tuple[QualityOfLifeAssessed, date]],
    home: dict[UUID, UUID],
    orgs: Any,
    cells: dict[Cell, int],
) -> None:
    """Clients with an exit in the period whose mean beats their baseline's (the enrolment's
    first baseline: earliest day, then lowest id)."""

    def mean(a: QualityOfLifeAssessed) -> float:
        return (a.physical + a.psychological + a.social + a.environment) / 4

    baselines: dict[UUID, tuple[date, UUID, QualityOfLifeAssessed]] = {}
    for a, day in assessments:
        if a.timepoint == "baseline":
            known = baselines.get(a.enrollment_id)
            if known is None or (day, a.assessment_id) < known[:2]:
                baselines[a.enrollment_id] = (day, a.assessment_id, a)
    improved: dict[Cell, set[UUID]] = defaultdict(set)
    for a, day in assessments:
        baseline = baselines.get(a.enrollment_id)
        if a.timepoint == "exit" and baseline is not None and mean(a) > mean(baseline[2]):
            for level, org in orgs(home.get(a.client_id)):
                for period in (_month(day), _week(day)):
                    improved[(level, org, period, "qol_improved")].add(a.client_id)
    for cell, clients in improved.items():
        cells[cell] += len(clients)


def _count_stocks(
    first: date,
    today: date,
    enrolments: Sequence[ClientEnrolled],
    discharges: Sequence[ClientDischarged],
    reversed_: set[tuple[UUID, date]],
    referrals: dict[UUID, ReferredToClinic],
    answers: dict[UUID, list[date]],
    orgs: Any,
    cells: dict[Cell, int],
) -> None:
    """Stocks on the period's last day (today while it runs)."""
    for period, day in _periods_until(first, today).items():
        active: dict[tuple[str, str], set[UUID]] = defaultdict(set)
        for e in enrolments:
            gone = any(  # discharged before the day, by a discharge that still counts
                d.enrollment_id == e.enrollment_id
                and d.on < day
                and not (d.reason == "dropped_out" and (d.enrollment_id, d.on) in reversed_)
                for d in discharges
            )
            if e.enrolled_on <= day and not gone:
                for org in orgs(e.unit_id):
                    active[org].add(e.client_id)
        for (level, org), clients in active.items():
            cells[(level, org, period, "clients_active")] += len(clients)
        for r in referrals.values():
            answered = any(a <= day for a in answers[r.referral_id])
            if r.referred_on <= day and r.respond_by < day and not answered:
                for level, org in orgs(r.unit_id):
                    cells[(level, org, period, "referrals_overdue")] += 1


def _cells(engine: Engine) -> dict[Cell, int]:
    c = LIVE.indicator_cells
    with engine.connect() as conn:
        rows = conn.execute(select(c.c.level, c.c.org_id, c.c.period, c.c.indicator, c.c.value)).all()
    return {(r.level, r.org_id, r.period, r.indicator): r.value for r in rows}


def _project(history: History, batches: Sequence[Sequence[Delivery]]) -> Engine:
    """A fresh in-memory projection fed ``batches``, each refreshed with the day it arrived on
    (the last one with the history's today)."""
    engine = create_engine("sqlite://")
    metadata.create_all(engine, tables=LIVE.all)
    zone = ZoneInfo(history.timezone)
    filled = [b for b in batches if b]
    today = date.min
    for index, batch in enumerate(filled):
        arrived = max(d.event.time.astimezone(zone).date() for d in batch)
        today = history.today if index == len(filled) - 1 else min(history.today, max(today, arrived))
        with engine.begin() as conn:
            touched = projection.apply_batch_sync(conn, LIVE, batch, timezone=history.timezone)
            indicators.refresh_sync(conn, LIVE, touched, today=today, regency=history.regency)
    return engine


def _diff(expected: dict[Cell, int], actual: dict[Cell, int]) -> list[str]:
    keys = sorted(set(expected) | set(actual))
    return [
        f"{k}: fold {expected.get(k)} projection {actual.get(k)}"
        for k in keys
        if expected.get(k) != actual.get(k)
    ]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(
    history=histories(), cut=st.randoms(use_true_random=False), batches=st.integers(min_value=2, max_value=12)
)
def test_every_cell_matches_a_plain_fold_however_the_batches_are_cut(
    history: History, cut: random.Random, batches: int
) -> None:
    expected = recount(
        history.deliveries, today=history.today, regency=history.regency, timezone=history.timezone
    )
    for cuts in ([history.deliveries], split(history.deliveries, cut, batches)):
        engine = _project(history, cuts)
        assert _diff(expected, _cells(engine)) == []
        with engine.begin() as conn:  # the rebuild's recount of everything agrees too
            indicators.refresh_all_sync(conn, LIVE, today=history.today, regency=history.regency)
        assert _diff(expected, _cells(engine)) == []


def test_the_fold_can_fail() -> None:
    """The comparison would notice a lost event: dropping one session changes a cell."""
    history = generate(random.Random(7), units=2, months=3)
    full = recount(
        history.deliveries, today=history.today, regency=history.regency, timezone=history.timezone
    )
    session = next(i for i, d in enumerate(history.deliveries) if isinstance(d.event.data, SessionHeld))
    fewer = history.deliveries[:session] + history.deliveries[session + 1 :]
    assert _diff(full, _cells(_project(history, [fewer]))) != []


@pytest.mark.parametrize("seed", [11, 12])
async def test_the_recount_holds_on_both_stores(database_url: str, seed: int) -> None:
    """The same comparison through the async API, on SQLite and PostgreSQL."""
    history = generate(random.Random(seed), units=3, months=5, late_share=0.1, out_of_order_months=2)
    expected = recount(
        history.deliveries, today=history.today, regency=history.regency, timezone=history.timezone
    )
    database = Database(database_url)
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(lambda c: metadata.create_all(c, tables=LIVE.all))
        for batch in split(history.deliveries, random.Random(seed), 5):
            async with database.transaction() as session:
                touched = await projection.apply_batch(session, LIVE, batch, timezone=history.timezone)
                await indicators.refresh(session, LIVE, touched, today=history.today, regency=history.regency)
        c = LIVE.indicator_cells
        async with database.transaction() as session:
            rows = (
                await session.execute(select(c.c.level, c.c.org_id, c.c.period, c.c.indicator, c.c.value))
            ).all()
        actual = {(r.level, r.org_id, r.period, r.indicator): r.value for r in rows}
        assert _diff(expected, actual) == []
        assert any(cell[3] == "clients_active" for cell in actual)
    finally:
        await database.dispose()
