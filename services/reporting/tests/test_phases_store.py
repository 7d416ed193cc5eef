"""Unit phases from the projection tables: the monthly facts counted in SQL, the history written
to ``unit_phases``, late events that assess later months again (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import insert, select

from pulih.kit.database import Database
from pulih.reporting import phase_facts, phases
from pulih.reporting.domain.phases import PhaseCriteria, UnitMonth
from pulih.reporting.store import LIVE

D = date
UNIT = uuid.UUID("00000000-0000-7000-8000-0000000000a1")
OTHER = uuid.UUID("00000000-0000-7000-8000-0000000000a2")


def ids() -> uuid.UUID:
    return uuid.uuid4()


async def put(store: Database, table: Any, *rows: dict[str, Any]) -> None:
    async with store.transaction() as session:
        await session.execute(insert(table), list(rows))


def unit(unit_id: uuid.UUID, established_on: date) -> dict[str, Any]:
    return {
        "unit_id": unit_id,
        "name": "Unit",
        "village_code": "3301012001",
        "district_code": "330101",
        "established_on": established_on,
    }


def agent(trained_on: date, deactivated_on: date | None = None, unit_id: uuid.UUID = UNIT) -> dict[str, Any]:
    return {"agent_id": ids(), "unit_id": unit_id, "trained_on": trained_on, "deactivated_on": deactivated_on}


def outreach(held_on: date, unit_id: uuid.UUID = UNIT) -> dict[str, Any]:
    return {
        "activity_id": ids(),
        "unit_id": unit_id,
        "kind": "penjangkauan",
        "held_on": held_on,
        "people_reached": 9,
    }


def session_held(held_on: date, client: uuid.UUID, unit_id: uuid.UUID = UNIT) -> dict[str, Any]:
    return {
        "session_id": ids(),
        "enrollment_id": ids(),
        "client_id": client,
        "unit_id": unit_id,
        "held_on": held_on,
        "kind": "konseling",
        "attended": True,
        "minutes": 60,
    }


def screening(client: uuid.UUID, screened_on: date, unit_id: uuid.UUID = UNIT) -> dict[str, Any]:
    return {
        "screening_id": ids(),
        "client_id": client,
        "unit_id": unit_id,
        "screened_on": screened_on,
        "overall_risk": "moderate",
        "stream_seq": 1,
    }


def enrolment(enrollment: uuid.UUID, client: uuid.UUID, enrolled_on: date) -> dict[str, Any]:
    return {
        "enrollment_id": enrollment,
        "client_id": client,
        "unit_id": UNIT,
        "enrolled_on": enrolled_on,
        "planned_end_on": D(2026, 12, 31),
    }


def discharge(
    enrollment: uuid.UUID, client: uuid.UUID, on: date, reason: str, *, reversed: bool = False
) -> dict[str, Any]:
    return {
        "enrollment_id": enrollment,
        "client_id": client,
        "on": on,
        "reason": reason,
        "reversed": reversed,
    }


def referral(respond_by: date, unit_id: uuid.UUID | None = UNIT, **dates: date) -> dict[str, Any]:
    answers = ("accepted_on", "declined_on", "cancelled_on", "closed_on")
    return {
        "referral_id": ids(),
        "unit_id": unit_id,
        "respond_by": respond_by,
        **dict.fromkeys(answers),
        **dates,
    }


def qol(client: uuid.UUID, exit_on: date, baseline: float, exit: float) -> dict[str, Any]:
    domains = ("physical", "psychological", "social", "environment")
    return {
        "client_id": client,
        "enrollment_id": ids(),
        "unit_id": UNIT,
        "exit_on": exit_on,
        **{f"baseline_{d}": baseline for d in domains},
        **{f"exit_{d}": exit for d in domains},
    }


async def test_the_monthly_facts_count_what_domain_phases_says(store: Database) -> None:
    c1, c2, c3 = ids(), ids(), ids()
    e1, e2, e3, e4 = ids(), ids(), ids(), ids()
    await put(store, LIVE.units, unit(UNIT, D(2025, 11, 10)))
    await put(
        store,
        LIVE.agents,
        agent(D(2025, 11, 12)),
        agent(D(2025, 12, 1), deactivated_on=D(2026, 1, 31)),  # gone by the end of January
        agent(D(2026, 1, 5)),
    )
    await put(
        store,
        LIVE.outreach_activities,
        outreach(D(2025, 11, 20)),
        outreach(D(2025, 12, 2)),
        outreach(D(2026, 1, 9)),
    )
    await put(
        store,
        LIVE.sessions,
        session_held(D(2025, 12, 3), c1),
        session_held(D(2026, 1, 7), c1),
        session_held(D(2026, 2, 4), c1),
    )
    await put(
        store,
        LIVE.screenings,
        screening(c1, D(2025, 11, 20)),
        screening(c1, D(2025, 12, 5)),  # screened again: still one client
        screening(c2, D(2026, 1, 3)),
    )
    await put(
        store,
        LIVE.enrolments,
        enrolment(e1, c1, D(2025, 12, 1)),
        enrolment(e2, c2, D(2026, 1, 10)),
        enrolment(e4, c3, D(2026, 1, 1)),
        enrolment(e3, c1, D(2026, 2, 2)),  # enrolled again: still one client
    )
    await put(
        store,
        LIVE.discharges,
        discharge(e1, c1, D(2026, 1, 20), "completed"),
        discharge(e2, c2, D(2026, 2, 10), "dropped_out", reversed=True),
        discharge(e4, c3, D(2026, 2, 15), "dropped_out"),
    )
    await put(
        store,
        LIVE.referrals,
        referral(D(2026, 1, 5), accepted_on=D(2026, 1, 4), closed_on=D(2026, 1, 25)),
        referral(D(2026, 1, 10), accepted_on=D(2026, 1, 12)),  # answered late
        referral(D(2026, 2, 3), cancelled_on=D(2026, 2, 1)),  # cancelled before it was due
        referral(D(2026, 2, 20), declined_on=D(2026, 2, 19)),
        referral(D(2026, 3, 1)),  # not due in February
        referral(D(2026, 1, 5), unit_id=None),  # no unit yet: counts nowhere
    )
    await put(store, LIVE.qol_changes, qol(c1, D(2026, 1, 18), 50, 60), qol(c3, D(2026, 1, 18), 50, 70))

    async with store.transaction() as session:
        months = await session.run_sync(
            lambda s: phase_facts.unit_months_sync(s, LIVE, "2025-01", today=D(2026, 2, 28))
        )
        mid_february = await session.run_sync(
            lambda s: phase_facts.unit_months_sync(s, LIVE, "2026-02", today=D(2026, 2, 20))
        )
    assert list(months[UNIT]) == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert months[UNIT]["2025-11"] == UnitMonth(
        active_agents=1, outreach_months=1, clients_screened=1, months_active=1
    )
    assert months[UNIT]["2025-12"] == UnitMonth(
        active_agents=2,
        outreach_months=2,
        clients_screened=1,
        clients_enrolled=1,
        session_months=1,
        months_active=2,
    )
    assert months[UNIT]["2026-01"] == UnitMonth(
        active_agents=2,
        outreach_months=3,
        clients_screened=2,
        clients_enrolled=3,
        session_months=2,
        referrals_closed=1,
        programmes_completed=1,
        referrals_due=2,
        referrals_answered_in_time=1,
        months_active=3,
        completers_qol_improved=1,
    )
    assert months[UNIT]["2026-02"] == UnitMonth(
        active_agents=2,
        outreach_months=0,
        clients_screened=2,
        clients_enrolled=3,
        session_months=3,
        referrals_closed=1,
        programmes_completed=1,
        dropouts=1,
        referrals_due=3,
        referrals_answered_in_time=2,
        months_active=4,
        completers_qol_improved=1,
    )

    # On 20 February the referral due that day is not late yet: only the two of January count.
    assert list(mid_february[UNIT]) == ["2026-02"]
    assert mid_february[UNIT]["2026-02"].referrals_due == 2


LENIENT = PhaseCriteria.from_tables({"tumbuh": {"active_agents": 1, "outreach_months": 2}})
"""Tumbuh for one agent and outreach two months in a row; berkembang and above as DOMAIN.md."""


async def history(store: Database) -> list[tuple[str, str, str | None]]:
    async with store.transaction() as session:
        p = LIVE.unit_phases
        rows = await session.execute(
            select(p.c.period, p.c.phase, p.c.previous_phase).where(p.c.unit_id == UNIT).order_by(p.c.period)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def reassess(store: Database, from_month: str, today: date) -> int:
    async with store.transaction() as session:
        return await phases.reassess(session, LIVE, from_month, today=today, criteria=LENIENT)


async def test_a_unit_is_assessed_from_its_first_month_and_falls_back_when_outreach_stops(
    store: Database,
) -> None:
    await put(store, LIVE.units, unit(UNIT, D(2026, 1, 15)))
    await put(store, LIVE.agents, agent(D(2026, 1, 15)))
    await put(
        store,
        LIVE.outreach_activities,
        outreach(D(2026, 1, 20)),
        outreach(D(2026, 2, 3)),
        outreach(D(2026, 3, 3)),
    )
    written = await reassess(store, "2026-04", D(2026, 5, 10))
    assert written == 4  # January to April: the months before were never assessed
    assert await history(store) == [
        ("2026-01", "rintisan", None),
        ("2026-02", "tumbuh", "rintisan"),
        ("2026-03", "tumbuh", "tumbuh"),
        ("2026-04", "rintisan", "tumbuh"),  # no outreach in April
    ]


async def test_on_the_first_of_a_month_only_closed_months_are_assessed(store: Database) -> None:
    await put(store, LIVE.units, unit(UNIT, D(2026, 1, 15)))
    await put(store, LIVE.agents, agent(D(2026, 1, 15)))
    await put(
        store,
        LIVE.outreach_activities,
        *(outreach(D(2026, month, 3)) for month in (2, 3)),
        outreach(D(2026, 1, 20)),
    )
    # 1 April: no outreach yet this month, but April is running, not assessed: the unit is
    # still in the phase of March, not fallen to rintisan.
    assert await reassess(store, "2026-01", D(2026, 4, 1)) == 3
    assert await history(store) == [
        ("2026-01", "rintisan", None),
        ("2026-02", "tumbuh", "rintisan"),
        ("2026-03", "tumbuh", "tumbuh"),
    ]


async def test_a_late_event_assesses_its_month_and_every_later_one_again(store: Database) -> None:
    await put(store, LIVE.units, unit(UNIT, D(2026, 1, 15)))
    await put(store, LIVE.agents, agent(D(2026, 1, 15)))
    await put(
        store,
        LIVE.outreach_activities,
        outreach(D(2026, 1, 20)),
        outreach(D(2026, 3, 3)),
        outreach(D(2026, 4, 3)),
    )
    await reassess(store, "2026-01", D(2026, 5, 10))
    assert [phase for _, phase, _ in await history(store)] == ["rintisan", "rintisan", "rintisan", "tumbuh"]

    await put(store, LIVE.outreach_activities, outreach(D(2026, 2, 11)))  # synced in May
    assert await reassess(store, "2026-02", D(2026, 5, 10)) == 3
    assert await history(store) == [
        ("2026-01", "rintisan", None),
        ("2026-02", "tumbuh", "rintisan"),
        ("2026-03", "tumbuh", "tumbuh"),
        ("2026-04", "tumbuh", "tumbuh"),
    ]


async def test_the_running_month_is_never_assessed_and_its_old_rows_go(store: Database) -> None:
    await put(store, LIVE.units, unit(UNIT, D(2026, 1, 15)), unit(OTHER, D(2026, 2, 1)))
    await put(store, LIVE.agents, agent(D(2026, 1, 15)))
    await put(store, LIVE.outreach_activities, outreach(D(2026, 1, 20)), outreach(D(2026, 2, 3)))
    # OTHER, established in the running month, has no phase yet
    assert await reassess(store, "2026-02", D(2026, 2, 20)) == 1
    # rows of the running month, as assessments before closed months only wrote them
    stale = {"phase": "rintisan", "previous_phase": None, "criteria": {}}
    await put(
        store,
        LIVE.unit_phases,
        {"unit_id": UNIT, "period": "2026-02", **stale},
        {"unit_id": OTHER, "period": "2026-02", **stale},
    )
    assert await reassess(store, "2026-02", D(2026, 2, 21)) == 1
    async with store.transaction() as session:
        periods = (await session.scalars(select(LIVE.unit_phases.c.period))).all()
    assert periods == ["2026-01"]
    assert await reassess(store, "2026-02", D(2026, 3, 1)) == 2  # February closed: both units
    assert await history(store) == [("2026-01", "rintisan", None), ("2026-02", "tumbuh", "rintisan")]


async def test_units_by_phase_counts_every_phase_of_a_month(store: Database) -> None:
    await put(store, LIVE.units, unit(UNIT, D(2026, 1, 15)), unit(OTHER, D(2026, 1, 2)))
    await put(store, LIVE.agents, agent(D(2026, 1, 15)), agent(D(2026, 1, 2), unit_id=OTHER))
    await put(
        store,
        LIVE.outreach_activities,
        outreach(D(2026, 1, 20)),
        outreach(D(2026, 2, 3)),
        outreach(D(2026, 1, 3), unit_id=OTHER),
    )
    await reassess(store, "2026-01", D(2026, 3, 1))
    async with store.transaction() as session:
        counts = await session.run_sync(lambda s: phases.units_by_phase_sync(s, LIVE, "2026-02"))
    assert counts == {"rintisan": 1, "tumbuh": 1, "berkembang": 0, "tangguh": 0, "prima": 0}


async def catch_up(store: Database, today: date) -> int:
    async with store.transaction() as session:
        return await phases.catch_up(session, LIVE, today=today, criteria=LENIENT)


async def note_changed(store: Database, day: date) -> None:
    async with store.transaction() as session:
        await phases.note_changed(session, LIVE, day)


async def test_catching_up_assesses_changes_in_closed_months_and_each_month_as_it_closes(
    store: Database,
) -> None:
    await put(store, LIVE.units, unit(UNIT, D(2026, 1, 15)))
    await put(store, LIVE.agents, agent(D(2026, 1, 15)))
    await put(store, LIVE.outreach_activities, outreach(D(2026, 1, 20)), outreach(D(2026, 3, 3)))
    assert await catch_up(store, D(2026, 3, 10)) == 2  # never assessed: January and February
    assert await catch_up(store, D(2026, 3, 10)) == 0  # nothing changed since, same day
    assert await catch_up(store, D(2026, 3, 11)) == 0  # a new day closes no month

    await put(store, LIVE.outreach_activities, outreach(D(2026, 2, 11)))  # a late sync
    await note_changed(store, D(2026, 2, 11))
    await note_changed(store, D(2026, 3, 9))  # a later day changes nothing to where it starts
    assert await catch_up(store, D(2026, 3, 11)) == 1  # February: March is running
    assert [phase for _, phase, _ in await history(store)] == ["rintisan", "tumbuh"]
    assert await catch_up(store, D(2026, 3, 11)) == 0

    await note_changed(store, D(2026, 3, 12))  # the running month: waits for it to close
    assert await catch_up(store, D(2026, 3, 12)) == 0
    assert await catch_up(store, D(2026, 4, 1)) == 1  # March, closed now
    assert await catch_up(store, D(2026, 4, 2)) == 0
    assert await history(store) == [
        ("2026-01", "rintisan", None),
        ("2026-02", "tumbuh", "rintisan"),
        ("2026-03", "tumbuh", "tumbuh"),
    ]


async def test_a_referral_unanswered_by_the_end_of_a_month_counts_once_it_closes(store: Database) -> None:
    await put(store, LIVE.units, unit(UNIT, D(2026, 1, 15)))
    await put(store, LIVE.referrals, referral(D(2026, 3, 31)))  # due on the month's last day
    criteria = PhaseCriteria.from_tables({"rintisan": {"referrals_answered_in_time_percent": 100}})

    async def march() -> dict[str, Any] | None:
        async with store.transaction() as session:
            await phases.catch_up(session, LIVE, today=today, criteria=criteria)
            p = LIVE.unit_phases
            record: dict[str, Any] | None = await session.scalar(
                select(p.c.criteria).where(p.c.period == "2026-03")
            )
        return record

    today = D(2026, 3, 31)
    assert await march() is None  # March is running
    today = D(2026, 4, 1)
    record = await march()
    assert record is not None
    assert not record["rintisan"]["referrals_answered_in_time_percent"]
