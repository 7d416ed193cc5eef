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
no regency of the org unit reported has no row. The provinces' and the nation's totals are kept
up to date as aggregates arrive (:mod:`.totals`): a request reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.contracts.codes import Indicator, UnitPhase
from pulih.reporting.national.directory import Directory, province_of
from pulih.reporting.national.store import (
    national_aggregates,
    national_cells,
    national_phase_totals,
    national_phase_units,
    national_totals,
)

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


def _utc(moment: datetime | None) -> datetime | None:
    """``moment`` with its offset: SQLite gives back the UTC it was stored in without one."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _org_filter(
    level: NationalLevel, code: str | None, regency: ColumnElement[str], province: ColumnElement[str]
) -> list[ColumnElement[bool]]:
    if code is None or level is NationalLevel.NATION:
        return []
    if level is NationalLevel.PROVINCE or len(code) == 2:
        return [province == code]
    return [regency == code]


def _order(column: ColumnElement[str], order: dict[str, int]) -> ColumnElement[int]:
    return case(order, value=column, else_=len(order))


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
    units in code order, then months, then indicators in the catalogue's order. A regency's
    figures are read from its cells, a province's and the nation's from their totals."""
    level = NationalLevel(level)
    directory = directory or Directory()
    query: Any
    if level is NationalLevel.REGENCY:
        c = national_cells.c
        query = select(
            c.regency,
            c.period,
            c.indicator,
            func.coalesce(c.value, 0),
            case((c.value.is_(None), 1), else_=0),
            literal(1),
        ).where(c.period >= start, c.period <= end, *_org_filter(level, code, c.regency, c.province))
        org, period, name = c.regency, c.period, c.indicator
    else:
        t = national_totals.c
        query = select(t.org_unit, t.period, t.indicator, t.value, t.hidden, t.reporting).where(
            t.level == level.value, t.period >= start, t.period <= end
        )
        if code is not None and level is NationalLevel.PROVINCE:
            query = query.where(t.org_unit == code)
        org, period, name = t.org_unit, t.period, t.indicator
    if indicator is not None:
        query = query.where(name == indicator)
    query = query.order_by(org, period, _order(name, INDICATOR_ORDER), name)
    rows: Sequence[Any] = (await session.execute(query)).all()
    names: dict[str, str] = {}
    cells = []
    for org_unit, month, indicator_name, value, hidden, reporting in rows:
        label = names.get(org_unit)
        if label is None:
            label = names[org_unit] = directory.name_of(level.value, org_unit)
        cells.append(
            NationalCell(
                level.value, org_unit, label, month, indicator_name, value, hidden, reporting, hidden == 0
            )
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
    query: Any
    if level is NationalLevel.REGENCY:
        p = national_phase_units.c
        query = select(p.regency, p.period, p.phase, p.units).where(
            p.period >= start, p.period <= end, *_org_filter(level, code, p.regency, p.province)
        )
        org, period, phase = p.regency, p.period, p.phase
    else:
        t = national_phase_totals.c
        query = select(t.org_unit, t.period, t.phase, t.units).where(
            t.level == level.value, t.period >= start, t.period <= end
        )
        if code is not None and level is NationalLevel.PROVINCE:
            query = query.where(t.org_unit == code)
        org, period, phase = t.org_unit, t.period, t.phase
    query = query.order_by(org, period, _order(phase, PHASE_ORDER), phase)
    rows: Sequence[Any] = (await session.execute(query)).all()
    return [
        NationalPhaseCell(
            level.value, org_unit, directory.name_of(level.value, org_unit), month, name, int(units)
        )
        for org_unit, month, name, units in rows
    ]


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
                last_received_at=_utc(received),
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
