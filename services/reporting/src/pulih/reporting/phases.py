"""Unit phases from the projection tables: every unit's monthly facts
(:mod:`pulih.reporting.phase_facts`), judged by :mod:`pulih.reporting.domain.phases`, written to
``unit_phases`` as each unit's history.

Phases are assessed monthly (DOMAIN.md), for **closed months only**: the running month is never
assessed, since "outreach / sessions in each of the last 3 months" cannot hold on its first days
and every unit would seem to fall to ``rintisan`` on the 1st. A unit's current phase is its
last closed month's assessment. :func:`reassess` assesses every unit for each month from
``from_month`` up to the month before today's. A month's assessment starts from the phase of the
month before, so an event dated in an earlier month (a device syncing days after the month
closed) changes that month and can change every later one: they are all assessed again, in
order. A unit is assessed from the month it was established (a unit established this month has
no phase yet); months missing before ``from_month`` (no event arrived in them) are assessed
first.

One assessment reads every unit's facts (about a second at a million events on SQLite), too much
for every batch of the live consumer. So the consumer only *notes* the earliest day a batch
touched (:func:`note_changed`: one row of ``position``), and :func:`catch_up`, run by the
periodic job (``aggregates.publish_aggregates``), assesses from there when that day lies in a
closed month (a change in the running month waits for it to close). It also assesses the months
that closed since the last assessment, from that assessment's month. A closed month's facts no
longer depend on the day they are read (every ``respond_by`` in it has passed), so nothing else
is assessed again. The rebuild calls :func:`reassess` directly, once, from the first unit's month.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from pulih.contracts.codes import UnitPhase
from pulih.reporting.domain.phases import PhaseCriteria, assess
from pulih.reporting.phase_facts import (
    count_facts,
    established_months,
    first_day,
    month_index,
    month_name,
    month_of,
    unit_months,
)
from pulih.reporting.projection import dialect_insert
from pulih.reporting.store import ProjectionTables

__all__ = [
    "ASSESSED_ON",
    "CHANGED_FROM",
    "catch_up",
    "month_index",
    "month_name",
    "note_changed",
    "note_changed_sync",
    "reassess",
    "reassess_sync",
    "units_by_phase_sync",
]

CHANGED_FROM = "phases:changed_from"
"""The ``position`` row holding the earliest day changed since the last assessment."""

ASSESSED_ON = "phases:assessed_on"
"""The ``position`` row holding the day (``today``) of the last assessment."""

_CHUNK = 500


def _connection(session: Session | Connection) -> Connection:
    return session.connection() if isinstance(session, Session) else session


def _marked(conn: Connection, tables: ProjectionTables, name: str) -> date | None:
    p = tables.position
    when = conn.scalar(select(p.c.event_time).where(p.c.consumer == name))
    return when.date() if isinstance(when, datetime) else None


def _mark(conn: Connection, tables: ProjectionTables, name: str, day: date | None) -> None:
    p = tables.position
    if day is None:
        conn.execute(delete(p).where(p.c.consumer == name))
        return
    row = {
        "consumer": name,
        "stream_seq": 0,
        "event_id": None,
        "event_time": datetime.combine(day, time(), tzinfo=UTC),
        "applied_at": datetime.now(UTC),
    }
    upsert = dialect_insert(conn, p).values(**row)
    conn.execute(
        upsert.on_conflict_do_update(
            index_elements=[p.c.consumer],
            set_={"event_time": upsert.excluded.event_time, "applied_at": upsert.excluded.applied_at},
        )
    )


def note_changed_sync(session: Session | Connection, tables: ProjectionTables, earliest: date | None) -> None:
    """:func:`note_changed` on a synchronous session or connection."""
    if earliest is None:
        return
    conn = _connection(session)
    noted = _marked(conn, tables, CHANGED_FROM)
    if noted is None or earliest < noted:
        _mark(conn, tables, CHANGED_FROM, earliest)


async def note_changed(session: AsyncSession, tables: ProjectionTables, earliest: date | None) -> None:
    """Remember that the facts changed from ``earliest`` on (``Touched.earliest`` of a batch),
    for :func:`catch_up`; cheap enough for every batch, in the batch's transaction."""
    await session.run_sync(note_changed_sync, tables, earliest)


async def catch_up(
    session: AsyncSession,
    tables: ProjectionTables,
    *,
    today: date,
    criteria: PhaseCriteria | Mapping[str, Any],
) -> int:
    """Assess what changed in closed months since the last assessment (from the earliest day
    noted), and the months that closed since then (from that assessment's month); rows written
    (0 when nothing was due: a change in the running month waits for it to close)."""
    running = month_index(today)

    def run(sync: Session) -> int:
        conn = _connection(sync)
        changed, assessed_on = _marked(conn, tables, CHANGED_FROM), _marked(conn, tables, ASSESSED_ON)
        starts = [day for day in (changed, assessed_on) if day is not None and month_index(day) < running]
        if not starts and assessed_on is not None:
            if changed is not None:  # the running month's: assessed with the month once it closes
                _mark(conn, tables, CHANGED_FROM, None)
            return 0
        return reassess_sync(conn, tables, min(starts, default=today), today=today, criteria=criteria)

    return await session.run_sync(run)


def _assessed_before(conn: Connection, t: ProjectionTables, start: int) -> dict[UUID, tuple[int, UnitPhase]]:
    """Each unit's latest assessed month before ``start``, and its phase then."""
    p = t.unit_phases
    latest = (
        select(p.c.unit_id, func.max(p.c.period).label("period"))
        .where(p.c.period < month_name(start))
        .group_by(p.c.unit_id)
        .subquery()
    )
    rows = conn.execute(
        select(p.c.unit_id, p.c.period, p.c.phase).join(
            latest, and_(latest.c.unit_id == p.c.unit_id, latest.c.period == p.c.period)
        )
    )
    return {unit_id: (month_of(period), UnitPhase(phase)) for unit_id, period, phase in rows}


def reassess_sync(
    session: Session | Connection,
    tables: ProjectionTables,
    from_month: str | date,
    *,
    today: date,
    criteria: PhaseCriteria | Mapping[str, Any],
) -> int:
    """:func:`reassess` on a synchronous session or connection."""
    conn = _connection(session)
    judge = criteria if isinstance(criteria, PhaseCriteria) else PhaseCriteria.from_tables(criteria)
    last = month_index(today) - 1  # the last closed month: the running one is not assessed
    wanted = min(month_of(from_month), last)
    units = established_months(conn, tables)
    before = _assessed_before(conn, tables, wanted)
    starts: dict[UUID, tuple[int, UnitPhase | None]] = {}
    for unit_id, established in units.items():
        if established > last:
            continue
        assessed, phase = before.get(unit_id, (None, None))
        if assessed is None or assessed < established:
            starts[unit_id] = (established, None)
        else:
            starts[unit_id] = (min(wanted, assessed + 1), phase)
    # Every unit is assessed from ``wanted`` at the latest: a change noted from then on is covered.
    changed = _marked(conn, tables, CHANGED_FROM)
    if changed is not None and month_index(changed) >= wanted:
        _mark(conn, tables, CHANGED_FROM, None)
    _mark(conn, tables, ASSESSED_ON, today)
    # rows of a month not closed yet (written before phases were assessed on closed months only)
    conn.execute(delete(tables.unit_phases).where(tables.unit_phases.c.period > month_name(last)))
    if not starts:
        return 0
    earliest = min(start for start, _ in starts.values())
    facts = count_facts(conn, tables, today, first_day(earliest - judge.longest_run))
    rows: list[dict[str, Any]] = []
    for unit_id, (start, previous) in starts.items():
        for index, month in unit_months(unit_id, facts, units[unit_id], start, last, judge.longest_run):
            assessment = assess(month, previous, judge)
            rows.append(
                {
                    "unit_id": unit_id,
                    "period": month_name(index),
                    "phase": assessment.phase.value,
                    "previous_phase": None if previous is None else previous.value,
                    "criteria": assessment.criteria_record(),
                }
            )
            previous = assessment.phase
    _forget_from(conn, tables, starts)
    for chunk in range(0, len(rows), _CHUNK):
        conn.execute(insert(tables.unit_phases), rows[chunk : chunk + _CHUNK])
    return len(rows)


def _forget_from(conn: Connection, t: ProjectionTables, starts: Mapping[UUID, tuple[int, Any]]) -> None:
    """Delete each unit's rows from the month its assessment starts at."""
    by_start: dict[int, list[UUID]] = defaultdict(list)
    for unit_id, (start, _) in starts.items():
        by_start[start].append(unit_id)
    p = t.unit_phases
    for start, unit_ids in by_start.items():
        for chunk in range(0, len(unit_ids), _CHUNK):
            conn.execute(
                delete(p).where(
                    p.c.unit_id.in_(unit_ids[chunk : chunk + _CHUNK]), p.c.period >= month_name(start)
                )
            )


async def reassess(
    session: AsyncSession,
    tables: ProjectionTables,
    from_month: str | date,
    *,
    today: date,
    criteria: PhaseCriteria | Mapping[str, Any],
) -> int:
    """Assess every unit for each closed month from ``from_month`` (``YYYY-MM`` or a day in it)
    up to the month before ``today``'s and write those rows of ``unit_phases`` (the running
    month's rows, if any, are deleted), in the caller's transaction;
    returns how many rows it wrote. ``criteria`` is a :class:`PhaseCriteria` or the
    ``[reporting.phases]`` tables (``ReportingDeps.phase_criteria``)."""
    return await session.run_sync(reassess_sync, tables, from_month, today=today, criteria=criteria)


def units_by_phase_sync(
    session: Session | Connection, tables: ProjectionTables, period: str
) -> dict[str, int]:
    """How many units are in each phase after ``period``'s assessment (every phase named)."""
    conn = _connection(session)
    p = tables.unit_phases
    stmt = select(p.c.phase, func.count()).where(p.c.period == period).group_by(p.c.phase)
    counted: dict[str, int] = {phase: count for phase, count in conn.execute(stmt)}
    return {phase.value: int(counted.get(phase.value, 0)) for phase in UnitPhase}
