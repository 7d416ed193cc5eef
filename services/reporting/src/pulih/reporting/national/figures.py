"""The national figures: indicators and unit phases by regency, province and nation, by month.

The seam the national API, the DHIS2 export and the national dashboard read (signatures as they
stand; ``session`` is an ``AsyncSession`` on reporting's store, months are ``YYYY-MM``)::

    async def national_rows(session, *, level, code=None, start, end, indicator=None,
                            directory=None) -> list[NationalCell]
    async def national_phases(session, *, level, code=None, start, end,
                              directory=None) -> list[NationalPhaseCell]
    async def regency_statuses(session, *, last_closed_month, directory=None) -> list[RegencyStatus]
    def last_closed_month(today: date) -> str

``level`` is a :class:`NationalLevel` or its value (``nation``, ``province``, ``regency``);
``code`` picks one org unit of the level (a two-digit province code, a four-digit regency code;
at level ``regency`` a province code picks that province's regencies). To fill a store for a
test: :func:`pulih.reporting.national.projection.apply_aggregates`.

Totals are honest about suppression: a cell's ``value`` is the sum of the regency figures that
were published, ``hidden`` how many regency figures of it were suppressed (null) and so are
missing from the sum, ``reporting`` how many regencies' aggregates it adds up, and ``exact``
whether nothing was hidden. A regency's own hidden figure is ``value`` 0, ``hidden`` 1. A month
no regency of the org unit reported has no row. Every total is one ``GROUP BY`` in the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.contracts.codes import Indicator, UnitPhase
from pulih.reporting.national.directory import NATION, Directory, province_of
from pulih.reporting.national.store import national_aggregates, national_cells, national_phase_units

INDICATOR_ORDER = {i.value: n for n, i in enumerate(Indicator)}
PHASE_ORDER = {p.value: n for n, p in enumerate(UnitPhase)}


class NationalLevel(StrEnum):
    """The org units the national view adds figures up to."""

    NATION = "nation"
    PROVINCE = "province"
    REGENCY = "regency"


@dataclass(frozen=True)
class NationalCell:
    """One indicator of one org unit in one month."""

    level: str
    org_unit: str
    """``ID`` for the nation, the province's two digits, or the regency's four."""
    name: str
    period: str
    indicator: str
    value: int
    """The sum of the figures that were published (suppressed ones are not in it)."""
    hidden: int
    """How many regency figures of this total were suppressed."""
    reporting: int
    """How many regencies' aggregates this total adds up."""
    exact: bool
    """``hidden == 0``: the value is the true total."""


@dataclass(frozen=True)
class NationalPhaseCell:
    """How many IBM units of one org unit were in one phase in one month."""

    level: str
    org_unit: str
    name: str
    period: str
    phase: str
    units: int


@dataclass(frozen=True)
class RegencyStatus:
    """One regency as the national office sees it: what it last sent, and whether it is silent."""

    code: str
    name: str
    province: str
    province_name: str
    last_period: str | None
    """The latest month it reported (None: expected, nothing received)."""
    last_received_at: datetime | None
    """When its latest aggregate (of any month) reached the national view."""
    revision: int | None
    """The revision held for ``last_period``."""
    silent: bool
    """No aggregate of the last closed month has arrived from it."""


def last_closed_month(today: date) -> str:
    """The month before ``today``'s: the latest one every regency should have reported."""
    months = today.year * 12 + today.month - 2
    return f"{months // 12:04d}-{months % 12 + 1:02d}"


def _org_filter(
    level: NationalLevel, code: str | None, regency: ColumnElement[str], province: ColumnElement[str]
) -> list[ColumnElement[bool]]:
    if code is None or level is NationalLevel.NATION:
        return []
    if level is NationalLevel.PROVINCE or len(code) == 2:
        return [province == code]
    return [regency == code]


async def national_rows(
    session: AsyncSession,
    *,
    level: NationalLevel | str,
    code: str | None = None,
    start: str,
    end: str,
    indicator: str | None = None,
    directory: Directory | None = None,
) -> list[NationalCell]:
    """Every indicator (or the one ``indicator``) of each org unit at ``level`` (or the one
    ``code``) for each month from ``start`` to ``end`` (both included) that it reported: org
    units in code order, then months, then indicators in the catalogue's order."""
    level = NationalLevel(level)
    directory = directory or Directory()
    c = national_cells.c
    hidden = func.sum(case((c.value.is_(None), 1), else_=0))
    measures = (func.coalesce(func.sum(c.value), 0), hidden, func.count())
    query: Select[Any]
    if level is NationalLevel.NATION:
        query = select(func.min(NATION), c.period, c.indicator, *measures).group_by(c.period, c.indicator)
    else:
        org = c.regency if level is NationalLevel.REGENCY else c.province
        query = select(org, c.period, c.indicator, *measures).group_by(org, c.period, c.indicator)
    query = query.where(c.period >= start, c.period <= end, *_org_filter(level, code, c.regency, c.province))
    if indicator is not None:
        query = query.where(c.indicator == indicator)
    rows: Sequence[Any] = (await session.execute(query)).all()
    cells = [
        NationalCell(
            level=level.value,
            org_unit=NATION if level is NationalLevel.NATION else org_unit,
            name=directory.name_of(level.value, org_unit),
            period=period,
            indicator=name,
            value=int(value),
            hidden=int(hidden_count),
            reporting=int(reporting),
            exact=int(hidden_count) == 0,
        )
        for org_unit, period, name, value, hidden_count, reporting in rows
    ]
    cells.sort(
        key=lambda cell: (cell.org_unit, cell.period, INDICATOR_ORDER.get(cell.indicator, 99), cell.indicator)
    )
    return cells


async def national_phases(
    session: AsyncSession,
    *,
    level: NationalLevel | str,
    code: str | None = None,
    start: str,
    end: str,
    directory: Directory | None = None,
) -> list[NationalPhaseCell]:
    """How many units were in each phase, per org unit at ``level`` (or the one ``code``) and
    month from ``start`` to ``end``, by the latest aggregates: the same order as
    :func:`national_rows`, phases from rintisan to prima."""
    level = NationalLevel(level)
    directory = directory or Directory()
    p = national_phase_units.c
    units = func.sum(p.units)
    query: Select[Any]
    if level is NationalLevel.NATION:
        query = select(func.min(NATION), p.period, p.phase, units).group_by(p.period, p.phase)
    else:
        org = p.regency if level is NationalLevel.REGENCY else p.province
        query = select(org, p.period, p.phase, units).group_by(org, p.period, p.phase)
    query = query.where(p.period >= start, p.period <= end, *_org_filter(level, code, p.regency, p.province))
    rows: Sequence[Any] = (await session.execute(query)).all()
    cells = [
        NationalPhaseCell(
            level=level.value,
            org_unit=NATION if level is NationalLevel.NATION else org_unit,
            name=directory.name_of(level.value, org_unit),
            period=period,
            phase=phase,
            units=int(count),
        )
        for org_unit, period, phase, count in rows
    ]
    cells.sort(key=lambda cell: (cell.org_unit, cell.period, PHASE_ORDER.get(cell.phase, 99), cell.phase))
    return cells


async def regency_statuses(
    session: AsyncSession, *, last_closed_month: str, directory: Directory | None = None
) -> list[RegencyStatus]:
    """Every regency expected (the federation list) or received, in code order: its latest
    month, when its latest aggregate arrived, and whether it is silent (nothing of
    ``last_closed_month``)."""
    directory = directory or Directory()
    a = national_aggregates.c
    latest = (
        await session.execute(
            select(a.regency, func.max(a.period), func.max(a.received_at)).group_by(a.regency)
        )
    ).all()
    last = {regency: (period, received) for regency, period, received in latest}
    newest = select(a.regency, func.max(a.period).label("period")).group_by(a.regency).subquery()
    revisions: dict[str, int] = {
        regency: revision
        for regency, revision in await session.execute(
            select(a.regency, a.revision).join(
                newest, (newest.c.regency == a.regency) & (newest.c.period == a.period)
            )
        )
    }
    reported = set(
        (await session.execute(select(a.regency).where(a.period == last_closed_month))).scalars().all()
    )
    statuses = []
    for code in sorted(directory.expected | set(last)):
        period, received = last.get(code, (None, None))
        province = province_of(code)
        statuses.append(
            RegencyStatus(
                code=code,
                name=directory.regency_name(code),
                province=province,
                province_name=directory.province_name(province),
                last_period=period,
                last_received_at=received,
                revision=revisions.get(code),
                silent=code not in reported,
            )
        )
    return statuses


__all__: Sequence[str] = (
    "NationalCell",
    "NationalLevel",
    "NationalPhaseCell",
    "RegencyStatus",
    "last_closed_month",
    "national_phases",
    "national_rows",
    "regency_statuses",
)
