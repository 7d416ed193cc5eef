"""The dashboard's referral and quality-of-life figures, added up by the database.

A busy regency has thousands of referrals and QoL changes a year: counts, sums and means are
one ``GROUP BY`` each, and only the day pairs a median needs come back row by row.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.reporting.bodies import (
    OverdueReferral,
    QolDomain,
    QolDomainChange,
    QolSummary,
    ReferralState,
    ReferralSummary,
)
from pulih.reporting.ranges import PeriodRange
from pulih.reporting.store import ProjectionTables

TREATMENT_ENDS = ("completed", "dropped_out")
"""Outcomes of a referral the clinic saw to its end (a declined or cancelled one never started)."""


def referral_state(t: ProjectionTables) -> ColumnElement[str]:
    """Where a referral stands (:class:`ReferralState`), from the dates the projection holds."""
    r = t.referrals.c
    return case(
        ((r.cancelled_on.is_not(None)) | (r.outcome == "cancelled"), ReferralState.CANCELLED.value),
        ((r.declined_on.is_not(None)) | (r.outcome == "declined"), ReferralState.DECLINED.value),
        (and_(r.closed_on.is_not(None), r.outcome == "dropped_out"), ReferralState.DROPPED_OUT.value),
        (r.closed_on.is_not(None), ReferralState.COMPLETED.value),
        (r.attended_on.is_not(None), ReferralState.ATTENDED.value),
        (r.accepted_on.is_not(None), ReferralState.ACCEPTED.value),
        else_=ReferralState.REFERRED.value,
    )


def _median_days(pairs: Iterable[tuple[date, date]]) -> float | None:
    days = [(end - start).days for start, end in pairs]
    return float(statistics.median(days)) if days else None


async def referral_summary(
    session: AsyncSession, t: ProjectionTables, unit_id: UUID | None, periods: PeriodRange, today: date
) -> ReferralSummary:
    """Referrals made in the range by status, answer and completion times, and every referral
    overdue today: still unanswered (not accepted, declined or cancelled) after ``respond_by``."""
    r = t.referrals
    made = [r.c.referred_on.between(periods.first_day, periods.last_day)]
    mine = [] if unit_id is None else [r.c.unit_id == unit_id]
    state = referral_state(t)
    answer = func.coalesce(r.c.accepted_on, r.c.declined_on)
    by_status = dict.fromkeys(ReferralState, 0)
    for name, count in await session.execute(select(state, func.count()).where(*made, *mine).group_by(state)):
        by_status[ReferralState(name)] = count
    answered, in_time = (
        await session.execute(
            select(
                func.count(answer),
                func.coalesce(func.sum(case((answer <= r.c.respond_by, 1), else_=0)), 0),
            ).where(*made, *mine)
        )
    ).one()
    accepted = await session.execute(
        select(r.c.referred_on, r.c.accepted_on).where(*made, *mine, r.c.accepted_on.is_not(None))
    )
    closed = await session.execute(
        select(r.c.referred_on, r.c.closed_on).where(
            *made, *mine, r.c.closed_on.is_not(None), r.c.outcome.in_(TREATMENT_ENDS)
        )
    )
    unanswered = [
        r.c.respond_by < today,
        r.c.accepted_on.is_(None),
        r.c.declined_on.is_(None),
        r.c.cancelled_on.is_(None),
        r.c.closed_on.is_(None),
    ]
    overdue_query = (
        select(r, t.units.c.name.label("unit_name"))
        .join_from(r, t.units, t.units.c.unit_id == r.c.unit_id, isouter=True)
        .where(*unanswered, *mine)
        .order_by(r.c.respond_by, r.c.referred_on, r.c.referral_id)
    )
    overdue = [
        OverdueReferral.model_validate(
            {
                **row,
                "days_overdue": (today - row["respond_by"]).days,
                "escalated": row["escalated_on"] is not None,
            }
        )
        for row in (await session.execute(overdue_query)).mappings()
    ]
    return ReferralSummary(
        since=periods.first_day,
        until=periods.last_day,
        today=today,
        made=sum(by_status.values()),
        by_status=by_status,
        answered=answered,
        answered_in_time=int(in_time),
        median_days_to_accept=_median_days((start, end) for start, end in accepted),
        median_days_to_close=_median_days((start, end) for start, end in closed),
        overdue=overdue,
    )


def _total(columns: Any, moment: str) -> ColumnElement[float]:
    """The sum of the four domain scores at ``baseline`` or ``exit`` (compared as the indicator
    ``qol_improved`` compares means: the same four terms)."""
    first, *rest = (columns[f"{moment}_{d.value}"] for d in QolDomain)
    total: ColumnElement[float] = first
    for column in rest:
        total = total + column
    return total


async def qol_summary(
    session: AsyncSession, t: ProjectionTables, unit_id: UUID | None, periods: PeriodRange
) -> QolSummary:
    """Mean WHOQOL scores at baseline and exit, and how many clients improved, over the clients
    whose exit assessment fell in the range."""
    q = t.qol_changes.c
    columns: list[ColumnElement[Any]] = [func.count()]
    for d in QolDomain:
        baseline, exit_ = q[f"baseline_{d.value}"], q[f"exit_{d.value}"]
        columns += [func.avg(baseline), func.avg(exit_), func.sum(case((exit_ > baseline, 1), else_=0))]
    columns.append(func.sum(case((_total(q, "exit") > _total(q, "baseline"), 1), else_=0)))
    query = select(*columns).where(q.exit_on.between(periods.first_day, periods.last_day))
    if unit_id is not None:
        query = query.where(q.unit_id == unit_id)
    clients, *means, improved = (await session.execute(query)).one()
    domains = []
    for index, domain in enumerate(QolDomain):
        baseline_mean, exit_mean, better = means[3 * index : 3 * index + 3]
        domains.append(
            QolDomainChange(
                domain=domain,
                baseline_mean=_rounded(baseline_mean),
                exit_mean=_rounded(exit_mean),
                mean_change=_rounded(None if exit_mean is None else float(exit_mean) - float(baseline_mean)),
                improved=int(better or 0),
            )
        )
    return QolSummary(
        since=periods.first_day,
        until=periods.last_day,
        clients=clients,
        improved=int(improved or 0),
        domains=domains,
    )


def _rounded(value: Any) -> float:
    return 0.0 if value is None else round(float(value), 1)
