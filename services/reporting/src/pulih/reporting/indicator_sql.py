"""The SQL that counts EVENTS.md's indicators, set-based, the same on SQLite and PostgreSQL.

Each *family* is one statement over one projection table that yields one or more indicators for
every org unit and period at once; :func:`insert_family` writes its non-zero counts into
``indicator_cells`` with one ``INSERT … SELECT``: nothing travels through Python. The flows are
here, the stocks in :mod:`pulih.reporting.stock_sql`.

A flow is summed in two steps (:func:`_rolled_up`): per unit and period (each distinct day's
month and ISO week, :class:`month_key` and :class:`week_key`, computed once), then per org unit
through ``orgs`` (each unit four times: itself, its village, its district and the regency). A
distinct count is exact at every level: where a client can count for one unit only (their unit
at registration) the units' distinct counts add up; where not (screenings, enrolments: the
event's unit), the clients with one fact in the days read are added up and only the others (a
few) are counted distinct at each org unit. Together about 2.5x faster than one group by over
facts times org units times periods (a million events: refresh_all 34 s -> 14 s on SQLite).

Every statement has one shape whatever the periods (days, regency and period lists are bound
parameters), so SQLAlchemy compiles each once per process; the families are built once per set
of tables.

An event without a ``unit_id`` (discharges, follow-ups, assessments, the clinics' answers, a
referral's closing) counts for its client's unit at registration (EVENTS.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
    func,
    insert,
    literal,
    or_,
    select,
    true,
    union_all,
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
    return func.sum(_one_if(condition))


def _one_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return case((condition, 1), else_=0)


ONE = literal(1)
"""What a fact adds to a count."""


def _flow(
    fact: FromClause,
    unit: ColumnElement[Any],
    day: ColumnElement[Any],
    orgs_: CTE,
    *where: ColumnElement[bool],
    **counts: ColumnElement[Any],
) -> Family:
    """Sums of ``counts`` (what each row of ``fact`` that ``where`` holds for adds: :data:`ONE`,
    :func:`_one_if`, a number) by the org units of ``unit`` and the month and week of ``day``."""
    in_days = day.between(FIRST, LAST)
    facts = (
        select(
            unit.label("unit_id"), day.label("day"), *[value.label(name) for name, value in counts.items()]
        )
        .select_from(fact)
        .where(in_days, *where)
        .cte("facts")
    )
    days = select(day.label("day")).select_from(fact).where(in_days).distinct()
    return Family(_rolled_up(facts, orgs_, tuple(counts), days=days), tuple(counts))


def _rolled_up(
    daily: CTE,
    orgs_: CTE,
    names: Sequence[str],
    per_unit_counts: Mapping[str, Any] | None = None,
    *,
    days: Select[Any] | None = None,
) -> Select[Any]:
    """The sums of ``daily`` (``unit_id``, ``day`` and a column per name) by org unit and period,
    in two steps: per unit and period (each distinct day's month and week computed once), then
    per org unit (four each). Each step groups a few rows per unit and period, where one group
    by over the facts times org units times periods grouped eight rows per fact: 3x slower.
    ``per_unit_counts`` replaces the sums of the first step (a count that must be distinct per
    unit, and adds up over units); ``days`` (distinct, column ``day``) are the days of
    ``daily``, read through an index of the facts' day where there is one."""
    distinct_days = (days if days is not None else select(daily.c.day).distinct()).subquery("days")
    keys = select(
        distinct_days.c.day,
        month_key(distinct_days.c.day).label("month"),
        week_key(distinct_days.c.day).label("week"),
    ).cte("day_keys")
    period = case((KINDS.c.kind == "month", keys.c.month), else_=keys.c.week)
    counts = per_unit_counts or {name: func.sum(daily.c[name]) for name in names}
    per_unit = (
        select(daily.c.unit_id, period.label("period"), *[counts[name].label(name) for name in names])
        .select_from(daily.join(keys, keys.c.day == daily.c.day).join(KINDS, true()))
        .group_by(daily.c.unit_id, period)
        .subquery("per_unit")
    )
    return (
        select(
            orgs_.c.level,
            orgs_.c.org_id,
            per_unit.c.period,
            *[func.sum(per_unit.c[name]).label(name) for name in names],
        )
        .select_from(per_unit.join(orgs_, orgs_.c.unit_id == per_unit.c.unit_id))
        .group_by(orgs_.c.level, orgs_.c.org_id, per_unit.c.period)
    )


def summed(parts: Sequence[Select[Any]], names: Sequence[str]) -> Select[Any]:
    """``parts`` (``level, org_id, period`` and a column per name) added up per org unit and period."""
    both = union_all(*parts).subquery("parts")
    return select(
        both.c.level, both.c.org_id, both.c.period, *[func.sum(both.c[name]).label(name) for name in names]
    ).group_by(both.c.level, both.c.org_id, both.c.period)


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
    # Every acceptance that stands counts on its own day (EVENTS.md counts ReferralAccepted), even
    # a second one of a referral until the referral service refuses it.
    a = t.referral_answers
    accepted = a.join(r, r.c.referral_id == a.c.referral_id).join(c, c.c.client_id == r.c.client_id)
    standing = and_(a.c.kind == "accepted", a.c.rejected.is_not(true()))
    discharged = d.join(c, c.c.client_id == d.c.client_id)
    followed = f.join(c, c.c.client_id == f.c.client_id)
    completed, back = r.c.outcome == "completed", r.c.back_referral == true()
    # A dropout reversed later (a late session disproved it) no longer counts.
    finished, dropped = (
        d.c.reason == "completed",
        and_(d.c.reason == "dropped_out", d.c.reversed.is_not(true())),
    )
    relapsed = f.c.status == "relapsed"
    # Where every count of a family is conditional, only the rows some condition holds for are
    # read further (most follow-ups are not relapses).
    return [
        _flow(o, o.c.unit_id, o.c.held_on, orgs_, outreach_people_reached=o.c.people_reached),
        _flow(c, c.c.unit_id, c.c.registered_on, orgs_, clients_registered=ONE),
        _flow(e, e.c.unit_id, e.c.enrolled_on, orgs_, clients_enrolled=ONE),
        _flow(
            s,
            s.c.unit_id,
            s.c.held_on,
            orgs_,
            sessions_held=ONE,
            sessions_attended=_one_if(s.c.attended == true()),
        ),
        _flow(r, r.c.unit_id, r.c.referred_on, orgs_, referrals_made=ONE),
        _flow(accepted, c.c.unit_id, a.c.on, orgs_, standing, referrals_accepted=ONE),
        _flow(
            answered,
            c.c.unit_id,
            r.c.closed_on,
            orgs_,
            or_(completed, back),
            referrals_completed=_one_if(completed),
            back_referrals=_one_if(back),
        ),
        _flow(
            discharged,
            c.c.unit_id,
            d.c.on,
            orgs_,
            or_(finished, dropped),
            programmes_completed=_one_if(finished),
            dropouts=_one_if(dropped),
        ),
        _flow(followed, c.c.unit_id, f.c.on, orgs_, relapsed, follow_ups_relapsed=ONE),
        _screenings(t, orgs_),
        _qol_improved(t, orgs_),
    ]


RISKS = ("low", "moderate", "high")


def _screenings(t: ProjectionTables, orgs_: CTE) -> Family:
    """Distinct clients screened, and each by the risk of their last screening in the period (the
    latest ``screened_on``; the later in the stream on the same day).

    A client screened once in the days read counts once wherever that screening falls: those
    are added up like any flow. Only the clients screened more than once (a few) need their last
    screening found in each period at each org unit."""
    s, c = t.screenings, t.screenings.alias("screened")
    names = ("clients_screened", *(f"screened_{risk}" for risk in RISKS))
    in_days = s.c.screened_on.between(FIRST, LAST)
    counted = select(c.c.client_id).where(c.c.screened_on.between(FIRST, LAST)).group_by(c.c.client_id)
    once = s.c.client_id.in_(counted.having(func.count() == 1))
    single = _flow(
        s,
        s.c.unit_id,
        s.c.screened_on,
        orgs_,
        once,
        clients_screened=ONE,
        **{f"screened_{risk}": _one_if(s.c.overall_risk == risk) for risk in RISKS},
    )
    period = _period_of(s.c.screened_on)
    rank = func.row_number().over(
        partition_by=[orgs_.c.level, orgs_.c.org_id, period, s.c.client_id],
        order_by=[s.c.screened_on.desc(), s.c.stream_seq.desc()],
    )
    last = (
        select(orgs_.c.level, orgs_.c.org_id, period.label("period"), s.c.overall_risk, rank.label("rank"))
        .select_from(s.join(orgs_, orgs_.c.unit_id == s.c.unit_id).join(KINDS, true()))
        .where(in_days, s.c.client_id.in_(counted.having(func.count() > 1)))
        .subquery("last_screening")
    )
    risks = [_count_if(last.c.overall_risk == risk).label(f"screened_{risk}") for risk in RISKS]
    again = (
        select(last.c.level, last.c.org_id, last.c.period, func.count().label("clients_screened"), *risks)
        .where(last.c.rank == 1)
        .group_by(last.c.level, last.c.org_id, last.c.period)
    )
    return Family(summed([single.query, again], names), names)


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
    fact = x.join(b, b.c.assessment_id == baseline_of(t, x.c.enrollment_id)).join(
        c, c.c.client_id == x.c.client_id
    )
    improved = (
        select(c.c.unit_id.label("unit_id"), x.c.assessed_on.label("day"), x.c.client_id)
        .select_from(fact)
        .where(
            x.c.assessed_on.between(FIRST, LAST), x.c.timepoint == "exit", qol_mean_sum(x) > qol_mean_sum(b)
        )
        .cte("daily")
    )
    # A client counts for one unit (theirs at registration): distinct per unit adds up.
    distinct_clients = {"qol_improved": func.count(improved.c.client_id.distinct())}
    return Family(_rolled_up(improved, orgs_, ("qol_improved",), distinct_clients), ("qol_improved",))
