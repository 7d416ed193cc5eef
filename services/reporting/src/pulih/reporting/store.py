"""Reporting's tables: the projections of the regency's events (SQLAlchemy Core).

The projection tables are built by :func:`projection_tables` so that a rebuild can fill a second
set (``rebuild_`` prefix) while the live one keeps answering, then swap them in. ``LIVE`` lives
on :data:`metadata`, which the migrations describe; ``REBUILD`` lives on its own
:data:`rebuild_metadata`, which no migration knows: the rebuild creates and drops those tables
itself (``rebuild_metadata.create_all(conn, tables=REBUILD.all)``).

``published_aggregates`` is outside the prefixed set: what left the regency is never rebuilt.

Columns hold only ids, codes, dates and numbers: no identity reaches reporting. Dates are the
events' domain dates (the regency's local days), never arrival times.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.schema import SchemaItem

from pulih.kit.database import NAMING_CONVENTION

metadata = MetaData(naming_convention=NAMING_CONVENTION)
"""The live projection tables and ``published_aggregates``: what the migrations create."""

rebuild_metadata = MetaData(naming_convention=NAMING_CONVENTION)
"""The ``rebuild_`` set, created and dropped by the rebuild alone (no migration knows it)."""


class Base(DeclarativeBase):
    """Gives the migrations (``env.py``) reporting's metadata; reporting has no ORM classes."""

    metadata = metadata


WHOQOL_DOMAINS = ("physical", "psychological", "social", "environment")
"""The four WHOQOL-BREF domains, in the order means are summed."""


@dataclass(frozen=True)
class ProjectionTables:
    """One complete set of projection tables (live, or a rebuild's ``rebuild_`` set)."""

    prefix: str
    units: Table
    agents: Table
    outreach_activities: Table
    clients: Table
    screenings: Table
    enrolments: Table
    discharges: Table
    sessions: Table
    qol_assessments: Table
    phase_completions: Table
    follow_ups: Table
    referrals: Table
    referral_answers: Table
    indicator_cells: Table
    unit_phases: Table
    qol_changes: Table
    applied_events: Table
    position: Table

    @property
    def all(self) -> tuple[Table, ...]:
        """Every table of the set, in creation order."""
        return tuple(getattr(self, f.name) for f in fields(self) if f.name != "prefix")


def projection_tables(prefix: str = "", meta: MetaData | None = None) -> ProjectionTables:
    """The projection tables named ``prefix + name`` on ``meta`` (by default: :data:`metadata`
    for the live set, :data:`rebuild_metadata` for any prefix)."""
    if meta is None:
        meta = metadata if prefix == "" else rebuild_metadata

    def table(name: str, *columns: SchemaItem) -> Table:
        return Table(prefix + name, meta, *columns)

    p = prefix
    qol_scores = [Column(d, Float, nullable=False) for d in WHOQOL_DOMAINS]
    return ProjectionTables(
        prefix=prefix,
        units=table(
            "units",
            Column("unit_id", Uuid, primary_key=True),
            Column("name", String(200), nullable=False),
            Column("village_code", String(10), nullable=False),
            Column("district_code", String(6), nullable=False),
            Column("established_on", Date, nullable=False),
        ),
        agents=table(
            "agents",
            Column("agent_id", Uuid, primary_key=True),
            Column("unit_id", Uuid, nullable=False, index=True),
            Column("trained_on", Date, nullable=False),
            Column("deactivated_on", Date, nullable=True),
        ),
        outreach_activities=table(
            "outreach_activities",
            Column("activity_id", Uuid, primary_key=True),
            Column("unit_id", Uuid, nullable=False),
            Column("kind", String(20), nullable=False),
            Column("held_on", Date, nullable=False, index=True),
            Column("people_reached", Integer, nullable=False),
        ),
        clients=table(
            "clients",
            Column("client_id", Uuid, primary_key=True),
            Column("unit_id", Uuid, nullable=False),
            Column("registered_on", Date, nullable=False, index=True),
            Column("sex", String(2), nullable=False),
            Column("age_band", String(10), nullable=False),
            Column("came_through", String(20), nullable=False),
        ),
        screenings=table(
            "screenings",
            Column("screening_id", Uuid, primary_key=True),
            Column("client_id", Uuid, nullable=False),
            Column("unit_id", Uuid, nullable=False),
            Column("screened_on", Date, nullable=False, index=True),
            Column("overall_risk", String(10), nullable=False),
            Column("stream_seq", BigInteger, nullable=False),
        ),
        enrolments=table(
            "enrolments",
            Column("enrollment_id", Uuid, primary_key=True),
            Column("client_id", Uuid, nullable=False),
            Column("unit_id", Uuid, nullable=False),
            Column("enrolled_on", Date, nullable=False, index=True),
            Column("planned_end_on", Date, nullable=False),
            Column("discharged_on", Date, nullable=True),
            Column("discharge_reason", String(20), nullable=True),
        ),
        discharges=table(
            "discharges",
            Column("enrollment_id", Uuid, primary_key=True),
            Column("on", Date, primary_key=True),
            Column("reason", String(20), primary_key=True),
            Column("client_id", Uuid, nullable=False),
            Column("reversed", Boolean, nullable=False),
            Index(f"ix_{p}discharges_on", "on"),
        ),
        sessions=table(
            "sessions",
            Column("session_id", Uuid, primary_key=True),
            Column("enrollment_id", Uuid, nullable=False),
            Column("client_id", Uuid, nullable=False),
            Column("unit_id", Uuid, nullable=False),
            Column("held_on", Date, nullable=False, index=True),
            Column("kind", String(20), nullable=False),
            Column("attended", Boolean, nullable=False),
            Column("minutes", Integer, nullable=False),
        ),
        qol_assessments=table(
            "qol_assessments",
            Column("assessment_id", Uuid, primary_key=True),
            Column("enrollment_id", Uuid, nullable=False, index=True),
            Column("client_id", Uuid, nullable=False, index=True),
            Column("timepoint", String(10), nullable=False),
            Column("assessed_on", Date, nullable=False, index=True),
            *qol_scores,
        ),
        phase_completions=table(
            "phase_completions",
            Column("enrollment_id", Uuid, primary_key=True),
            Column("phase", String(20), primary_key=True),
            Column("client_id", Uuid, nullable=False),
            Column("completed_on", Date, nullable=False),
            Column("next_phase", String(20), nullable=True),
        ),
        follow_ups=table(
            "follow_ups",
            Column("follow_up_id", Uuid, primary_key=True),
            Column("client_id", Uuid, nullable=False),
            Column("on", Date, nullable=False),
            Column("status", String(20), nullable=False),
            Index(f"ix_{p}follow_ups_on", "on"),
        ),
        # Every column but the id may be null: each event of a referral's life fills its own.
        referrals=table(
            "referrals",
            Column("referral_id", Uuid, primary_key=True),
            Column("client_id", Uuid, nullable=True),
            Column("unit_id", Uuid, nullable=True, index=True),
            Column("clinic_id", String(64), nullable=True),
            Column("service", String(20), nullable=True),
            Column("reason", String(20), nullable=True),
            Column("urgency", String(10), nullable=True),
            Column("referred_on", Date, nullable=True, index=True),
            Column("respond_by", Date, nullable=True),
            Column("accepted_on", Date, nullable=True, index=True),
            Column("declined_on", Date, nullable=True),
            Column("attended_on", Date, nullable=True),
            Column("escalated_on", Date, nullable=True),
            Column("cancelled_on", Date, nullable=True),
            Column("closed_on", Date, nullable=True, index=True),
            Column("outcome", String(20), nullable=True),
            Column("back_referral", Boolean, nullable=True),
        ),
        # Every clinic answer, so that one the referral service refused (``AnswerRejected``) can
        # be taken back: a referral's accepted_on, declined_on and attended_on are its earliest
        # answers of each kind that stand (``stream_seq``: an answer's latest copy; ``rejected``:
        # refused after that copy), and each acceptance that stands counts on its own day.
        referral_answers=table(
            "referral_answers",
            Column("answer_id", Uuid, primary_key=True),
            Column("referral_id", Uuid, nullable=False, index=True),
            Column("kind", String(10), nullable=False),
            Column("on", Date, nullable=False),
            Column("stream_seq", BigInteger, nullable=False),
            Column("rejected", Boolean, nullable=False),
        ),
        indicator_cells=table(
            "indicator_cells",
            Column("level", String(10), primary_key=True),
            Column("org_id", String(36), primary_key=True),
            Column("period", String(8), primary_key=True),
            Column("indicator", String(40), primary_key=True),
            Column("value", BigInteger, nullable=False),
            Index(f"ix_{p}indicator_cells_period", "period", "level"),
        ),
        unit_phases=table(
            "unit_phases",
            Column("unit_id", Uuid, primary_key=True),
            Column("period", String(7), primary_key=True),
            Column("phase", String(20), nullable=False),
            Column("previous_phase", String(20), nullable=True),
            Column("criteria", JSON, nullable=False),
        ),
        qol_changes=table(
            "qol_changes",
            Column("client_id", Uuid, primary_key=True),
            Column("enrollment_id", Uuid, nullable=False),
            Column("unit_id", Uuid, nullable=False, index=True),
            *[Column(f"baseline_{d}", Float, nullable=False) for d in WHOQOL_DOMAINS],
            *[Column(f"exit_{d}", Float, nullable=False) for d in WHOQOL_DOMAINS],
            Column("exit_on", Date, nullable=False),
        ),
        applied_events=table(
            "applied_events",
            Column("event_id", Uuid, primary_key=True),
            Column("stream_seq", BigInteger, nullable=False),
        ),
        position=table(
            "position",
            Column("consumer", String(120), primary_key=True),
            Column("stream_seq", BigInteger, nullable=False),
            Column("event_id", Uuid, nullable=True),
            Column("event_time", DateTime(timezone=True), nullable=True),
            Column("applied_at", DateTime(timezone=True), nullable=False),
        ),
    )


LIVE = projection_tables("")
"""The projection the API reads and the live consumer writes."""

REBUILD = projection_tables("rebuild_")
"""The set a rebuild fills before swapping it in."""

published_aggregates = Table(
    "published_aggregates",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("generated_at", DateTime(timezone=True), nullable=False),
    Column("indicators", JSON, nullable=False),
    Column("units_by_phase", JSON, nullable=False),
    Column("suppressed_below", Integer, nullable=False),
    Column("true_digest", String(64), nullable=False),
)
"""Every ``AggregateReported`` this regency published (never rebuilt: it is what left)."""
