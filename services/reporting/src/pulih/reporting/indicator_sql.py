"""The SQL that counts EVENTS.md's indicators, set-based, the same on SQLite and PostgreSQL.

Each *family* is one ``GROUP BY`` over one projection table that yields one or more indicators
for every org unit and period at once: the fact joins ``orgs`` (each unit four times: as itself,
its village, its district and the regency) and a calendar (each day with the periods it belongs
to; a stock's periods with the day they are counted on). :func:`insert_family` writes the
non-zero counts into ``indicator_cells`` with one ``INSERT … SELECT``: nothing travels through
Python. Distinct counts are distinct at every level, not sums of the units' counts.

An event without a ``unit_id`` (discharges, follow-ups, assessments, the clinics' answers, a
referral's closing) counts for its client's unit at registration (EVENTS.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Connection,
    Date,
    FromClause,
    Select,
    String,
    and_,
    case,
    column,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    union_all,
    values,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from pulih.reporting.store import WHOQOL_DOMAINS, ProjectionTables


class uuid_text(FunctionElement[str]):
    """A UUID column as canonical text (``8-4-4-4-12``, lower case), the unit level's org id."""

    type = String()
    inherit_cache = True
    name = "uuid_text"


@compiles(uuid_text)
def _uuid_text(element: uuid_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS TEXT)"


@compiles(uuid_text, "sqlite")
def _uuid_text_sqlite(element: uuid_text, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLAlchemy keeps a UUID in SQLite as 32 hex digits: put the dashes back.
    x = compiler.process(element.clauses, **kw)
    parts = [
        f"substr({x}, {start}, {length})" for start, length in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
    ]
    return "lower(" + " || '-' || ".join(parts) + ")"


def orgs(tables: ProjectionTables, regency: str) -> CTE:
    """Every unit with the four org units it counts for: ``(unit_id, level, org_id)``."""
    u = tables.units
    return union_all(
        select(u.c.unit_id, literal("unit", String).label("level"), uuid_text(u.c.unit_id).label("org_id")),
        select(u.c.unit_id, literal("village", String), u.c.village_code),
        select(u.c.unit_id, literal("district", String), u.c.district_code),
        select(u.c.unit_id, literal("regency", String), literal(regency, String)),
    ).cte("orgs")


def calendar(days_in: Sequence[tuple[date, str]]) -> CTE:
    """Each ``(day, period)`` pair: a day once for each counted period it belongs to."""
    return (
        values(column("day", Date), column("period", String), name="calendar")
        .data(list(days_in))
        .cte("calendar")
    )


def stock_days(periods: Sequence[tuple[str, date]]) -> CTE:
    """Each stock period with the day it is counted on."""
    return (
        values(column("period", String), column("as_of", Date), name="stock_days")
        .data(list(periods))
        .cte("stock_days")
    )


@dataclass(frozen=True)
class Family:
    """One ``GROUP BY`` with columns ``level, org_id, period`` and one column per indicator."""

    query: Select[Any]
    indicators: tuple[str, ...]


def insert_family(conn: Connection, tables: ProjectionTables, family: Family) -> None:
    """Write the family's non-zero counts into ``indicator_cells`` (the cells must be gone)."""
    f = family.query.cte("family")
    parts = [
        select(f.c.level, f.c.org_id, f.c.period, literal(name, String), f.c[name]).where(f.c[name] > 0)
        for name in family.indicators
    ]
    cells = tables.indicator_cells
    conn.execute(
        insert(cells).from_select(["level", "org_id", "period", "indicator", "value"], union_all(*parts))
    )


def _counted(
    fact: FromClause,
    unit: ColumnElement[Any],
    day: ColumnElement[Any],
    orgs_: CTE,
    cal: CTE,
    span: tuple[date, date],
) -> tuple[FromClause, ColumnElement[bool]]:
    """``fact`` joined to the org units of ``unit`` and the periods of ``day`` within ``span``."""
    joined = fact.join(orgs_, orgs_.c.unit_id == unit).join(cal, cal.c.day == day)
    return joined, day.between(*span)


def _by_org(orgs_: CTE, periods: CTE, *values_: ColumnElement[Any]) -> Select[Any]:
    return select(orgs_.c.level, orgs_.c.org_id, periods.c.period, *values_)


def _grouped(query: Select[Any], orgs_: CTE, periods: CTE) -> Select[Any]:
    return query.group_by(orgs_.c.level, orgs_.c.org_id, periods.c.period)


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


def flow_families(t: ProjectionTables, orgs_: CTE, cal: CTE, span: tuple[date, date]) -> list[Family]:
    """Every flow indicator: counted by the event's own date, for the calendar's periods."""
    families: list[Family] = []

    def simple(fact: FromClause, unit: Any, day: Any, where: Any, **aggregates: ColumnElement[Any]) -> None:
        joined, in_span = _counted(fact, unit, day, orgs_, cal, span)
        labelled = [agg.label(name) for name, agg in aggregates.items()]
        query = _by_org(orgs_, cal, *labelled).select_from(joined).where(in_span, where)
        families.append(Family(_grouped(query, orgs_, cal), tuple(aggregates)))

    o, c, e, s, r, d, f = (
        t.outreach_activities,
        t.clients,
        t.enrolments,
        t.sessions,
        t.referrals,
        t.discharges,
        t.follow_ups,
    )
    simple(o, o.c.unit_id, o.c.held_on, true(), outreach_people_reached=func.sum(o.c.people_reached))
    simple(c, c.c.unit_id, c.c.registered_on, true(), clients_registered=func.count())
    simple(e, e.c.unit_id, e.c.enrolled_on, true(), clients_enrolled=func.count())
    simple(
        s,
        s.c.unit_id,
        s.c.held_on,
        true(),
        sessions_held=func.count(),
        sessions_attended=_count_if(s.c.attended == true()),
    )
    simple(r, r.c.unit_id, r.c.referred_on, true(), referrals_made=func.count())
    answered = r.join(c, c.c.client_id == r.c.client_id)
    simple(answered, c.c.unit_id, r.c.accepted_on, true(), referrals_accepted=func.count())
    simple(
        answered,
        c.c.unit_id,
        r.c.closed_on,
        true(),
        referrals_completed=_count_if(r.c.outcome == "completed"),
        back_referrals=_count_if(r.c.back_referral == true()),
    )
    discharged = d.join(c, c.c.client_id == d.c.client_id)
    simple(
        discharged,
        c.c.unit_id,
        d.c.on,
        true(),
        programmes_completed=_count_if(d.c.reason == "completed"),
        # A dropout reversed later (a late session disproved it) no longer counts.
        dropouts=_count_if(and_(d.c.reason == "dropped_out", d.c.reversed.is_not(true()))),
    )
    followed = f.join(c, c.c.client_id == f.c.client_id)
    simple(followed, c.c.unit_id, f.c.on, true(), follow_ups_relapsed=_count_if(f.c.status == "relapsed"))
    families.append(_screenings(t, orgs_, cal, span))
    families.append(_qol_improved(t, orgs_, cal, span))
    return families


def _screenings(t: ProjectionTables, orgs_: CTE, cal: CTE, span: tuple[date, date]) -> Family:
    """Distinct clients screened, and each by the risk of their last screening in the period (the
    latest ``screened_on``; the later in the stream on the same day)."""
    s = t.screenings
    joined, in_span = _counted(s, s.c.unit_id, s.c.screened_on, orgs_, cal, span)
    rank = func.row_number().over(
        partition_by=[orgs_.c.level, orgs_.c.org_id, cal.c.period, s.c.client_id],
        order_by=[s.c.screened_on.desc(), s.c.stream_seq.desc()],
    )
    last = (
        select(orgs_.c.level, orgs_.c.org_id, cal.c.period, s.c.overall_risk, rank.label("rank"))
        .select_from(joined)
        .where(in_span)
        .subquery("last_screening")
    )
    query = (
        select(
            last.c.level,
            last.c.org_id,
            last.c.period,
            func.count().label("clients_screened"),
            *[
                _count_if(last.c.overall_risk == risk).label(f"screened_{risk}")
                for risk in ("low", "moderate", "high")
            ],
        )
        .where(last.c.rank == 1)
        .group_by(last.c.level, last.c.org_id, last.c.period)
    )
    return Family(query, ("clients_screened", "screened_low", "screened_moderate", "screened_high"))


def baseline_of(t: ProjectionTables, exit_enrolment: ColumnElement[Any]) -> Any:
    """The id of the enrolment's baseline assessment: its first (earliest day, then lowest id)."""
    b = t.qol_assessments.alias("first_baseline")
    return (
        select(b.c.assessment_id)
        .where(b.c.enrollment_id == exit_enrolment, b.c.timepoint == "baseline")
        .order_by(b.c.assessed_on, b.c.assessment_id)
        .limit(1)
        .scalar_subquery()
    )


def qol_mean_sum(table: FromClause) -> ColumnElement[Any]:
    """The sum of the four WHOQOL domains (comparing sums compares means)."""
    total: ColumnElement[Any] = table.c[WHOQOL_DOMAINS[0]]
    for domain in WHOQOL_DOMAINS[1:]:
        total = total + table.c[domain]
    return total


def _qol_improved(t: ProjectionTables, orgs_: CTE, cal: CTE, span: tuple[date, date]) -> Family:
    """Clients with an exit assessment in the period whose mean is above their baseline's (the
    first baseline of the same enrolment)."""
    x = t.qol_assessments.alias("exit_assessment")
    b = t.qol_assessments.alias("baseline_assessment")
    c = t.clients
    fact = x.join(b, b.c.assessment_id == baseline_of(t, x.c.enrollment_id)).join(
        c, c.c.client_id == x.c.client_id
    )
    joined, in_span = _counted(fact, c.c.unit_id, x.c.assessed_on, orgs_, cal, span)
    query = (
        _by_org(orgs_, cal, func.count(x.c.client_id.distinct()).label("qol_improved"))
        .select_from(joined)
        .where(in_span, x.c.timepoint == "exit", qol_mean_sum(x) > qol_mean_sum(b))
    )
    return Family(_grouped(query, orgs_, cal), ("qol_improved",))


def stock_families(t: ProjectionTables, orgs_: CTE, periods: CTE, span: tuple[date, date]) -> list[Family]:
    """The stocks, each counted on its period's ``as_of`` day (``span``: the first and last)."""
    e, r = t.enrolments, t.referrals
    first, last = span
    # Active: began on or before the day and was not discharged before it (a pause still counts).
    active_on = and_(
        e.c.enrolled_on <= periods.c.as_of,
        or_(e.c.discharged_on.is_(None), e.c.discharged_on >= periods.c.as_of),
    )
    active = (
        _by_org(orgs_, periods, func.count(e.c.client_id.distinct()).label("clients_active"))
        .select_from(e.join(orgs_, orgs_.c.unit_id == e.c.unit_id).join(periods, active_on))
        .where(e.c.enrolled_on <= last, or_(e.c.discharged_on.is_(None), e.c.discharged_on >= first))
    )

    def unanswered(answer: ColumnElement[Any]) -> ColumnElement[bool]:
        return or_(answer.is_(None), answer > periods.c.as_of)

    # Overdue: respond_by passed and no answer (accepted, declined), cancellation or closing yet.
    overdue_on = and_(
        r.c.referred_on <= periods.c.as_of,
        r.c.respond_by < periods.c.as_of,
        unanswered(r.c.accepted_on),
        unanswered(r.c.declined_on),
        unanswered(r.c.cancelled_on),
        unanswered(r.c.closed_on),
    )
    overdue = (
        _by_org(orgs_, periods, func.count().label("referrals_overdue"))
        .select_from(r.join(orgs_, orgs_.c.unit_id == r.c.unit_id).join(periods, overdue_on))
        .where(r.c.respond_by < last)
    )
    return [
        Family(_grouped(active, orgs_, periods), ("clients_active",)),
        Family(_grouped(overdue, orgs_, periods), ("referrals_overdue",)),
    ]
