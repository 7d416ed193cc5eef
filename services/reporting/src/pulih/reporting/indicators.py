"""Keep ``indicator_cells`` and ``qol_changes`` true to the projection tables.

After each batch, :func:`refresh` recomputes exactly the cells the batch can have changed:

- *flows* (counted by the event's date) for the months and ISO weeks the batch touched, plus the
  periods of exit assessments whose baseline arrived late;
- *stocks* (``clients_active``, ``referrals_overdue``, counted on the period's last day, or on
  today while the period runs) for every period from the earliest touched day, or from the day
  stocks were last counted on, up to today's: a stock changes with time alone (a referral turns
  overdue with no event), so a period is recounted until it has ended and been counted after.

It deletes those periods' cells and inserts them again with set-based SQL
(:mod:`pulih.reporting.indicator_sql`); cells with value 0 are never stored (readers take a
missing cell as 0). :func:`refresh_all` recounts everything (the rebuild). A job that runs while
no event arrives rolls the stocks forward with ``refresh(…, Touched(), …)``.

A consumer catching up (a full batch, more waiting) passes ``defer=True``: the batch only lowers
a "recount from" day, and the first refresh without ``defer`` recounts every period from there
to today once, instead of once a batch. Meanwhile no "stocks counted on" day is recorded, so a
job that recounts whenever stocks are not counted up to today also ends the deferral.

Both days are ``position`` rows (:data:`STOCKS_COUNTED`, :data:`DEFERRED_SINCE`; ``event_time``
is the day, ``stream_seq`` 0), so they are swapped together with a rebuild.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Table, delete, func, insert, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from pulih.contracts.codes import Indicator
from pulih.reporting import indicator_sql as sql
from pulih.reporting import stock_sql
from pulih.reporting.domain.periods import (
    as_of,
    first_day,
    last_day,
    month_of,
    periods_between,
    week_of,
)
from pulih.reporting.projection import Touched, insert_for
from pulih.reporting.store import WHOQOL_DOMAINS, ProjectionTables

STOCKS = (Indicator.CLIENTS_ACTIVE.value, Indicator.REFERRALS_OVERDUE.value)
"""Indicators counted on a day (the period's last, or today while it runs)."""

FLOWS = tuple(i.value for i in Indicator if i.value not in STOCKS)
"""Indicators counted by the date of the events in the period."""

STOCKS_COUNTED = "indicators:stocks_counted_on"
"""The ``position`` row that remembers the day stocks were last counted on."""

DEFERRED_SINCE = "indicators:deferred_since"
"""The ``position`` row that remembers the earliest day of batches applied without a refresh."""

_CHUNK = 5000

_ONE_BY_ONE = 8
"""Up to this many periods, stocks are counted one period a statement (cached statements);
more (a rebuild, a catch-up) are counted all in one statement per stock."""


def _connection(session: Session | Connection) -> Connection:
    return session.connection() if isinstance(session, Session) else session


def refresh_sync(
    session: Session | Connection,
    tables: ProjectionTables,
    touched: Touched,
    *,
    today: date,
    regency: str,
    defer: bool = False,
) -> date | None:
    """:func:`refresh` on a synchronous session or connection."""
    conn = _connection(session)
    markers = _markers(conn, tables, DEFERRED_SINCE, STOCKS_COUNTED)
    deferred = markers.get(DEFERRED_SINCE)
    if defer:
        if touched.earliest is None and deferred is None:
            return None  # nothing dated changed, nothing is waiting: the stocks still stand
        if touched.earliest is not None and (deferred is None or touched.earliest < deferred):
            _set_marker(conn, tables, DEFERRED_SINCE, touched.earliest)
        # Stocks are not counted as of any day now: a job that recounts when they are not
        # (the aggregates' roll forward) ends the deferral if no batch comes to end it.
        if STOCKS_COUNTED in markers:
            _clear_marker(conn, tables, STOCKS_COUNTED)
        return None
    flows = set(touched.periods)
    qol_clients: set[UUID] = set()
    if touched.qol_enrolments:
        flows |= _exit_periods(conn, tables, sorted(touched.qol_enrolments))
        qol_clients |= _clients_of(conn, tables, sorted(touched.qol_enrolments))
    if deferred is not None:
        # Batches applied while catching up only said where they began: recount from there.
        flows |= set(periods_between(deferred, max(today, deferred)))
        qol_clients |= _clients_assessed_since(conn, tables, deferred)
        _clear_marker(conn, tables, DEFERRED_SINCE)
    if qol_clients:
        _refresh_qol_changes(conn, tables, sorted(qol_clients))
    _recount_flows(conn, tables, flows, regency)
    starts = [d for d in (touched.earliest, markers.get(STOCKS_COUNTED), deferred) if d is not None]
    if not starts:
        return None
    since = min(min(starts), today)
    _recount_stocks(conn, tables, periods_between(since, today), today, regency)
    _set_marker(conn, tables, STOCKS_COUNTED, today)
    return since


async def refresh(
    session: AsyncSession,
    tables: ProjectionTables,
    touched: Touched,
    *,
    today: date,
    regency: str,
    defer: bool = False,
) -> date | None:
    """Recompute, in the caller's transaction, the cells ``touched`` can have changed: flows of
    its periods; stocks from its earliest day, or from the day stocks were last counted on, up to
    ``today``; the QoL changes of its clients. ``regency`` is the regency level's org id.

    ``defer`` (a consumer catching up, with more batches waiting) only remembers where the batch
    began; the next refresh without it recounts everything from there. Returns the first day
    stocks were recounted from (the month phases must be reassessed from), or None.
    """
    return await session.run_sync(refresh_sync, tables, touched, today=today, regency=regency, defer=defer)


async def deferred_since(session: AsyncSession, tables: ProjectionTables) -> date | None:
    """The earliest day of batches applied with ``defer`` and not recounted yet, if any."""
    return await session.run_sync(lambda s: _marker(_connection(s), tables, DEFERRED_SINCE))


def refresh_all_sync(
    session: Session | Connection, tables: ProjectionTables, *, today: date, regency: str
) -> None:
    """:func:`refresh_all` on a synchronous session or connection."""
    conn = _connection(session)
    conn.execute(delete(tables.indicator_cells))
    conn.execute(delete(tables.qol_changes))
    _clear_marker(conn, tables, DEFERRED_SINCE)
    _refresh_qol_changes(conn, tables, None)
    span = _fact_span(conn, tables)
    if span is None:
        return
    first, last = span
    params = {"first": first_day(month_of(first)), "last": max(last, today), "regency": regency}
    # Millions of cells go in: an index built once afterwards costs a third of one kept up to
    # date row by row. Only the primary key stays (and the transaction hides the rest).
    secondary = sorted(tables.indicator_cells.indexes, key=lambda index: str(index.name))
    for index in secondary:
        index.drop(conn)
    for family in sql.flow_families(tables):
        sql.insert_family(conn, tables, family, params)
    _recount_stocks(conn, tables, periods_between(first, today), today, regency, empty=True)
    for index in secondary:
        index.create(conn)
    _set_marker(conn, tables, STOCKS_COUNTED, today)


async def refresh_all(session: AsyncSession, tables: ProjectionTables, *, today: date, regency: str) -> None:
    """Recompute every cell and every QoL change from the projection tables (the rebuild)."""
    await session.run_sync(refresh_all_sync, tables, today=today, regency=regency)


def _recount_flows(conn: Connection, tables: ProjectionTables, periods: set[str], regency: str) -> None:
    """Delete and count again the flows of ``periods``, a run of neighbouring periods at a time
    (each run reads the facts between its first and last day once)."""
    cells = tables.indicator_cells
    for first, last, run in _runs(periods):
        conn.execute(delete(cells).where(cells.c.period.in_(run), cells.c.indicator.in_(FLOWS)))
        params = {"first": first, "last": last, "regency": regency}
        for family in sql.flow_families(tables):
            sql.insert_family(conn, tables, family, params, run)


def _runs(periods: set[str]) -> list[tuple[date, date, list[str]]]:
    """``periods`` grouped into runs whose days overlap or follow each other."""
    runs: list[tuple[date, date, list[str]]] = []
    for start, end, period in sorted((first_day(p), last_day(p), p) for p in periods):
        if runs and start <= runs[-1][1] + timedelta(days=1):
            first, last, run = runs[-1]
            runs[-1] = (first, max(last, end), [*run, period])
        else:
            runs.append((start, end, [period]))
    return runs


def _recount_stocks(
    conn: Connection,
    tables: ProjectionTables,
    periods: Sequence[str],
    today: date,
    regency: str,
    *,
    empty: bool = False,
) -> None:
    """Delete and count again the stocks of ``periods`` (``empty``: there are none to delete)."""
    cells = tables.indicator_cells
    for chunk in _chunks(periods, 400):
        if not empty:
            conn.execute(delete(cells).where(cells.c.period.in_(chunk), cells.c.indicator.in_(STOCKS)))
        if len(chunk) > _ONE_BY_ONE:
            counted = [(period, as_of(period, today)) for period in chunk]
            for family in stock_sql.stock_families_over(tables, counted):
                sql.insert_family(conn, tables, family, {"regency": regency})
            continue
        for period in chunk:
            params = {"as_of": as_of(period, today), "period": period, "regency": regency}
            for family in stock_sql.stock_families(tables):
                sql.insert_family(conn, tables, family, params)


def _marker(conn: Connection, tables: ProjectionTables, name: str) -> date | None:
    p = tables.position
    when = conn.scalar(select(p.c.event_time).where(p.c.consumer == name))
    return when.date() if isinstance(when, datetime) else None


def _markers(conn: Connection, tables: ProjectionTables, *names: str) -> dict[str, date]:
    """The days of the markers ``names`` that are set (one query for all)."""
    p = tables.position
    rows = conn.execute(select(p.c.consumer, p.c.event_time).where(p.c.consumer.in_(names)))
    return {name: when.date() for name, when in rows if isinstance(when, datetime)}


def _set_marker(conn: Connection, tables: ProjectionTables, name: str, day: date) -> None:
    row = {
        "consumer": name,
        "stream_seq": 0,
        "event_id": None,
        "event_time": datetime.combine(day, time(), tzinfo=UTC),
        "applied_at": datetime.now(UTC),
    }
    conn.execute(_marker_upsert(tables.position, conn.dialect.name), row)


@cache
def _marker_upsert(p: Table, dialect: str) -> Any:
    """``position`` upserted with a marker's day (built once: a batch sets one)."""
    upsert = insert_for(p, dialect)
    return upsert.on_conflict_do_update(
        index_elements=[p.c.consumer],
        set_={"event_time": upsert.excluded.event_time, "applied_at": upsert.excluded.applied_at},
    )


def _clear_marker(conn: Connection, tables: ProjectionTables, name: str) -> None:
    conn.execute(delete(tables.position).where(tables.position.c.consumer == name))


def _fact_span(conn: Connection, tables: ProjectionTables) -> tuple[date, date] | None:
    """The first and last domain dates of the projection, or None when it is empty."""
    t = tables
    columns = [
        t.units.c.established_on,
        t.outreach_activities.c.held_on,
        t.clients.c.registered_on,
        t.screenings.c.screened_on,
        t.enrolments.c.enrolled_on,
        t.sessions.c.held_on,
        t.qol_assessments.c.assessed_on,
        t.discharges.c.on,
        t.follow_ups.c.on,
        t.referrals.c.referred_on,
        t.referrals.c.accepted_on,
        t.referral_answers.c.on,
        t.referrals.c.closed_on,
    ]
    bounds = union_all(
        *[select(func.min(c).label("first"), func.max(c).label("last")) for c in columns]
    ).subquery()
    first, last = conn.execute(select(func.min(bounds.c.first), func.max(bounds.c.last))).one()
    if first is None:
        return None
    return _as_date(first), _as_date(last)


def _as_date(value: Any) -> date:
    # A MIN over a UNION loses the column's type on SQLite: it comes back as text.
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _exit_periods(conn: Connection, tables: ProjectionTables, enrolments: Sequence[UUID]) -> set[str]:
    """The months and weeks of the exit assessments of ``enrolments`` (a late baseline changes
    whether their exits count as improved)."""
    q = tables.qol_assessments
    periods: set[str] = set()
    for chunk in _chunks(enrolments, _CHUNK):
        query = (
            select(q.c.assessed_on).where(q.c.enrollment_id.in_(chunk), q.c.timepoint == "exit").distinct()
        )
        for day in conn.scalars(query):
            periods.update((month_of(day), week_of(day)))
    return periods


def _clients_of(conn: Connection, tables: ProjectionTables, enrolments: Sequence[UUID]) -> set[UUID]:
    q = tables.qol_assessments
    clients: set[UUID] = set()
    for chunk in _chunks(enrolments, _CHUNK):
        clients.update(conn.scalars(select(q.c.client_id).where(q.c.enrollment_id.in_(chunk)).distinct()))
    return clients


def _clients_assessed_since(conn: Connection, tables: ProjectionTables, day: date) -> set[UUID]:
    q = tables.qol_assessments
    return set(conn.scalars(select(q.c.client_id).where(q.c.assessed_on >= day).distinct()))


def _refresh_qol_changes(conn: Connection, tables: ProjectionTables, clients: Sequence[UUID] | None) -> None:
    """One row per client: their latest exit assessment that has a baseline (the first of the
    same enrolment), against that baseline. ``None``: every client (the table is empty)."""
    for chunk in [None] if clients is None else _chunks(clients, _CHUNK):
        if chunk is not None:
            conn.execute(delete(tables.qol_changes).where(tables.qol_changes.c.client_id.in_(chunk)))
        conn.execute(_qol_changes_insert(tables, chunk))


def _qol_changes_insert(tables: ProjectionTables, clients: Sequence[UUID] | None) -> Any:
    q, c = tables.qol_assessments, tables.clients
    baseline_id = sql.baseline_of(tables, q.c.enrollment_id)
    exits = select(
        q,
        baseline_id.label("baseline_id"),
        func.row_number()
        .over(partition_by=q.c.client_id, order_by=[q.c.assessed_on.desc(), q.c.assessment_id.desc()])
        .label("rank"),
    ).where(q.c.timepoint == "exit", baseline_id.is_not(None))
    if clients is not None:
        exits = exits.where(q.c.client_id.in_(clients))
    x = exits.subquery("latest_exit")
    b = tables.qol_assessments.alias("baseline")
    columns = {
        "client_id": x.c.client_id,
        "enrollment_id": x.c.enrollment_id,
        "unit_id": c.c.unit_id,
        **{f"baseline_{d}": b.c[d] for d in WHOQOL_DOMAINS},
        **{f"exit_{d}": x.c[d] for d in WHOQOL_DOMAINS},
        "exit_on": x.c.assessed_on,
    }
    query = (
        select(*columns.values())
        .select_from(x.join(b, b.c.assessment_id == x.c.baseline_id).join(c, c.c.client_id == x.c.client_id))
        .where(x.c.rank == 1)
    )
    return insert(tables.qol_changes).from_select(list(columns), query)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
