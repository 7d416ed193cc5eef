"""The national view's tables: every regency's latest aggregate per month, and its cells.

``national_aggregates`` holds, per regency and month, the ``AggregateReported`` with the highest
``revision`` the hub has received (as it arrived). ``national_cells`` and ``national_phase_units``
are the same figures one row per indicator (or phase): a cell's ``value`` is null where the regency
suppressed it. ``national_totals`` and ``national_phase_totals`` hold the provinces' and the
nation's sums, recounted for the provinces and months each batch touched, so that the national
figures of 514 regencies are read, not added up, on every request. They
live on reporting's :data:`~pulih.reporting.store.metadata`, so the migrations (``0003``) create
them in every reporting store; only a national-mode service fills them.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, String, Table, Uuid

from pulih.reporting.store import metadata

national_aggregates = Table(
    "national_aggregates",
    metadata,
    Column("regency", String(4), primary_key=True),
    Column("period", String(7), primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("generated_at", DateTime(timezone=True), nullable=False),
    Column("indicators", JSON, nullable=False),
    Column("units_by_phase", JSON, nullable=False),
    Column("suppressed_below", Integer, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("stream_seq", BigInteger, nullable=False),
    Index("ix_national_aggregates_period", "period"),
)
"""The latest revision of each regency's aggregate of each month (``stream_seq``: in NATIONAL)."""

national_cells = Table(
    "national_cells",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("indicator", String(40), primary_key=True),
    Column("regency", String(4), primary_key=True),
    Column("province", String(2), nullable=False),
    Column("value", BigInteger, nullable=True),
    Index("ix_national_cells_province", "province", "period"),
)
"""One indicator of one regency's latest aggregate of a month; ``value`` null: suppressed."""

national_phase_units = Table(
    "national_phase_units",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("phase", String(20), primary_key=True),
    Column("regency", String(4), primary_key=True),
    Column("province", String(2), nullable=False),
    Column("units", Integer, nullable=False),
)
"""How many of a regency's units were in a phase, by its latest aggregate of a month."""

national_totals = Table(
    "national_totals",
    metadata,
    Column("level", String(10), primary_key=True),
    Column("org_unit", String(4), primary_key=True),
    Column("period", String(7), primary_key=True),
    Column("indicator", String(40), primary_key=True),
    Column("value", BigInteger, nullable=False),
    Column("hidden", Integer, nullable=False),
    Column("reporting", Integer, nullable=False),
)
"""An indicator of a province or the nation in a month, added up from ``national_cells`` each
time a batch changes one of its regencies: ``value`` the published figures' sum, ``hidden``
how many were suppressed, ``reporting`` how many regencies it adds up."""

national_phase_totals = Table(
    "national_phase_totals",
    metadata,
    Column("level", String(10), primary_key=True),
    Column("org_unit", String(4), primary_key=True),
    Column("period", String(7), primary_key=True),
    Column("phase", String(20), primary_key=True),
    Column("units", Integer, nullable=False),
)
"""How many units of a province or the nation were in a phase in a month."""

NATIONAL_TABLES = (
    national_aggregates,
    national_cells,
    national_phase_units,
    national_totals,
    national_phase_totals,
)
"""The national view's tables."""
