"""possible duplicates, known referrals, audit reason; the NIK lookup no longer unique

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 08:00:00.000000

- ``client_identities.nik_lookup``: a plain index instead of a unique constraint, so a NIK
  registered twice is accepted and flagged instead of answering 409 (issue 9, item 2);
- ``possible_duplicates``: those flags and how a facilitator resolved them;
- ``known_referrals``: outreach's read model of referral's events (item 1);
- ``identity_audit``: the reason of a refusal, and ``client_id`` nullable for a path that named
  no client id at all (every attempt is audited).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("client_identities", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_client_identities_nik_lookup"), type_="unique")
        batch_op.create_index(batch_op.f("ix_client_identities_nik_lookup"), ["nik_lookup"], unique=False)

    op.create_table(
        "possible_duplicates",
        sa.Column("duplicate_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("existing_client_id", sa.Uuid(), nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("flagged_by", sa.String(length=120), nullable=False),
        sa.Column("flagged_by_role", sa.String(length=20), nullable=False),
        sa.Column("resolution", sa.String(length=20), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.client_id"], name=op.f("fk_possible_duplicates_client_id_clients")
        ),
        sa.ForeignKeyConstraint(
            ["existing_client_id"],
            ["clients.client_id"],
            name=op.f("fk_possible_duplicates_existing_client_id_clients"),
        ),
        sa.PrimaryKeyConstraint("duplicate_id", name=op.f("pk_possible_duplicates")),
    )
    with op.batch_alter_table("possible_duplicates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_possible_duplicates_client_id"), ["client_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_possible_duplicates_existing_client_id"), ["existing_client_id"], unique=False
        )

    op.create_table(
        "known_referrals",
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.String(length=64), nullable=False),
        sa.Column("referred_on", sa.Date(), nullable=False),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("referral_id", name=op.f("pk_known_referrals")),
    )
    with op.batch_alter_table("known_referrals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_known_referrals_client_id"), ["client_id"], unique=False)

    with op.batch_alter_table("identity_audit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.String(length=60), nullable=True))
        batch_op.alter_column("client_id", existing_type=sa.Uuid(), nullable=True)


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("DELETE FROM identity_audit WHERE client_id IS NULL")
    with op.batch_alter_table("identity_audit", schema=None) as batch_op:
        batch_op.alter_column("client_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.drop_column("reason")

    with op.batch_alter_table("known_referrals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_known_referrals_client_id"))
    op.drop_table("known_referrals")

    with op.batch_alter_table("possible_duplicates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_possible_duplicates_existing_client_id"))
        batch_op.drop_index(batch_op.f("ix_possible_duplicates_client_id"))
    op.drop_table("possible_duplicates")

    # A NIK registered twice cannot be unique again: all but one registration of it lose their
    # lookup (their identities stay sealed and readable).
    op.execute(
        "UPDATE client_identities SET nik_lookup = NULL WHERE EXISTS (SELECT 1 FROM client_identities"
        " AS other WHERE other.nik_lookup = client_identities.nik_lookup"
        " AND other.client_id < client_identities.client_id)"
    )
    with op.batch_alter_table("client_identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_client_identities_nik_lookup"))
        batch_op.create_unique_constraint(batch_op.f("uq_client_identities_nik_lookup"), ["nik_lookup"])
