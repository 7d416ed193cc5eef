"""What the reporting API reads from the projection: indicator tables, unit phases, referral and
QoL summaries. Read-only; every function takes the session and the set of tables to read.

Indicator reads are built for ``indicator_cells``' primary key ``(level, org_id, period,
indicator)``: one index range per org unit, pivoted to one row per org and period by the database
(a ``SUM(CASE …)`` per indicator), so a year of a busy regency's units comes back as a few
thousand rows rather than tens of thousands of cells.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.contracts.codes import UnitPhase
from pulih.reporting.api.params import PeriodRange
from pulih.reporting.bodies import (
    INDICATORS,
    IndicatorRow,
    OrgLevel,
    OverdueReferral,
    PhaseAssessment,
    PhaseCount,
    QolDomain,
    QolDomainChange,
    QolSummary,
    ReferralState,
    ReferralSummary,
    UnitPhases,
    UnitPhaseView,
)
from pulih.reporting.domain.periods import PeriodKind
from pulih.reporting.store import ProjectionTables

TREATMENT_ENDS = ("completed", "dropped_out")
"""Outcomes of a referral the clinic saw to its end (a declined or cancelled one never started)."""

PERIOD_LENGTH = {PeriodKind.MONTH: len("2026-01"), PeriodKind.WEEK: len("2026-W01")}


@dataclass(frozen=True)
class Org:
    """An org unit at one level: its id as ``indicator_cells.org_id`` holds it, and a name."""

    org_id: str
    name: str | None = None


async def orgs(
    session: AsyncSession, t: ProjectionTables, level: OrgLevel, regency: str, only: str | None = None
) -> list[Org]:
    """The org units at ``level`` that the projection knows (every established unit, the
    villages and districts they lie in, the regency), in code order; ``only`` keeps one."""
    units = t.units
    if level is OrgLevel.REGENCY:
        return [Org(regency)] if only in (None, regency) else []
    if level is OrgLevel.UNIT:
        query = select(units.c.unit_id, units.c.name).order_by(units.c.name, units.c.unit_id)
        if only is not None:
            query = query.where(units.c.unit_id == UUID(only))
        return [Org(str(unit_id), name) for unit_id, name in (await session.execute(query)).all()]
    column = units.c.village_code if level is OrgLevel.VILLAGE else units.c.district_code
    codes = select(column).distinct().order_by(column)
    if only is not None:
        codes = codes.where(column == only)
    return [Org(code) for code in (await session.scalars(codes)).all()]


def _pivot(t: ProjectionTables, level: OrgLevel, org_ids: Sequence[str], periods: PeriodRange) -> Select[Any]:
    cells = t.indicator_cells
    by_indicator = [
        func.sum(case((cells.c.indicator == name, cells.c.value), else_=0)).label(name) for name in INDICATORS
    ]
    return (
        select(cells.c.org_id, cells.c.period, *by_indicator)
        .where(
            cells.c.level == level.value,
            cells.c.org_id.in_(org_ids),
            cells.c.period.between(periods.first, periods.last),
            # weeks and months interleave in text order across a new year ("2026-01" lies between
            # "2025-W50" and "2026-W02"): keep the range's own kind
            func.length(cells.c.period) == PERIOD_LENGTH[periods.by],
        )
        .group_by(cells.c.org_id, cells.c.period)
    )


async def indicator_rows(
    session: AsyncSession, t: ProjectionTables, level: OrgLevel, org_list: Sequence[Org], periods: PeriodRange
) -> list[IndicatorRow]:
    """One row per org and period of the range (in that order), every indicator filled in:
    a cell the projection does not hold is 0."""
    if not org_list:
        return []
    found: dict[tuple[str, str], dict[str, int]] = {}
    result = await session.execute(_pivot(t, level, [o.org_id for o in org_list], periods))
    for org_id, period, *values in result:
        found[(org_id, period)] = dict(zip(INDICATORS, map(int, values), strict=True))
    zeros = dict.fromkeys(INDICATORS, 0)
    return [
        IndicatorRow(
            org_id=org.org_id,
            org_name=org.name,
            period=period,
            indicators=found.get((org.org_id, period), zeros),
        )
        for org in org_list
        for period in periods.periods
    ]


async def unit_phases(
    session: AsyncSession, t: ProjectionTables, unit_id: UUID | None, months: PeriodRange
) -> UnitPhases:
    """Every unit (or one) with its current phase (its latest assessment, with the criteria that
    held then), the month it entered it, its last move and its history in ``months``; and how
    many units stood in each phase after each month's assessment in ``months``."""
    units, p = t.units, t.unit_phases
    unit_query = select(units).order_by(units.c.name, units.c.unit_id)
    # the whole trail is read (light columns only): a unit may have entered its phase long ago
    trail_query = select(p.c.unit_id, p.c.period, p.c.phase, p.c.previous_phase).order_by(
        p.c.unit_id, p.c.period
    )
    latest = select(p.c.unit_id, func.max(p.c.period).label("period")).group_by(p.c.unit_id)
    if unit_id is not None:
        unit_query = unit_query.where(units.c.unit_id == unit_id)
        trail_query = trail_query.where(p.c.unit_id == unit_id)
        latest = latest.where(p.c.unit_id == unit_id)
    newest = latest.subquery()
    criteria_query = select(p.c.unit_id, p.c.criteria).join(
        newest, (newest.c.unit_id == p.c.unit_id) & (newest.c.period == p.c.period)
    )
    trails: dict[UUID, list[Any]] = {}
    for row in await session.execute(trail_query):
        trails.setdefault(row.unit_id, []).append(row)
    criteria: dict[UUID, Any] = {unit: held for unit, held in await session.execute(criteria_query)}
    wanted = set(months.periods)
    counts = {period: dict.fromkeys(UnitPhase, 0) for period in months.periods}
    views = []
    for unit in (await session.execute(unit_query)).mappings():
        trail = trails.get(unit["unit_id"], [])
        history = [
            PhaseAssessment(period=row.period, phase=row.phase, previous_phase=row.previous_phase)
            for row in trail
            if row.period in wanted
        ]
        for assessment in history:
            counts[assessment.period][assessment.phase] += 1
        views.append(
            UnitPhaseView.model_validate(
                {**unit, **_current(trail), "criteria": criteria.get(unit["unit_id"]), "history": history}
            )
        )
    by_month = [
        PhaseCount(period=period, units=units_in)
        for period, units_in in counts.items()
        if any(units_in.values())
    ]
    return UnitPhases(units=views, by_month=by_month)


def _current(trail: Sequence[Any]) -> dict[str, Any]:
    """A unit's current phase, the month it entered it, and its latest move, from its
    assessments oldest first."""
    if not trail:
        return {"phase": None, "assessed": None, "since": None, "trend": None}
    latest = trail[-1]
    since = latest.period
    for earlier in reversed(trail[:-1]):
        if earlier.phase != latest.phase:
            break
        since = earlier.period
    order = list(UnitPhase)
    before = trail[-2].phase if len(trail) > 1 else latest.previous_phase
    trend = "steady"
    if before is not None and before != latest.phase:
        trend = "up" if order.index(UnitPhase(latest.phase)) > order.index(UnitPhase(before)) else "down"
    return {"phase": latest.phase, "assessed": latest.period, "since": since, "trend": trend}


def referral_state(row: Any) -> ReferralState:
    """Where a referral stands, from the dates the projection holds for it."""
    if row.cancelled_on is not None or row.outcome == "cancelled":
        return ReferralState.CANCELLED
    if row.declined_on is not None or row.outcome == "declined":
        return ReferralState.DECLINED
    if row.closed_on is not None:
        return ReferralState.DROPPED_OUT if row.outcome == "dropped_out" else ReferralState.COMPLETED
    if row.attended_on is not None:
        return ReferralState.ATTENDED
    if row.accepted_on is not None:
        return ReferralState.ACCEPTED
    return ReferralState.REFERRED


def _median_days(pairs: Sequence[tuple[date, date | None]]) -> float | None:
    days = [(end - start).days for start, end in pairs if end is not None]
    return float(statistics.median(days)) if days else None


async def referral_summary(
    session: AsyncSession, t: ProjectionTables, unit_id: UUID | None, periods: PeriodRange, today: date
) -> ReferralSummary:
    """Referrals made in the range by status, answer and completion times, and every referral
    overdue today: still unanswered (not accepted, declined or cancelled) after ``respond_by``."""
    r = t.referrals
    made_query = select(r).where(r.c.referred_on.between(periods.first_day, periods.last_day))
    overdue_query = (
        select(r, t.units.c.name.label("unit_name"))
        .join_from(r, t.units, t.units.c.unit_id == r.c.unit_id, isouter=True)
        .where(
            r.c.respond_by < today,
            r.c.accepted_on.is_(None),
            r.c.declined_on.is_(None),
            r.c.cancelled_on.is_(None),
            r.c.closed_on.is_(None),
        )
        .order_by(r.c.respond_by, r.c.referred_on, r.c.referral_id)
    )
    if unit_id is not None:
        made_query = made_query.where(r.c.unit_id == unit_id)
        overdue_query = overdue_query.where(r.c.unit_id == unit_id)
    made = (await session.execute(made_query)).all()
    states = Counter(referral_state(row) for row in made)
    answers = [row.accepted_on or row.declined_on for row in made if (row.accepted_on or row.declined_on)]
    in_time = [
        row
        for row in made
        if (answer := row.accepted_on or row.declined_on) is not None and answer <= row.respond_by
    ]
    overdue = [
        OverdueReferral.model_validate(
            {
                **row._mapping,
                "days_overdue": (today - row.respond_by).days,
                "escalated": row.escalated_on is not None,
            }
        )
        for row in (await session.execute(overdue_query)).all()
    ]
    return ReferralSummary(
        since=periods.first_day,
        until=periods.last_day,
        today=today,
        made=len(made),
        by_status={state: states[state] for state in ReferralState},
        answered=len(answers),
        answered_in_time=len(in_time),
        median_days_to_accept=_median_days([(row.referred_on, row.accepted_on) for row in made]),
        median_days_to_close=_median_days(
            [(row.referred_on, row.closed_on) for row in made if row.outcome in TREATMENT_ENDS]
        ),
        overdue=overdue,
    )


async def qol_summary(
    session: AsyncSession, t: ProjectionTables, unit_id: UUID | None, periods: PeriodRange
) -> QolSummary:
    """Mean WHOQOL scores at baseline and exit, and how many clients improved, over the clients
    whose exit assessment fell in the range."""
    q = t.qol_changes
    query = select(q).where(q.c.exit_on.between(periods.first_day, periods.last_day))
    if unit_id is not None:
        query = query.where(q.c.unit_id == unit_id)
    rows = (await session.execute(query)).mappings().all()
    domains = []
    for domain in QolDomain:
        baseline = [float(row[f"baseline_{domain.value}"]) for row in rows]
        exit_ = [float(row[f"exit_{domain.value}"]) for row in rows]
        domains.append(
            QolDomainChange(
                domain=domain,
                baseline_mean=_mean(baseline),
                exit_mean=_mean(exit_),
                mean_change=_mean([b - a for a, b in zip(baseline, exit_, strict=True)]),
                improved=sum(b > a for a, b in zip(baseline, exit_, strict=True)),
            )
        )
    improved = sum(
        sum(float(row[f"exit_{d.value}"]) for d in QolDomain)
        > sum(float(row[f"baseline_{d.value}"]) for d in QolDomain)
        for row in rows
    )
    return QolSummary(
        since=periods.first_day, until=periods.last_day, clients=len(rows), improved=improved, domains=domains
    )


def _mean(values: Sequence[float]) -> float:
    return round(statistics.fmean(values), 1) if values else 0.0
