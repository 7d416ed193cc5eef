"""The monthly facts unit phases are judged on, counted from the projection tables.

Each family of facts (agents trained and deactivated, months with outreach or sessions, clients
screened, enrolled and completed for the first time, dropouts, referrals closed, due and answered
in time, completers whose QoL improved) is counted per unit and calendar month in one grouped
query, and summed into running totals here (:class:`~pulih.reporting.domain.phases.UnitMonth`
says what each fact means). Runs of months with outreach or sessions need only the last few
months (:attr:`~pulih.reporting.domain.phases.PhaseCriteria.longest_run`), so those two queries
read only the months since then.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Connection, and_, case, extract, func, not_, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from pulih.reporting.domain.phases import UnitMonth
from pulih.reporting.store import WHOQOL_DOMAINS, ProjectionTables

PerMonth = dict[UUID, dict[int, int]]
"""Unit → month index (``year * 12 + month - 1``) → a count in that month."""


def month_index(day: date) -> int:
    """The month ``day`` falls in, as a number that grows by one each month."""
    return day.year * 12 + day.month - 1


def month_name(index: int) -> str:
    """``YYYY-MM`` of a month index."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def first_day(index: int) -> date:
    """The first day of a month index."""
    return date(index // 12, index % 12 + 1, 1)


def month_of(value: str | date) -> int:
    """The month index of ``YYYY-MM`` or of a day."""
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
class Facts:
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


def count_facts(conn: Connection, t: ProjectionTables, today: date, runs_from: date) -> Facts:
    """Count each family per unit and month. Rows are read whatever their month (none is dated
    after today, and the running totals stop at today's month), except referrals: one is due
    once its ``respond_by`` has passed, which may be later this month or in a month to come."""
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
        stmt = select(table.c.unit_id, table.c.client_id, func.min(day).label("day")).where(*where)
        if source is not None:
            stmt = stmt.select_from(source)
        return stmt.group_by(table.c.unit_id, table.c.client_id).subquery()

    with_unit = d.join(e, e.c.enrollment_id == d.c.enrollment_id)
    completers = (
        select(e.c.unit_id, d.c.client_id, func.min(d.c["on"]).label("day"))
        .select_from(with_unit)
        .where(d.c.reason == "completed", d.c.reversed.is_(False))
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
    return Facts(
        trained=_per_month(conn, _grouped(a.c.unit_id, a.c.trained_on, count)),
        deactivated=_per_month(
            conn, _grouped(a.c.unit_id, a.c.deactivated_on, count, a.c.deactivated_on.is_not(None))
        ),
        outreach=_per_month(conn, _grouped(o.c.unit_id, o.c.held_on, count, o.c.held_on >= runs_from)),
        sessions=_per_month(conn, _grouped(s.c.unit_id, s.c.held_on, count, s.c.held_on >= runs_from)),
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
                source=with_unit,
            ),
        ),
        closed=_per_month(
            conn,
            _grouped(r.c.unit_id, r.c.closed_on, count, r.c.unit_id.is_not(None), r.c.closed_on.is_not(None)),
        ),
        due=_per_month(
            conn,
            _grouped(
                r.c.unit_id,
                r.c.respond_by,
                _one(or_(answered_in_time, not_(cancelled_first))),
                r.c.unit_id.is_not(None),
                r.c.respond_by < today,
            ),
        ),
        in_time=_per_month(
            conn,
            _grouped(
                r.c.unit_id,
                r.c.respond_by,
                _one(answered_in_time),
                r.c.unit_id.is_not(None),
                r.c.respond_by < today,
            ),
        ),
        improved=_per_month(
            conn,
            _grouped(
                completers_q.c.unit_id,
                improved_on,
                count,
                exit_mean_beats_baseline,
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


def unit_months(
    unit: UUID, facts: Facts, established: int, start: int, last: int, longest: int
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
    last, wanted = month_index(today), month_of(first)
    units = established_months(conn, tables)
    facts = count_facts(conn, tables, today, first_day(wanted - longest_run))
    return {
        unit_id: {
            month_name(index): month
            for index, month in unit_months(
                unit_id, facts, established, max(wanted, established), last, longest_run
            )
        }
        for unit_id, established in units.items()
    }


def established_months(conn: Connection, t: ProjectionTables) -> dict[UUID, int]:
    """Each unit's month of establishment (a month index)."""
    rows = conn.execute(select(t.units.c.unit_id, t.units.c.established_on))
    return {unit_id: month_index(established_on) for unit_id, established_on in rows}
