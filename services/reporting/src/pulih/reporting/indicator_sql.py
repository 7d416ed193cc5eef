"""The SQL that counts EVENTS.md's indicators, set-based, the same on SQLite and PostgreSQL.

Each *family* is one ``GROUP BY`` over one projection table that yields one or more indicators
for every org unit and period at once. The fact joins ``orgs`` (each unit four times: as itself,
its village, its district and the regency) and, for a flow, ``kinds`` (twice: its month and its
ISO week, computed in SQL by :class:`month_key` and :class:`week_key`); a stock is counted on one
day per statement. :func:`insert_family` writes the non-zero counts into ``indicator_cells``
with one ``INSERT … SELECT``: nothing travels through Python. Distinct counts are distinct at
every level, not sums of the units' counts.

Every statement has one shape whatever the periods (days, regency and period lists are bound
parameters), so SQLAlchemy compiles each once per process; the families are built once per set
of tables.

An event without a ``unit_id`` (discharges, follow-ups, assessments, the clinics' answers, a
referral's closing) counts for its client's unit at registration (EVENTS.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
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
    bindparam,
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


class month_key(FunctionElement[str]):
    """A date column's month, ``YYYY-MM``."""

    type = String()
    inherit_cache = True
    name = "month_key"


@compiles(month_key)
def _month_key(element: month_key, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)}, 'YYYY-MM')"


@compiles(month_key, "sqlite")
def _month_key_sqlite(element: month_key, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLAlchemy keeps a date in SQLite as ISO text, YYYY-MM-DD.
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 7)"


class week_key(FunctionElement[str]):
    """A date column's ISO week, ``YYYY-Www``."""

    type = String()
    inherit_cache = True
    name = "week_key"


@compiles(week_key)
def _week_key(element: week_key, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)}, 'IYYY-\"W\"IW')"


@compiles(week_key, "sqlite")
def _week_key_sqlite(element: week_key, compiler: SQLCompiler, **kw: Any) -> str:
    # An ISO week belongs to the year of its Thursday, and is that Thursday's week of the year.
    thursday = f"date({compiler.process(element.clauses, **kw)}, '-3 days', 'weekday 4')"
    week = f"(CAST(strftime('%j', {thursday}) AS INTEGER) - 1) / 7 + 1"
    return f"printf('%04d-W%02d', CAST(strftime('%Y', {thursday}) AS INTEGER), {week})"


FIRST, LAST = bindparam("first", type_=Date), bindparam("last", type_=Date)
"""The days a flow statement reads facts between (both included)."""

AS_OF, PERIOD = bindparam("as_of", type_=Date), bindparam("period", type_=String)
"""The day a stock statement counts on, and the period it counts for."""


def orgs(tables: ProjectionTables) -> CTE:
    """Every unit with the four org units it counts for: ``(unit_id, level, org_id)``."""
    u = tables.units
    regency = bindparam("regency", type_=String)
    return union_all(
        select(u.c.unit_id, literal("unit", String).label("level"), uuid_text(u.c.unit_id).label("org_id")),
        select(u.c.unit_id, literal("village", String), u.c.village_code),
        select(u.c.unit_id, literal("district", String), u.c.district_code),
        select(u.c.unit_id, literal("regency", String), regency),
    ).cte("orgs")


KINDS = union_all(select(literal("month", String).label("kind")), select(literal("week", String))).cte(
    "kinds"
)
"""Each fact counts twice: in its month and in its ISO week (two rows; a VALUES list would do,
but SQLAlchemy cannot cache a statement that holds one)."""


def _period_of(day: ColumnElement[Any]) -> ColumnElement[str]:
    return case((KINDS.c.kind == "month", month_key(day)), else_=week_key(day))


@dataclass(frozen=True)
class Family:
    """One ``GROUP BY`` with columns ``level, org_id, period`` and one column per indicator."""

    query: Select[Any]
    indicators: tuple[str, ...]


def insert_family(
    conn: Connection,
    tables: ProjectionTables,
    family: Family,
    params: Mapping[str, Any],
    periods: Sequence[str] | None = None,
) -> None:
    """Write the family's non-zero counts into ``indicator_cells`` (whose cells must be gone):
    only the cells of ``periods``, or all of them when None."""
    f = family.query.cte("family")
    parts = []
    for name in family.indicators:
        part = select(f.c.level, f.c.org_id, f.c.period, literal(name, String), f.c[name]).where(
            f.c[name] > 0
        )
        if periods is not None:
            part = part.where(f.c.period.in_(bindparam("periods", expanding=True)))
        parts.append(part)
    statement = insert(tables.indicator_cells).from_select(
        ["level", "org_id", "period", "indicator", "value"], union_all(*parts)
    )
    conn.execute(statement, {**params, "periods": list(periods)} if periods is not None else dict(params))


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


def _flow(
    fact: FromClause,
    unit: ColumnElement[Any],
    day: ColumnElement[Any],
    orgs_: CTE,
    **counts: ColumnElement[Any],
) -> Family:
    """``counts`` (additive: counts and sums) of ``fact`` by the org units of ``unit`` and the
    month and week of ``day``. The facts are first summed per unit and day, so the org units and
    periods multiply (eight rows each) the unit-days, not the facts."""
    daily = (
        select(
            unit.label("unit_id"),
            month_key(day).label("month"),
            week_key(day).label("week"),
            *[agg.label(name) for name, agg in counts.items()],
        )
        .select_from(fact)
        .where(day.between(FIRST, LAST))
        .group_by(unit, day)
        .subquery("daily")
    )
    period = case((KINDS.c.kind == "month", daily.c.month), else_=daily.c.week).label("period")
    query = (
        select(
            orgs_.c.level, orgs_.c.org_id, period, *[func.sum(daily.c[name]).label(name) for name in counts]
        )
        .select_from(daily.join(orgs_, orgs_.c.unit_id == daily.c.unit_id).join(KINDS, true()))
        .group_by(orgs_.c.level, orgs_.c.org_id, period)
    )
    return Family(query, tuple(counts))


@cache
def flow_families(t: ProjectionTables) -> list[Family]:
    """Every flow indicator, counted by the event's own date (parameters: ``first``, ``last``,
    ``regency``)."""
    orgs_ = orgs(t)
    o, c, e, s, r, d, f = (
        t.outreach_activities,
        t.clients,
        t.enrolments,
        t.sessions,
        t.referrals,
        t.discharges,
        t.follow_ups,
    )
    answered = r.join(c, c.c.client_id == r.c.client_id)
    discharged = d.join(c, c.c.client_id == d.c.client_id)
    followed = f.join(c, c.c.client_id == f.c.client_id)
    return [
        _flow(o, o.c.unit_id, o.c.held_on, orgs_, outreach_people_reached=func.sum(o.c.people_reached)),
        _flow(c, c.c.unit_id, c.c.registered_on, orgs_, clients_registered=func.count()),
        _flow(e, e.c.unit_id, e.c.enrolled_on, orgs_, clients_enrolled=func.count()),
        _flow(
            s,
            s.c.unit_id,
            s.c.held_on,
            orgs_,
            sessions_held=func.count(),
            sessions_attended=_count_if(s.c.attended == true()),
        ),
        _flow(r, r.c.unit_id, r.c.referred_on, orgs_, referrals_made=func.count()),
        _flow(answered, c.c.unit_id, r.c.accepted_on, orgs_, referrals_accepted=func.count()),
        _flow(
            answered,
            c.c.unit_id,
            r.c.closed_on,
            orgs_,
            referrals_completed=_count_if(r.c.outcome == "completed"),
            back_referrals=_count_if(r.c.back_referral == true()),
        ),
        _flow(
            discharged,
            c.c.unit_id,
            d.c.on,
            orgs_,
            programmes_completed=_count_if(d.c.reason == "completed"),
            # A dropout reversed later (a late session disproved it) no longer counts.
            dropouts=_count_if(and_(d.c.reason == "dropped_out", d.c.reversed.is_not(true()))),
        ),
        _flow(followed, c.c.unit_id, f.c.on, orgs_, follow_ups_relapsed=_count_if(f.c.status == "relapsed")),
        _screenings(t, orgs_),
        _qol_improved(t, orgs_),
    ]


def _screenings(t: ProjectionTables, orgs_: CTE) -> Family:
    """Distinct clients screened, and each by the risk of their last screening in the period (the
    latest ``screened_on``; the later in the stream on the same day)."""
    s = t.screenings
    period = _period_of(s.c.screened_on)
    rank = func.row_number().over(
        partition_by=[orgs_.c.level, orgs_.c.org_id, period, s.c.client_id],
        order_by=[s.c.screened_on.desc(), s.c.stream_seq.desc()],
    )
    last = (
        select(orgs_.c.level, orgs_.c.org_id, period.label("period"), s.c.overall_risk, rank.label("rank"))
        .select_from(s.join(orgs_, orgs_.c.unit_id == s.c.unit_id).join(KINDS, true()))
        .where(s.c.screened_on.between(FIRST, LAST))
        .subquery("last_screening")
    )
    risks = [
        _count_if(last.c.overall_risk == risk).label(f"screened_{risk}")
        for risk in ("low", "moderate", "high")
    ]
    query = (
        select(last.c.level, last.c.org_id, last.c.period, func.count().label("clients_screened"), *risks)
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


def _qol_improved(t: ProjectionTables, orgs_: CTE) -> Family:
    """Clients with an exit assessment in the period whose mean is above their baseline's (the
    first baseline of the same enrolment)."""
    x = t.qol_assessments.alias("exit_assessment")
    b = t.qol_assessments.alias("baseline_assessment")
    c = t.clients
    period = _period_of(x.c.assessed_on).label("period")
    fact = x.join(b, b.c.assessment_id == baseline_of(t, x.c.enrollment_id)).join(
        c, c.c.client_id == x.c.client_id
    )
    query = (
        select(
            orgs_.c.level, orgs_.c.org_id, period, func.count(x.c.client_id.distinct()).label("qol_improved")
        )
        .select_from(fact.join(orgs_, orgs_.c.unit_id == c.c.unit_id).join(KINDS, true()))
        .where(
            x.c.assessed_on.between(FIRST, LAST), x.c.timepoint == "exit", qol_mean_sum(x) > qol_mean_sum(b)
        )
        .group_by(orgs_.c.level, orgs_.c.org_id, period)
    )
    return Family(query, ("qol_improved",))


@cache
def stock_families(t: ProjectionTables) -> list[Family]:
    """The stocks of one period, counted on one day (parameters: ``as_of``, ``period``,
    ``regency``): one cached statement each, for the few periods a batch recounts."""
    return _stocks(t, AS_OF, PERIOD, None)


def stock_families_over(t: ProjectionTables, periods: Sequence[tuple[str, date]]) -> list[Family]:
    """The stocks of many periods at once, each counted on its day (parameter: ``regency``): one
    statement reads each table once (compiled each time: a list of rows cannot be cached)."""
    days = (
        values(column("period", String), column("as_of", Date), name="stock_days").data(list(periods)).cte()
    )
    return _stocks(t, days.c.as_of, days.c.period, days)


def _stocks(t: ProjectionTables, as_of: Any, period: Any, days: CTE | None) -> list[Family]:
    orgs_ = orgs(t)
    e, r = t.enrolments, t.referrals

    def counted(
        fact: FromClause, unit: ColumnElement[Any], when: ColumnElement[bool], name: str, n: Any
    ) -> Family:
        joined = fact.join(orgs_, orgs_.c.unit_id == unit)
        if days is not None:
            joined = joined.join(days, when)
        query = (
            select(orgs_.c.level, orgs_.c.org_id, period.label("period"), n.label(name))
            .select_from(joined)
            .group_by(orgs_.c.level, orgs_.c.org_id, period)
        )
        return Family(query if days is not None else query.where(when), (name,))

    # Active: began on or before the day and was not discharged before it (a pause still counts).
    active = and_(e.c.enrolled_on <= as_of, or_(e.c.discharged_on.is_(None), e.c.discharged_on >= as_of))

    def unanswered(answer: ColumnElement[Any]) -> ColumnElement[bool]:
        return or_(answer.is_(None), answer > as_of)

    # Overdue: respond_by passed, and no answer (accepted, declined), cancellation or closing yet.
    overdue = and_(
        r.c.respond_by < as_of,
        r.c.referred_on <= as_of,
        unanswered(r.c.accepted_on),
        unanswered(r.c.declined_on),
        unanswered(r.c.cancelled_on),
        unanswered(r.c.closed_on),
    )
    return [
        counted(e, e.c.unit_id, active, "clients_active", func.count(e.c.client_id.distinct())),
        counted(r, r.c.unit_id, overdue, "referrals_overdue", func.count()),
    ]
