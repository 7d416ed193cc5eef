"""Apply a batch of the regency's events to the projection tables, fast.

One batch is one transaction (the caller's). The events are folded in Python into rows per table
and written with one ``executemany`` per table, never one query per event: the rebuild must
replay a year of a busy regency in minutes. Writes go in an order that makes the result the same
whatever the batch boundaries:

1. rows that only ever appear (units, clients, sessions…): ``INSERT … ON CONFLICT DO NOTHING``;
2. referrals, whose life is spread over several events: each event fills its own columns, folded
   per referral inside the batch and upserted with ``COALESCE(new, old)``;
3. changes to rows an earlier event created (an agent deactivated, a dropout reversed);
4. each enrolment whose discharges changed takes its latest discharge not reversed, recomputed
   from ``discharges`` (so a discharge and its reversal come out right in any batch split);
5. the clinics' answers (``referral_answers``, an answer's latest copy winning), the refusals
   (``AnswerRejected`` refuses the copies before it), and each referral whose answers changed
   takes, for each kind, its earliest answer that stands; the days it had and has now are
   touched, and so is the day of each answer refused (``referrals_accepted`` counts every
   acceptance that stands on its own day, as EVENTS.md counts ``ReferralAccepted``);
6. the inbox (``applied_events``: an id that arrives twice counts once) and ``position``.

The one exception to "once": a clinic answer arriving again under a *later* stream sequence is
the clinic publishing it again (after a refusal as early, say), and only moves its answer row
to that copy. A redelivery keeps its sequence and changes nothing.

Periods come from the events' domain dates; :class:`Touched` tells the indicators which.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Table, and_, bindparam, func, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from pulih.kit.database import insert_for
from pulih.reporting.domain.periods import month_of, week_of
from pulih.reporting.event_rows import (
    ANSWER_COLUMNS,
    CLINIC_ANSWERS,
    FOLDS,
    REFERRAL_COLUMNS,
    Delivered,
    Rows,
)
from pulih.reporting.store import ProjectionTables

__all__ = [
    "CONSUMER",
    "Delivered",
    "Touched",
    "apply_batch",
    "apply_batch_sync",
    "dialect_insert",
    "insert_for",
    "position",
]

_ANSWERED = frozenset(ANSWER_COLUMNS.values())

CONSUMER = "stream"
"""The ``position`` row of the projection of the regency stream."""

_CHUNK = 5000
"""Ids per ``IN (…)`` list: well under SQLite's and asyncpg's limits on bound parameters."""


@dataclass(frozen=True)
class Touched:
    """What a batch changed, for the indicators to recompute: the periods of every domain date
    it carried, the earliest of those dates (stocks and phases run from there to today), and the
    enrolments whose quality-of-life assessments changed."""

    months: frozenset[str] = frozenset()
    weeks: frozenset[str] = frozenset()
    earliest: date | None = None
    qol_enrolments: frozenset[UUID] = frozenset()

    @classmethod
    def of(cls, dates: Iterable[date], qol_enrolments: Iterable[UUID] = ()) -> Touched:
        """The periods of ``dates``."""
        days = set(dates)
        return cls(
            months=frozenset(month_of(d) for d in days),
            weeks=frozenset(week_of(d) for d in days),
            earliest=min(days, default=None),
            qol_enrolments=frozenset(qol_enrolments),
        )

    @property
    def periods(self) -> frozenset[str]:
        """The touched months and weeks together."""
        return self.months | self.weeks

    def __or__(self, other: Touched) -> Touched:
        earliest = min((d for d in (self.earliest, other.earliest) if d is not None), default=None)
        return Touched(
            self.months | other.months,
            self.weeks | other.weeks,
            earliest,
            self.qol_enrolments | other.qol_enrolments,
        )


def dialect_insert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT, which knows ``ON CONFLICT`` (SQLite and PostgreSQL alike)."""
    return insert_for(table, conn.dialect.name)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _new_events(
    conn: Connection, tables: ProjectionTables, events: Sequence[Delivered]
) -> tuple[list[Delivered], list[Delivered]]:
    """The events to fold, in stream order: those not applied before, once each, and clinic
    answers published again (a later stream sequence than the copy applied); and of those,
    the ones the inbox has yet to record."""
    applied = tables.applied_events
    ids = list({d.event.id for d in events})
    seen: dict[UUID, int] = {}
    for chunk in _chunks(ids):
        query = select(applied.c.event_id, applied.c.stream_seq).where(applied.c.event_id.in_(chunk))
        seen.update((event_id, seq) for event_id, seq in conn.execute(query))
    folded: list[Delivered] = []
    fresh: list[Delivered] = []
    for delivered in events:
        seq = seen.get(delivered.event.id)
        if seq is None:
            fresh.append(delivered)
        elif seq >= delivered.stream_seq or not isinstance(delivered.event.data, CLINIC_ANSWERS):
            continue
        seen[delivered.event.id] = delivered.stream_seq
        folded.append(delivered)
    return folded, fresh


def apply_batch_sync(
    session: Session | Connection,
    tables: ProjectionTables,
    events: Sequence[Delivered],
    *,
    timezone: str,
    consumer: str = CONSUMER,
) -> Touched:
    """:func:`apply_batch` on a synchronous session or connection (the rebuild's, or inside
    ``AsyncSession.run_sync``)."""
    conn = session.connection() if isinstance(session, Session) else session
    folded, fresh = _new_events(conn, tables, events)
    if events:
        # repeats move the position too: the projection has seen the stream up to there (a stream
        # that ends with a redelivered event would otherwise show a lag forever)
        _advance(conn, tables, max(events, key=lambda d: d.stream_seq), consumer)
    if not folded:
        return Touched()
    rows = Rows(ZoneInfo(timezone))
    for delivered in folded:
        fold = FOLDS.get(type(delivered.event.data))
        if fold is not None:
            fold(rows, delivered.event.data, delivered)
    _write(conn, tables, rows)
    if fresh:
        conn.execute(
            insert(tables.applied_events),
            [{"event_id": d.event.id, "stream_seq": d.stream_seq} for d in fresh],
        )
    return Touched.of(rows.dates, rows.qol_enrolments)


async def apply_batch(
    session: AsyncSession,
    tables: ProjectionTables,
    events: Sequence[Delivered],
    *,
    timezone: str,
    consumer: str = CONSUMER,
) -> Touched:
    """Apply ``events`` (in stream order) to ``tables`` in the caller's transaction.

    Skips ids already in ``applied_events`` (and repeats inside the batch), records the new ones
    and the ``position`` of ``consumer``. ``timezone`` is the regency's, for the day of an
    assessment that does not say it. Returns what changed, for :mod:`pulih.reporting.indicators`.
    """
    return await session.run_sync(apply_batch_sync, tables, events, timezone=timezone, consumer=consumer)


def _write(conn: Connection, tables: ProjectionTables, rows: Rows) -> None:
    for name, batch in rows.inserts.items():
        conn.execute(dialect_insert(conn, getattr(tables, name)).on_conflict_do_nothing(), batch)
    if rows.referrals:
        r = tables.referrals
        upsert = dialect_insert(conn, r)
        upsert = upsert.on_conflict_do_update(
            index_elements=[r.c.referral_id],
            set_={
                name: func.coalesce(upsert.excluded[name], r.c[name])
                for name in REFERRAL_COLUMNS
                if name not in _ANSWERED  # derived from the answers below
            },
        )
        conn.execute(upsert, list(rows.referrals.values()))
    if rows.deactivations:
        a = tables.agents
        conn.execute(
            update(a).where(a.c.agent_id == bindparam("b_agent_id")).values(deactivated_on=bindparam("b_on")),
            rows.deactivations,
        )
    if rows.reversals:
        d = tables.discharges
        conn.execute(
            update(d)
            .where(
                d.c.enrollment_id == bindparam("b_enrollment_id"),
                d.c.on == bindparam("b_on"),
                d.c.reason == "dropped_out",
            )
            .values(reversed=True),
            rows.reversals,
        )
    if rows.discharged:
        _resync_discharges(conn, tables, sorted(rows.discharged))
    if rows.answers:
        a = tables.referral_answers
        upsert = dialect_insert(conn, a)
        conn.execute(
            upsert.on_conflict_do_update(
                index_elements=[a.c.answer_id],
                set_={"stream_seq": upsert.excluded.stream_seq, "rejected": False},
                where=upsert.excluded.stream_seq > a.c.stream_seq,
            ),
            list(rows.answers.values()),
        )
    if rows.rejections:
        a = tables.referral_answers
        conn.execute(
            update(a)
            .where(a.c.answer_id == bindparam("b_answer_id"), a.c.stream_seq < bindparam("b_seq"))
            .values(rejected=True),
            rows.rejections,
        )
        # each answer counts on its own day (referrals_accepted): a refused one recounts that day
        refused = list({row["b_answer_id"] for row in rows.rejections})
        for chunk in _chunks(refused):
            rows.dates.update(conn.scalars(select(a.c.on).where(a.c.answer_id.in_(chunk))))
    if rows.answered:
        rows.dates.update(_resync_answers(conn, tables, sorted(rows.answered)))


def _resync_discharges(conn: Connection, tables: ProjectionTables, enrolment_ids: Sequence[UUID]) -> None:
    """Each enrolment takes its latest discharge that was not reversed (or none)."""
    e, d = tables.enrolments, tables.discharges
    latest = (
        select(d.c.on, d.c.reason)
        .where(and_(d.c.enrollment_id == e.c.enrollment_id, d.c.reversed.is_not(true())))
        .order_by(d.c.on.desc(), d.c.reason.desc())
        .limit(1)
    )
    for chunk in _chunks(enrolment_ids):
        conn.execute(
            update(e)
            .where(e.c.enrollment_id.in_(chunk))
            .values(
                discharged_on=latest.with_only_columns(d.c.on).scalar_subquery(),
                discharge_reason=latest.with_only_columns(d.c.reason).scalar_subquery(),
            )
        )


def _resync_answers(conn: Connection, tables: ProjectionTables, referral_ids: Sequence[UUID]) -> set[date]:
    """Each referral takes, for each kind of answer, its earliest that stands (or none): a
    referral is answered from the first day an answer that stands says so, whatever a clinic
    sends later (a second acceptance, until the referral service refuses it, does not make the
    referral unanswered before its own day). Returns the days that changed, the old and the new
    (their periods count differently now)."""
    r, a = tables.referrals, tables.referral_answers
    columns = [r.c[name] for name in ANSWER_COLUMNS.values()]

    def standing(kind: str) -> Any:
        return (
            select(a.c.on)
            .where(a.c.referral_id == r.c.referral_id, a.c.kind == kind, a.c.rejected.is_not(true()))
            .order_by(a.c.on, a.c.stream_seq)
            .limit(1)
            .scalar_subquery()
        )

    changed: set[date] = set()
    for chunk in _chunks(referral_ids):
        read = select(r.c.referral_id, *columns).where(r.c.referral_id.in_(chunk))
        before = {row[0]: row[1:] for row in conn.execute(read)}
        conn.execute(
            update(r)
            .where(r.c.referral_id.in_(chunk))
            .values({name: standing(kind) for kind, name in ANSWER_COLUMNS.items()})
        )
        for row in conn.execute(read):
            for old, new in zip(before.get(row[0], (None,) * len(columns)), row[1:], strict=True):
                if old != new:
                    changed.update(day for day in (old, new) if day is not None)
    return changed


def _advance(conn: Connection, tables: ProjectionTables, last: Delivered, consumer: str) -> None:
    """Move ``consumer``'s position to ``last`` (never back: a redelivered old event keeps it)."""
    row = {
        "consumer": consumer,
        "stream_seq": last.stream_seq,
        "event_id": last.event.id,
        "event_time": last.event.time,
        "applied_at": datetime.now(UTC),
    }
    conn.execute(_advance_statement(tables.position, conn.dialect.name), row)


@cache
def _advance_statement(p: Table, dialect: str) -> Any:
    """The upsert of :func:`_advance`, built once per table (every batch runs it)."""
    upsert = insert_for(p, dialect)
    return upsert.on_conflict_do_update(
        index_elements=[p.c.consumer],
        set_={
            "stream_seq": upsert.excluded.stream_seq,
            "event_id": upsert.excluded.event_id,
            "event_time": upsert.excluded.event_time,
            "applied_at": upsert.excluded.applied_at,
        },
        where=upsert.excluded.stream_seq >= p.c.stream_seq,
    )


async def position(session: AsyncSession, tables: ProjectionTables, consumer: str = CONSUMER) -> int:
    """The stream sequence ``consumer`` has applied up to (0 before the first event)."""
    p = tables.position
    seq = await session.scalar(select(p.c.stream_seq).where(p.c.consumer == consumer))
    return int(seq or 0)
