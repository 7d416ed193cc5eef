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
5. the inbox (``applied_events``: an id that arrives twice counts once) and ``position``.

Periods come from the events' domain dates; :class:`Touched` tells the indicators which.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Table, and_, bindparam, func, insert, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from pulih.contracts import CloudEvent
from pulih.contracts.events.clinic import (
    ClientAttended,
    ReferralAccepted,
    ReferralDeclined,
    TreatmentCompleted,
)
from pulih.contracts.events.outreach import (
    AgentDeactivated,
    AgentRegistered,
    ClientRegistered,
    ClientScreened,
    OutreachActivityRecorded,
    UnitEstablished,
)
from pulih.contracts.events.referral import (
    ReferralCancelled,
    ReferralClosed,
    ReferralEscalated,
    ReferredToClinic,
)
from pulih.contracts.events.rehab import (
    ClientDischarged,
    ClientEnrolled,
    DropoutReversed,
    FollowUpRecorded,
    PhaseCompleted,
    QualityOfLifeAssessed,
    SessionHeld,
)
from pulih.reporting.domain.periods import month_of, week_of
from pulih.reporting.store import ProjectionTables

CONSUMER = "stream"
"""The ``position`` row of the projection of the regency stream."""

_CHUNK = 5000
"""Ids per ``IN (…)`` list: well under SQLite's and asyncpg's limits on bound parameters."""


class Delivered(Protocol):
    """What the batch consumer hands over (``pulih.kit.batch_consumer.Received``)."""

    @property
    def event(self) -> CloudEvent[Any]: ...

    @property
    def stream_seq(self) -> int: ...


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


_REFERRAL_COLUMNS = (
    "client_id",
    "unit_id",
    "clinic_id",
    "service",
    "reason",
    "urgency",
    "referred_on",
    "respond_by",
    "accepted_on",
    "declined_on",
    "attended_on",
    "escalated_on",
    "cancelled_on",
    "closed_on",
    "outcome",
    "back_referral",
)


@dataclass
class _Rows:
    """The rows one batch writes, per table, in stream order."""

    timezone: ZoneInfo
    inserts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    referrals: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    deactivations: list[dict[str, Any]] = field(default_factory=list)
    reversals: list[dict[str, Any]] = field(default_factory=list)
    discharged: set[UUID] = field(default_factory=set)
    qol_enrolments: set[UUID] = field(default_factory=set)
    dates: set[date] = field(default_factory=set)

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.inserts.setdefault(table, []).append(row)

    def referral(self, referral_id: UUID, **values: Any) -> None:
        row = self.referrals.get(referral_id)
        if row is None:
            row = self.referrals[referral_id] = dict.fromkeys(_REFERRAL_COLUMNS)
            row["referral_id"] = referral_id
        row.update(values)


_Fold = Callable[[_Rows, Any, "Delivered"], None]


def _unit(rows: _Rows, e: UnitEstablished, _: Delivered) -> None:
    rows.add(
        "units",
        {
            "unit_id": e.unit_id,
            "name": e.name,
            "village_code": e.village_code,
            "district_code": e.village_code[:6],
            "established_on": e.established_on,
        },
    )
    rows.dates.add(e.established_on)


def _agent(rows: _Rows, e: AgentRegistered, _: Delivered) -> None:
    rows.add(
        "agents",
        {"agent_id": e.agent_id, "unit_id": e.unit_id, "trained_on": e.trained_on, "deactivated_on": None},
    )
    rows.dates.add(e.trained_on)


def _agent_gone(rows: _Rows, e: AgentDeactivated, _: Delivered) -> None:
    rows.deactivations.append({"b_agent_id": e.agent_id, "b_on": e.on})
    rows.dates.add(e.on)


def _outreach(rows: _Rows, e: OutreachActivityRecorded, _: Delivered) -> None:
    rows.add(
        "outreach_activities",
        {
            "activity_id": e.activity_id,
            "unit_id": e.unit_id,
            "kind": e.kind.value,
            "held_on": e.held_on,
            "people_reached": e.people_reached,
        },
    )
    rows.dates.add(e.held_on)


def _client(rows: _Rows, e: ClientRegistered, _: Delivered) -> None:
    rows.add(
        "clients",
        {
            "client_id": e.client_id,
            "unit_id": e.unit_id,
            "registered_on": e.registered_on,
            "sex": e.sex.value,
            "age_band": e.age_band.value,
            "came_through": e.came_through.value,
        },
    )
    rows.dates.add(e.registered_on)


def _screening(rows: _Rows, e: ClientScreened, d: Delivered) -> None:
    rows.add(
        "screenings",
        {
            "screening_id": e.screening_id,
            "client_id": e.client_id,
            "unit_id": e.unit_id,
            "screened_on": e.screened_on,
            "overall_risk": e.overall_risk.value,
            "stream_seq": d.stream_seq,
        },
    )
    rows.dates.add(e.screened_on)


def _enrolment(rows: _Rows, e: ClientEnrolled, _: Delivered) -> None:
    rows.add(
        "enrolments",
        {
            "enrollment_id": e.enrollment_id,
            "client_id": e.client_id,
            "unit_id": e.unit_id,
            "enrolled_on": e.enrolled_on,
            "planned_end_on": e.planned_end_on,
            "discharged_on": None,
            "discharge_reason": None,
        },
    )
    rows.dates.add(e.enrolled_on)


def _session(rows: _Rows, e: SessionHeld, _: Delivered) -> None:
    rows.add(
        "sessions",
        {
            "session_id": e.session_id,
            "enrollment_id": e.enrollment_id,
            "client_id": e.client_id,
            "unit_id": e.unit_id,
            "held_on": e.held_on,
            "kind": e.kind.value,
            "attended": e.attended,
            "minutes": e.minutes,
        },
    )
    rows.dates.add(e.held_on)


def _qol(rows: _Rows, e: QualityOfLifeAssessed, d: Delivered) -> None:
    # Contract v1.1 added assessed_on; an older event is dated by the regency's day of its time.
    assessed_on = e.assessed_on or d.event.time.astimezone(rows.timezone).date()
    rows.add(
        "qol_assessments",
        {
            "assessment_id": e.assessment_id,
            "enrollment_id": e.enrollment_id,
            "client_id": e.client_id,
            "timepoint": e.timepoint.value,
            "assessed_on": assessed_on,
            "physical": e.physical,
            "psychological": e.psychological,
            "social": e.social,
            "environment": e.environment,
        },
    )
    rows.qol_enrolments.add(e.enrollment_id)
    rows.dates.add(assessed_on)


def _phase(rows: _Rows, e: PhaseCompleted, _: Delivered) -> None:
    rows.add(
        "phase_completions",
        {
            "enrollment_id": e.enrollment_id,
            "phase": e.phase.value,
            "client_id": e.client_id,
            "completed_on": e.completed_on,
            "next_phase": e.next_phase.value if e.next_phase is not None else None,
        },
    )
    rows.dates.add(e.completed_on)


def _discharge(rows: _Rows, e: ClientDischarged, _: Delivered) -> None:
    rows.add(
        "discharges",
        {
            "enrollment_id": e.enrollment_id,
            "on": e.on,
            "reason": e.reason.value,
            "client_id": e.client_id,
            "reversed": False,
        },
    )
    rows.discharged.add(e.enrollment_id)
    rows.dates.add(e.on)


def _reversal(rows: _Rows, e: DropoutReversed, _: Delivered) -> None:
    rows.reversals.append({"b_enrollment_id": e.enrollment_id, "b_on": e.dropped_out_on})
    rows.discharged.add(e.enrollment_id)
    rows.dates.update((e.dropped_out_on, e.on))


def _follow_up(rows: _Rows, e: FollowUpRecorded, _: Delivered) -> None:
    rows.add(
        "follow_ups",
        {"follow_up_id": e.follow_up_id, "client_id": e.client_id, "on": e.on, "status": e.status.value},
    )
    rows.dates.add(e.on)


def _referred(rows: _Rows, e: ReferredToClinic, _: Delivered) -> None:
    rows.referral(
        e.referral_id,
        client_id=e.client_id,
        unit_id=e.unit_id,
        clinic_id=e.clinic_id,
        service=e.service.value,
        reason=e.reason.value,
        urgency=e.urgency.value,
        referred_on=e.referred_on,
        respond_by=e.respond_by,
    )
    rows.dates.update((e.referred_on, e.respond_by))


def _escalated(rows: _Rows, e: ReferralEscalated, _: Delivered) -> None:
    rows.referral(e.referral_id, escalated_on=e.on)
    rows.dates.add(e.on)


def _cancelled(rows: _Rows, e: ReferralCancelled, _: Delivered) -> None:
    rows.referral(e.referral_id, cancelled_on=e.on)
    rows.dates.add(e.on)


def _closed(rows: _Rows, e: ReferralClosed, _: Delivered) -> None:
    rows.referral(e.referral_id, closed_on=e.on, outcome=e.outcome.value, back_referral=e.back_referral)
    rows.dates.add(e.on)


def _accepted(rows: _Rows, e: ReferralAccepted, _: Delivered) -> None:
    rows.referral(e.referral_id, accepted_on=e.accepted_on)
    rows.dates.add(e.accepted_on)


def _declined(rows: _Rows, e: ReferralDeclined, _: Delivered) -> None:
    rows.referral(e.referral_id, declined_on=e.on)
    rows.dates.add(e.on)


def _attended(rows: _Rows, e: ClientAttended, _: Delivered) -> None:
    rows.referral(e.referral_id, attended_on=e.on)
    rows.dates.add(e.on)


def _treated(rows: _Rows, e: TreatmentCompleted, _: Delivered) -> None:
    # The referral service answers it with ReferralClosed, which carries what the indicators count.
    rows.dates.add(e.on)


FOLDS: dict[type[Any], _Fold] = {
    UnitEstablished: _unit,
    AgentRegistered: _agent,
    AgentDeactivated: _agent_gone,
    OutreachActivityRecorded: _outreach,
    ClientRegistered: _client,
    ClientScreened: _screening,
    ClientEnrolled: _enrolment,
    SessionHeld: _session,
    QualityOfLifeAssessed: _qol,
    PhaseCompleted: _phase,
    ClientDischarged: _discharge,
    DropoutReversed: _reversal,
    FollowUpRecorded: _follow_up,
    ReferredToClinic: _referred,
    ReferralEscalated: _escalated,
    ReferralCancelled: _cancelled,
    ReferralClosed: _closed,
    ReferralAccepted: _accepted,
    ReferralDeclined: _declined,
    ClientAttended: _attended,
    TreatmentCompleted: _treated,
}
"""The events reporting projects, each with what it adds to the batch's rows. Every other
event of the stream (consents, erasures, reporting's own aggregates…) is only tracked."""


def dialect_insert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT, which knows ``ON CONFLICT`` (SQLite and PostgreSQL alike)."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _new_events(conn: Connection, tables: ProjectionTables, events: Sequence[Delivered]) -> list[Delivered]:
    """The events not applied before, once each, in stream order."""
    applied = tables.applied_events
    ids = list({d.event.id for d in events})
    seen: set[UUID] = set()
    for chunk in _chunks(ids):
        seen.update(conn.scalars(select(applied.c.event_id).where(applied.c.event_id.in_(chunk))))
    fresh: list[Delivered] = []
    for delivered in events:
        if delivered.event.id not in seen:
            seen.add(delivered.event.id)
            fresh.append(delivered)
    return fresh


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
    fresh = _new_events(conn, tables, events)
    if not fresh:
        return Touched()
    rows = _Rows(ZoneInfo(timezone))
    for delivered in fresh:
        fold = FOLDS.get(type(delivered.event.data))
        if fold is not None:
            fold(rows, delivered.event.data, delivered)
    _write(conn, tables, rows)
    conn.execute(
        insert(tables.applied_events),
        [{"event_id": d.event.id, "stream_seq": d.stream_seq} for d in fresh],
    )
    _advance(conn, tables, max(fresh, key=lambda d: d.stream_seq), consumer)
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


def _write(conn: Connection, tables: ProjectionTables, rows: _Rows) -> None:
    for name, batch in rows.inserts.items():
        conn.execute(dialect_insert(conn, getattr(tables, name)).on_conflict_do_nothing(), batch)
    if rows.referrals:
        r = tables.referrals
        upsert = dialect_insert(conn, r)
        upsert = upsert.on_conflict_do_update(
            index_elements=[r.c.referral_id],
            set_={name: func.coalesce(upsert.excluded[name], r.c[name]) for name in _REFERRAL_COLUMNS},
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


def _advance(conn: Connection, tables: ProjectionTables, last: Delivered, consumer: str) -> None:
    """Move ``consumer``'s position to ``last`` (never back: a redelivered old event keeps it)."""
    p = tables.position
    upsert = dialect_insert(conn, p).values(
        consumer=consumer,
        stream_seq=last.stream_seq,
        event_id=last.event.id,
        event_time=last.event.time,
        applied_at=datetime.now(UTC),
    )
    conn.execute(
        upsert.on_conflict_do_update(
            index_elements=[p.c.consumer],
            set_={
                "stream_seq": upsert.excluded.stream_seq,
                "event_id": upsert.excluded.event_id,
                "event_time": upsert.excluded.event_time,
                "applied_at": upsert.excluded.applied_at,
            },
            where=upsert.excluded.stream_seq >= p.c.stream_seq,
        )
    )


async def position(session: AsyncSession, tables: ProjectionTables, consumer: str = CONSUMER) -> int:
    """The stream sequence ``consumer`` has applied up to (0 before the first event)."""
    p = tables.position
    seq = await session.scalar(select(p.c.stream_seq).where(p.c.consumer == consumer))
    return int(seq or 0)
