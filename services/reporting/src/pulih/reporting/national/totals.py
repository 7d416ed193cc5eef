"""The provinces' and the nation's sums, recounted where a batch changed a regency's month.

:func:`refresh_totals` recounts ``national_totals`` and ``national_phase_totals`` for the
(province, month) pairs given, from the regencies' cells, and the nation's for those months from
the provinces' (two statements each, in the store). A request then reads a few thousand rows at
most instead of adding up a hundred thousand.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import case, delete, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.reporting.national.directory import NATION
from pulih.reporting.national.store import (
    national_cells,
    national_phase_totals,
    national_phase_units,
    national_totals,
)

_PAIRS_PER_STATEMENT = 400
"""(province, month) pairs per ``IN (…)``: two bound parameters each."""


def _chunks(pairs: Sequence[tuple[str, str]]) -> list[Sequence[tuple[str, str]]]:
    return [pairs[i : i + _PAIRS_PER_STATEMENT] for i in range(0, len(pairs), _PAIRS_PER_STATEMENT)]


async def refresh_totals(session: AsyncSession, touched: Collection[tuple[str, str]]) -> None:
    """Recount the totals of the (province, month) pairs ``touched`` and of the nation in those
    months, in the caller's transaction."""
    pairs = sorted(set(touched))
    if not pairs:
        return
    periods = sorted({period for _, period in pairs})
    t, c, pt, pu = national_totals.c, national_cells.c, national_phase_totals.c, national_phase_units.c
    for chunk in _chunks(pairs):
        await session.execute(
            delete(national_totals).where(t.level == "province", tuple_(t.org_unit, t.period).in_(chunk))
        )
        await session.execute(
            national_totals.insert().from_select(
                ["level", "org_unit", "period", "indicator", "value", "hidden", "reporting"],
                select(
                    literal("province"),
                    c.province,
                    c.period,
                    c.indicator,
                    func.coalesce(func.sum(c.value), 0),
                    func.sum(case((c.value.is_(None), 1), else_=0)),
                    func.count(),
                )
                .where(tuple_(c.province, c.period).in_(chunk))
                .group_by(c.province, c.period, c.indicator),
            )
        )
        await session.execute(
            delete(national_phase_totals).where(
                pt.level == "province", tuple_(pt.org_unit, pt.period).in_(chunk)
            )
        )
        await session.execute(
            national_phase_totals.insert().from_select(
                ["level", "org_unit", "period", "phase", "units"],
                select(literal("province"), pu.province, pu.period, pu.phase, func.sum(pu.units))
                .where(tuple_(pu.province, pu.period).in_(chunk))
                .group_by(pu.province, pu.period, pu.phase),
            )
        )
    await session.execute(delete(national_totals).where(t.level == "nation", t.period.in_(periods)))
    await session.execute(
        national_totals.insert().from_select(
            ["level", "org_unit", "period", "indicator", "value", "hidden", "reporting"],
            select(
                literal("nation"),
                literal(NATION),
                t.period,
                t.indicator,
                func.sum(t.value),
                func.sum(t.hidden),
                func.sum(t.reporting),
            )
            .where(t.level == "province", t.period.in_(periods))
            .group_by(t.period, t.indicator),
        )
    )
    await session.execute(delete(national_phase_totals).where(pt.level == "nation", pt.period.in_(periods)))
    await session.execute(
        national_phase_totals.insert().from_select(
            ["level", "org_unit", "period", "phase", "units"],
            select(literal("nation"), literal(NATION), pt.period, pt.phase, func.sum(pt.units))
            .where(pt.level == "province", pt.period.in_(periods))
            .group_by(pt.period, pt.phase),
        )
    )
