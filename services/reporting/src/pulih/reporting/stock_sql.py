"""The SQL that counts EVENTS.md's two stocks (``clients_active``, ``referrals_overdue``): each
counted on one day per period, the period's last or today while it runs
(:func:`pulih.reporting.domain.periods.as_of`), with the org units and families of
:mod:`pulih.reporting.indicator_sql`.

A batch recounts a few periods, one cached statement per period (:func:`stock_families`); a
rebuild or a catch-up counts many in one statement per stock (:func:`stock_families_over`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import cache
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Date,
    FromClause,
    Select,
    String,
    and_,
    cast,
    column,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
    values,
)

from pulih.reporting.indicator_sql import AS_OF, PERIOD, Family, orgs, summed
from pulih.reporting.store import ProjectionTables


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
        fact: FromClause, unit: ColumnElement[Any], when: ColumnElement[bool], name: str, n: Any, *where: Any
    ) -> Select[Any]:
        """``n`` of the ``fact`` rows ``when`` holds for on the day, by org unit."""
        joined = fact.join(orgs_, orgs_.c.unit_id == unit)
        if days is not None:
            joined = joined.join(days, when)
        query = (
            select(orgs_.c.level, orgs_.c.org_id, period.label("period"), n.label(name))
            .select_from(joined)
            .where(*where)
            .group_by(orgs_.c.level, orgs_.c.org_id, period)
        )
        return query if days is not None else query.where(when)

    def added_up(
        fact: FromClause, unit: ColumnElement[Any], when: ColumnElement[bool], name: str, *where: Any
    ) -> Select[Any]:
        """How many ``fact`` rows ``when`` holds for on the day, per unit first, then by org unit."""
        joined = fact if days is None else fact.join(days, when)
        query = (
            select(unit.label("unit_id"), period.label("period"), func.count().label(name))
            .select_from(joined)
            .where(*where)
            .group_by(unit, period)
        )
        per_unit = (query if days is not None else query.where(when)).subquery("per_unit")
        return (
            select(orgs_.c.level, orgs_.c.org_id, per_unit.c.period, func.sum(per_unit.c[name]).label(name))
            .select_from(per_unit.join(orgs_, orgs_.c.unit_id == per_unit.c.unit_id))
            .group_by(orgs_.c.level, orgs_.c.org_id, per_unit.c.period)
        )

    # Each enrolment, and how many its client has. A client with one is active once at most on a
    # day, wherever: those are added up. Only the clients with several (a few) are counted
    # distinct at each org unit.
    per_client = (
        select(e.c.client_id, func.count().label("enrolments")).group_by(e.c.client_id).subquery("per_client")
    )
    enrolled = (
        select(
            e.c.unit_id,
            e.c.client_id,
            e.c.enrolled_on,
            func.coalesce(e.c.discharged_on, literal(date.max, Date)).label("until"),
            per_client.c.enrolments,
        )
        .join_from(e, per_client, per_client.c.client_id == e.c.client_id)
        .cte("enrolled")
    )
    # Active: began on or before the day and was not discharged before it (a pause still counts).
    active = as_of.between(enrolled.c.enrolled_on, enrolled.c.until)

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
    again = select(enrolled).where(enrolled.c.enrolments > 1).cte("enrolled_again")
    distinct_clients = func.count(again.c.client_id.distinct())
    clients_active = summed(
        [
            added_up(enrolled, enrolled.c.unit_id, active, "clients_active", enrolled.c.enrolments == 1)
            if days is None
            else _running_actives(enrolled, days, orgs_),
            counted(
                again,
                again.c.unit_id,
                as_of.between(again.c.enrolled_on, again.c.until),
                "clients_active",
                distinct_clients,
            ),
        ],
        ("clients_active",),
    )
    return [
        Family(clients_active, ("clients_active",)),
        Family(added_up(r, r.c.unit_id, overdue, "referrals_overdue"), ("referrals_overdue",)),
    ]


def _running_actives(enrolled: CTE, days: CTE, orgs_: CTE) -> Select[Any]:
    """The clients with one enrolment active on each day of ``days``, by org unit: per unit, the
    enrolments begun on or before the day minus those discharged before it, a running sum along
    the unit's timeline of beginnings, days and ends (in that order on one date). Joining every
    day to every enrolment instead compares enrolments times days: 8x slower for three years."""
    once = enrolled.c.enrolments == 1
    units = select(enrolled.c.unit_id).distinct().subquery("enrolling_units")
    no_period = cast(null(), String)
    timeline = union_all(
        select(
            enrolled.c.unit_id,
            enrolled.c.enrolled_on.label("day"),
            literal_column("0").label("place"),
            literal_column("1").label("change"),
            no_period.label("period"),
        ).where(once),
        select(
            enrolled.c.unit_id, enrolled.c.until, literal_column("2"), literal_column("-1"), no_period
        ).where(once),
        select(
            units.c.unit_id, days.c.as_of, literal_column("1"), literal_column("0"), days.c.period
        ).select_from(units.join(days, true())),
    ).subquery("timeline")
    running = func.sum(timeline.c.change).over(
        partition_by=timeline.c.unit_id, order_by=[timeline.c.day, timeline.c.place], rows=(None, 0)
    )
    along = select(timeline.c.unit_id, timeline.c.period, running.label("active")).subquery("running")
    per_unit = (
        select(along.c.unit_id, along.c.period, along.c.active)
        .where(along.c.period.is_not(None), along.c.active > 0)
        .subquery("per_unit")
    )
    return (
        select(
            orgs_.c.level,
            orgs_.c.org_id,
            per_unit.c.period,
            func.sum(per_unit.c.active).label("clients_active"),
        )
        .select_from(per_unit.join(orgs_, orgs_.c.unit_id == per_unit.c.unit_id))
        .group_by(orgs_.c.level, orgs_.c.org_id, per_unit.c.period)
    )
