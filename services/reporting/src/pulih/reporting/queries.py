"""What the reporting API reads from the projection: indicator tables and unit phases (the
referral and QoL figures are in :mod:`pulih.reporting.figures`). Read-only; every function
takes the session and the set of tables to read.

Indicator reads are built for ``indicator_cells``' primary key ``(level, org_id, period,
indicator)``: one index range per org unit, pivoted to one row per org and period by the database
(a ``SUM(CASE …)`` per indicator), so a year of a busy regency's units comes back as a few
thousand rows rather than tens of thousands of cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import Select, case, func, null, select
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.contracts.codes import UnitPhase
from pulih.reporting.bodies import (
    INDICATORS,
    IndicatorRow,
    OrgLevel,
    PhaseAssessment,
    PhaseCount,
    UnitPhases,
    UnitPhaseView,
)
from pulih.reporting.domain.periods import PeriodKind
from pulih.reporting.ranges import PeriodRange
from pulih.reporting.store import ProjectionTables

PHASE_ORDER = list(UnitPhase)
"""rintisan → tumbuh → berkembang → tangguh → prima."""

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
    # built without validation: every value is an int this function made, and a year of a busy
    # regency's units is ten thousand rows
    return [
        IndicatorRow.model_construct(
            org_id=org.org_id,
            org_name=org.name,
            period=period,
            indicators=found.get((org.org_id, period), zeros),
        )
        for org in org_list
        for period in periods.periods
    ]


async def unit_phases(
    session: AsyncSession,
    t: ProjectionTables,
    unit_id: UUID | None,
    months: PeriodRange,
    *,
    detail: bool = True,
) -> UnitPhases:
    """Every unit (or one) with its current phase (its latest assessment, of a closed month,
    with the criteria that held then), the month it entered it, its latest move and its history
    of moves; and how many units stood in each phase after each assessment of ``months``.

    The monthly rows repeat a phase for months on end: the history is the assessments that
    changed it (a unit's first included), so a regency's hundreds of units stay one small read.
    Without ``detail`` the moves and the criteria are left out (the dashboard's list).
    """
    units, p = t.units, t.unit_phases
    unit_query = select(units).order_by(units.c.name, units.c.unit_id)
    moved = p.c.previous_phase.is_(None) | (p.c.previous_phase != p.c.phase)
    moves_query = select(p.c.unit_id, p.c.period, p.c.phase, p.c.previous_phase).where(moved)
    since_query = select(p.c.unit_id, func.max(p.c.period).label("period")).where(moved).group_by(p.c.unit_id)
    latest = select(p.c.unit_id, func.max(p.c.period).label("period")).group_by(p.c.unit_id)
    counts_query = (
        select(p.c.period, p.c.phase, func.count())
        .where(p.c.period.between(months.first, months.last))
        .group_by(p.c.period, p.c.phase)
    )
    if unit_id is not None:
        unit_query = unit_query.where(units.c.unit_id == unit_id)
        moves_query = moves_query.where(p.c.unit_id == unit_id)
        since_query = since_query.where(p.c.unit_id == unit_id)
        latest = latest.where(p.c.unit_id == unit_id)
        counts_query = counts_query.where(p.c.unit_id == unit_id)
    newest = latest.subquery()
    criteria = p.c.criteria if detail else null().label("criteria")
    latest_query = select(p.c.unit_id, p.c.period, p.c.phase, p.c.previous_phase, criteria).join(
        newest, (newest.c.unit_id == p.c.unit_id) & (newest.c.period == p.c.period)
    )
    moves: dict[UUID, list[PhaseAssessment]] = {}
    since = {row.unit_id: row.period for row in await session.execute(since_query)}
    if detail:
        for row in await session.execute(moves_query.order_by(p.c.unit_id, p.c.period)):
            moves.setdefault(row.unit_id, []).append(
                PhaseAssessment(period=row.period, phase=row.phase, previous_phase=row.previous_phase)
            )
    current = {row.unit_id: row for row in await session.execute(latest_query)}
    fields = units.c.keys()  # zipped with each row: Row.keys() costs more than all the rest here
    views = [
        UnitPhaseView.model_validate(
            {
                **dict(zip(fields, unit, strict=True)),
                **_current(current.get(unit.unit_id), since.get(unit.unit_id)),
                "history": moves.get(unit.unit_id, []),
            }
        )
        for unit in await session.execute(unit_query)
    ]
    counts: dict[str, dict[UnitPhase, int]] = {}
    for period, phase, count in await session.execute(counts_query.order_by(p.c.period)):
        counts.setdefault(period, dict.fromkeys(UnitPhase, 0))[UnitPhase(phase)] = count
    by_month = [PhaseCount(period=period, units=units_in) for period, units_in in counts.items()]
    return UnitPhases(units=views, by_month=by_month)


def _current(latest: Any, since: str | None) -> dict[str, Any]:
    """A unit's current phase and what held then, the month it entered it (its latest move), and
    its latest assessment against the one before."""
    if latest is None:
        return {"phase": None, "assessed": None, "since": None, "trend": None, "criteria": None}
    phase, before = UnitPhase(latest.phase), latest.previous_phase
    trend = "steady"
    if before is not None and before != phase:
        trend = "up" if PHASE_ORDER.index(phase) > PHASE_ORDER.index(UnitPhase(before)) else "down"
    return {
        "phase": phase,
        "assessed": latest.period,
        "since": since or latest.period,
        "trend": trend,
        "criteria": latest.criteria,
    }
