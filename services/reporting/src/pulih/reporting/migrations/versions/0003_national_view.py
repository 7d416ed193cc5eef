"""national view: every regency's latest aggregate per month, and its cells

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:00:00.000000

The tables of the reporting service in national mode (``PULIH_REPORTING_MODE=national``):
``national_aggregates`` (the highest revision of each regency's aggregate of each month, as the
hub received it), and its figures one row per indicator (``national_cells``, null where the
regency suppressed the count) and per phase (``national_phase_units``), and the sums of the
provinces and the nation (``national_totals``, ``national_phase_totals``). A regency's store
has them too, empty.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "national_aggregates",
        sa.Column("regency", sa.String(length=4), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("generated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("indicators", sa.JSON(), nullable=False),
        sa.Column("units_by_phase", sa.JSON(), nullable=False),
        sa.Column("suppressed_below", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stream_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("regency", "period", name=op.f("pk_national_aggregates")),
    )
    with op.batch_alter_table("national_aggregates", schema=None) as batch_op:
        batch_op.create_index("ix_national_aggregates_period", ["period"], unique=False)

    op.create_table(
        "national_cells",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("indicator", sa.String(length=40), nullable=False),
        sa.Column("regency", sa.String(length=4), nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("period", "indicator", "regency", name=op.f("pk_national_cells")),
    )
    with op.batch_alter_table("national_cells", schema=None) as batch_op:
        batch_op.create_index("ix_national_cells_province", ["province", "period"], unique=False)

    op.create_table(
        "national_phase_units",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("phase", sa.String(length=20), nullable=False),
        sa.Column("regency", sa.String(length=4), nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("period", "phase", "regency", name=op.f("pk_national_phase_units")),
    )
    op.create_table(
        "national_totals",
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("org_unit", sa.String(length=4), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("indicator", sa.String(length=40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("hidden", sa.Integer(), nullable=False),
        sa.Column("reporting", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("level", "org_unit", "period", "indicator", name=op.f("pk_national_totals")),
    )
    op.create_table(
        "national_phase_totals",
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("org_unit", sa.String(length=4), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("phase", sa.String(length=20), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "level", "org_unit", "period", "phase", name=op.f("pk_national_phase_totals")
        ),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("national_phase_totals")
    op.drop_table("national_totals")
    op.drop_table("national_phase_units")
    with op.batch_alter_table("national_cells", schema=None) as batch_op:
        batch_op.drop_index("ix_national_cells_province")
    op.drop_table("national_cells")
    with op.batch_alter_table("national_aggregates", schema=None) as batch_op:
        batch_op.drop_index("ix_national_aggregates_period")
    op.drop_table("national_aggregates")
