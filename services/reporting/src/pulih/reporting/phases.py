"""Unit phases from the projection tables: every unit's monthly facts (counted with SQL), judged
by :mod:`pulih.reporting.domain.phases`, written to ``unit_phases`` as each unit's history.

:func:`reassess` assesses every unit for each month from ``from_month`` up to today's month (the
running month too: its row is provisional until the month ends, and later events dated in it
assess it again). A month's assessment starts from the phase of the month before, so an event
dated in an earlier month changes that month and can change every later one: they are all
assessed again, in order. A unit is assessed from the month it was established; if months are
missing before ``from_month`` (no event arrived in them), they are assessed first.

The facts are counted per unit and calendar month in a few grouped queries (one per family of
facts, over the rows dated up to the end of today's month) and summed into running totals here.
Runs of months with outreach or sessions need only the last few months
(:attr:`~pulih.reporting.domain.phases.PhaseCriteria.longest_run`), so those two queries read
only the months since then, which keeps the cost of one assessment independent of how many
sessions the regency has held over the years.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    case,
    delete,
    extract,
    func,
    insert,
    not_,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from pulih.contracts.codes import UnitPhase
from pulih.reporting.domain.phases import PhaseCriteria, UnitMonth, assess
from pulih.reporting.store import WHOQOL_DOMAINS, ProjectionTables

PerMonth = dict[UUID, dict[int, int]]
"""Unit → month index (``year * 12 + month - 1``) → a count in that month."""

_CHUNK = 500


def month_index(day: date) -> int:
    """The month ``day`` falls in, as a number that grows by one each month."""
    return day.year * 12 + day.month - 1


def month_name(index: int) -> str:
    """``YYYY-MM`` of a month index."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _first_day(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def _last_day(index: int) -> date:
    return _first_day(index + 1) - timedelta(days=1)


def _month_of(value: str | date) -> int:
    if isinstance(value, date):
        return month_index(value)
    return month_index(date(int(value[:4]), int(value[5:7]), 1))


def _per_month(conn: Connection, stmt: Select[Any]) -> PerMonth:
    """Run ``stmt`` (unit, year, month, count) into :data:`PerMonth`."""
    counts: PerMonth = defaultdict(dict)
    for unit_id, year, month, count in conn.execute(stmt):
        index = int(year) * 12 + int(month) - 1
        counts[unit_id][index] = counts[unit_id].get(index, 0) + int(count or 0)
    return counts


def _grouped(unit: Any, day: Any, value: Any, *where: ColumnElement[bool], source: Any = None) -> Select[Any]:
    """``unit, year(day), month(day), value`` grouped by unit and month."""
    year, month = extract("year", day), extract("month", day)
    stmt = select(unit, year, month, value).where(*where).group_by(unit, year, month)
    return stmt if source is None else stmt.select_from(source)


def _one(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


@dataclass(frozen=True)
class _Facts:
    """Every family of facts, per unit and month, as counted in SQL."""

    trained: PerMonth
    deactivated: PerMonth
    outreach: PerMonth
    sessions: PerMonth
    screened: PerMonth
    enrolled: PerMonth
    completed: PerMonth
    dropouts: PerMonth
    closed: PerMonth
    due: PerMonth
    in_time: PerMonth
    improved: PerMonth


def _count_facts(conn: Connection, t: ProjectionTables, end: date, runs_from: date) -> _Facts:
    a, o, s, sc, e, d, r, q = (
        t.agents,
        t.outreach_activities,
        t.sessions,
        t.screenings,
        t.enrolments,
        t.discharges,
        t.referrals,
        t.qol_changes,
    )

    def first(table: Any, day: Any, *where: ColumnElement[bool], source: Any = None) -> Any:
        """Each unit's clients with the first day ``where`` held for them."""
        stmt = select(table.c.unit_id, table.c.client_id, func.min(day).label("day")).where(
            day <= end, *where
        )
        if source is not None:
            stmt = stmt.select_from(source)
        return stmt.group_by(table.c.unit_id, table.c.client_id).subquery()

    with_unit = d.join(e, e.c.enrollment_id == d.c.enrollment_id)
    completers = (
        select(e.c.unit_id, d.c.client_id, func.min(d.c["on"]).label("day"))
        .select_from(with_unit)
        .where(d.c.reason == "completed", d.c.reversed.is_(False), d.c["on"] <= end)
    )
    completers_q = completers.group_by(e.c.unit_id, d.c.client_id).subquery()
    screened = first(sc, sc.c.screened_on)
    enrolled = first(e, e.c.enrolled_on)
    answered_in_time = or_(
        and_(r.c.accepted_on.is_not(None), r.c.accepted_on <= r.c.respond_by),
        and_(r.c.declined_on.is_not(None), r.c.declined_on <= r.c.respond_by),
    )
    cancelled_first = and_(r.c.cancelled_on.is_not(None), r.c.cancelled_on <= r.c.respond_by)
    # The four domains' sums compare as their means do.
    exit_sum: ColumnElement[float] = q.c[f"exit_{WHOQOL_DOMAINS[0]}"]
    baseline_sum: ColumnElement[float] = q.c[f"baseline_{WHOQOL_DOMAINS[0]}"]
    for domain in WHOQOL_DOMAINS[1:]:
        exit_sum = exit_sum + q.c[f"exit_{domain}"]
        baseline_sum = baseline_sum + q.c[f"baseline_{domain}"]
    exit_mean_beats_baseline = exit_sum > baseline_sum
    improved_on = case((completers_q.c.day >= q.c.exit_on, completers_q.c.day), else_=q.c.exit_on)
    with_qol = completers_q.join(
        q, and_(q.c.client_id == completers_q.c.client_id, q.c.unit_id == completers_q.c.unit_id)
    )
    count = func.count()
    return _Facts(
        trained=_per_month(conn, _grouped(a.c.unit_id, a.c.trained_on, count, a.c.trained_on <= end)),
        deactivated=_per_month(
            conn, _grouped(a.c.unit_id, a.c.deactivated_on, count, a.c.deactivated_on <= end)
        ),
        outreach=_per_month(
            conn, _grouped(o.c.unit_id, o.c.held_on, count, o.c.held_on >= runs_from, o.c.held_on <= end)
        ),
        sessions=_per_month(
            conn, _grouped(s.c.unit_id, s.c.held_on, count, s.c.held_on >= runs_from, s.c.held_on <= end)
        ),
        screened=_per_month(conn, _grouped(screened.c.unit_id, screened.c.day, count)),
        enrolled=_per_month(conn, _grouped(enrolled.c.unit_id, enrolled.c.day, count)),
        completed=_per_month(conn, _grouped(completers_q.c.unit_id, completers_q.c.day, count)),
        dropouts=_per_month(
            conn,
            _grouped(
                e.c.unit_id,
                d.c["on"],
                count,
                d.c.reason == "dropped_out",
                d.c.reversed.is_(False),
                d.c["on"] <= end,
                source=with_unit,
            ),
        ),
        closed=_per_month(
            conn,
            _grouped(r.c.unit_id, r.c.closed_on, count, r.c.unit_id.is_not(None), r.c.closed_on <= end),
        ),
        due=_per_month(
            conn,
            _grouped(
                r.c.unit_id,
                r.c.respond_by,
                _one(or_(answered_in_time, not_(cancelled_first))),
                r.c.unit_id.is_not(None),
                r.c.respond_by <= end,
            ),
        ),
        in_time=_per_month(
            conn,
            _grouped(
                r.c.unit_id,
                r.c.respond_by,
                _one(answered_in_time),
                r.c.unit_id.is_not(None),
                r.c.respond_by <= end,
            ),
        ),
        improved=_per_month(
            conn,
            _grouped(
                completers_q.c.unit_id,
                improved_on,
                count,
                exit_mean_beats_baseline,
                q.c.exit_on <= end,
                source=with_qol,
            ),
        ),
    )


def _run(months: Mapping[int, int], index: int, longest: int) -> int:
    """How many months in a row, ending with ``index``, had a count (at most ``longest``)."""
    run = 0
    while run < longest and months.get(index - run, 0) > 0:
        run += 1
    return run


class _Running:
    """Running totals of one unit's per-month counts, month after month."""

    def __init__(self, per_month: Mapping[int, int], before: int) -> None:
        self._per_month = per_month
        self.total = sum(count for index, count in per_month.items() if index < before)

    def add(self, index: int) -> int:
        self.total += self._per_month.get(index, 0)
        return self.total


def _unit_months(
    unit: UUID, facts: _Facts, established: int, start: int, last: int, longest: int
) -> Iterable[tuple[int, UnitMonth]]:
    """The facts of ``unit`` for each month from ``start`` to ``last``."""
    families = (
        "trained",
        "deactivated",
        "screened",
        "enrolled",
        "completed",
        "dropouts",
        "closed",
        "due",
        "in_time",
        "improved",
    )
    running = {name: _Running(getattr(facts, name).get(unit, {}), start) for name in families}
    for index in range(start, last + 1):
        totals = {name: total.add(index) for name, total in running.items()}
        yield (
            index,
            UnitMonth(
                active_agents=totals["trained"] - totals["deactivated"],
                outreach_months=_run(facts.outreach.get(unit, {}), index, longest),
                clients_screened=totals["screened"],
                clients_enrolled=totals["enrolled"],
                session_months=_run(facts.sessions.get(unit, {}), index, longest),
                referrals_closed=totals["closed"],
                programmes_completed=totals["completed"],
                dropouts=totals["dropouts"],
                referrals_due=totals["due"],
                referrals_answered_in_time=totals["in_time"],
                months_active=index - established + 1,
                completers_qol_improved=totals["improved"],
            ),
        )


def unit_months_sync(
    session: Session | Connection,
    tables: ProjectionTables,
    first: str | date,
    *,
    today: date,
    longest_run: int = 3,
) -> dict[UUID, dict[str, UnitMonth]]:
    """Every unit's facts for each month from ``first`` (or its establishment) to ``today``'s;
    runs of months are counted up to ``longest_run``."""
    conn = session.connection() if isinstance(session, Session) else session
    last, wanted = month_index(today), _month_of(first)
    units = _established(conn, tables)
    facts = _count_facts(conn, tables, _last_day(last), _first_day(wanted - longest_run))
    return {
        unit_id: {
            month_name(index): month
            for index, month in _unit_months(
                unit_id, facts, established, max(wanted, established), last, longest_run
            )
        }
        for unit_id, established in units.items()
    }


def _established(conn: Connection, t: ProjectionTables) -> dict[UUID, int]:
    """Each unit's month of establishment."""
    rows = conn.execute(select(t.units.c.unit_id, t.units.c.established_on))
    return {unit_id: month_index(established_on) for unit_id, established_on in rows}


def _assessed_before(conn: Connection, t: ProjectionTables, start: int) -> dict[UUID, tuple[int, UnitPhase]]:
    """Each unit's latest assessed month before ``start``, and its phase then."""
    p = t.unit_phases
    latest = (
        select(p.c.unit_id, func.max(p.c.period).label("period"))
        .where(p.c.period < month_name(start))
        .group_by(p.c.unit_id)
        .subquery()
    )
    rows = conn.execute(
        select(p.c.unit_id, p.c.period, p.c.phase).join(
            latest, and_(latest.c.unit_id == p.c.unit_id, latest.c.period == p.c.period)
        )
    )
    return {unit_id: (_month_of(period), UnitPhase(phase)) for unit_id, period, phase in rows}


def reassess_sync(
    session: Session | Connection,
    tables: ProjectionTables,
    from_month: str | date,
    *,
    today: date,
    criteria: PhaseCriteria | Mapping[str, Any],
) -> int:
    """:func:`reassess` on a synchronous session or connection."""
    conn = session.connection() if isinstance(session, Session) else session
    judge = criteria if isinstance(criteria, PhaseCriteria) else PhaseCriteria.from_tables(criteria)
    last = month_index(today)
    wanted = min(_month_of(from_month), last)
    units = _established(conn, tables)
    before = _assessed_before(conn, tables, wanted)
    starts: dict[UUID, tuple[int, UnitPhase | None]] = {}
    for unit_id, established in units.items():
        if established > last:
            continue
        assessed, phase = before.get(unit_id, (None, None))
        if assessed is None or assessed < established:
            starts[unit_id] = (established, None)
        else:
            starts[unit_id] = (min(wanted, assessed + 1), phase)
    if not starts:
        return 0
    earliest = min(start for start, _ in starts.values())
    facts = _count_facts(conn, tables, _last_day(last), _first_day(earliest - judge.longest_run))
    rows: list[dict[str, Any]] = []
    for unit_id, (start, previous) in starts.items():
        for index, month in _unit_months(unit_id, facts, units[unit_id], start, last, judge.longest_run):
            assessment = assess(month, previous, judge)
            rows.append(
                {
                    "unit_id": unit_id,
                    "period": month_name(index),
                    "phase": assessment.phase.value,
                    "previous_phase": None if previous is None else previous.value,
                    "criteria": assessment.criteria_record(),
                }
            )
            previous = assessment.phase
    _forget_from(conn, tables, starts)
    for chunk in range(0, len(rows), _CHUNK):
        conn.execute(insert(tables.unit_phases), rows[chunk : chunk + _CHUNK])
    return len(rows)


def _forget_from(conn: Connection, t: ProjectionTables, starts: Mapping[UUID, tuple[int, Any]]) -> None:
    """Delete each unit's rows from the month its assessment starts at."""
    by_start: dict[int, list[UUID]] = defaultdict(list)
    for unit_id, (start, _) in starts.items():
        by_start[start].append(unit_id)
    p = t.unit_phases
    for start, unit_ids in by_start.items():
        for chunk in range(0, len(unit_ids), _CHUNK):
            conn.execute(
                delete(p).where(
                    p.c.unit_id.in_(unit_ids[chunk : chunk + _CHUNK]), p.c.period >= month_name(start)
                )
            )


async def reassess(
    session: AsyncSession,
    tables: ProjectionTables,
    from_month: str | date,
    *,
    today: date,
    criteria: PhaseCriteria | Mapping[str, Any],
) -> int:
    """Assess every unit for each month from ``from_month`` (``YYYY-MM`` or a day in it) up to
    ``today``'s month and write those rows of ``unit_phases``, in the caller's transaction;
    returns how many rows it wrote. ``criteria`` is a :class:`PhaseCriteria` or the
    ``[reporting.phases]`` tables (``ReportingDeps.phase_criteria``)."""
    return await session.run_sync(reassess_sync, tables, from_month, today=today, criteria=criteria)


def units_by_phase_sync(
    session: Session | Connection, tables: ProjectionTables, period: str
) -> dict[str, int]:
    """How many units are in each phase after ``period``'s assessment (every phase named)."""
    conn = session.connection() if isinstance(session, Session) else session
    p = tables.unit_phases
    stmt = select(p.c.phase, func.count()).where(p.c.period == period).group_by(p.c.phase)
    counted: dict[str, int] = {phase: count for phase, count in conn.execute(stmt)}
    return {phase.value: int(counted.get(phase.value, 0)) for phase in UnitPhase}
