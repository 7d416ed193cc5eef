"""referral answers: each clinic answer, so that a refused one can be taken back

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 04:40:00.000000

A referral's ``accepted_on``, ``declined_on`` and ``attended_on`` are now derived from the
answers that stand. The answers a store already applied are carried over as one answer per
column set (``stream_seq`` 0, an id derived from the referral), so that the next answer to an
old referral does not lose the earlier ones; ``pulih reporting rebuild`` replaces them with the
real answers.
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS = (("accepted", "accepted_on"), ("declined", "declined_on"), ("attended", "attended_on"))


def upgrade() -> None:
    """Upgrade schema."""
    answers = op.create_table(
        "referral_answers",
        sa.Column("answer_id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("on", sa.Date(), nullable=False),
        sa.Column("stream_seq", sa.BigInteger(), nullable=False),
        sa.Column("rejected", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("answer_id", name=op.f("pk_referral_answers")),
    )
    with op.batch_alter_table("referral_answers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referral_answers_referral_id"), ["referral_id"], unique=False)
    assert answers is not None
    referrals = sa.table(
        "referrals",
        sa.column("referral_id", sa.Uuid()),
        *[sa.column(name, sa.Date()) for _, name in _KINDS],
    )
    bind = op.get_bind()
    carried = [
        {
            "answer_id": uuid.uuid5(row.referral_id, f"answer:{kind}"),
            "referral_id": row.referral_id,
            "kind": kind,
            "on": getattr(row, name),
            "stream_seq": 0,
            "rejected": False,
        }
        for row in bind.execute(sa.select(referrals))
        for kind, name in _KINDS
        if getattr(row, name) is not None
    ]
    if carried:
        op.bulk_insert(answers, carried)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("referral_answers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_answers_referral_id"))
    op.drop_table("referral_answers")
