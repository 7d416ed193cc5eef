"""enrolments remember whether the time rules discharged them

A dropout the rule decided can be reversed by an attended session synced late; an agent's or a
clinic's cannot, so the enrolment records which it was. Enrolments discharged before this
revision are marked as not by the rule: their dropouts stay final.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 01:00:00.000000

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
    with op.batch_alter_table("enrolments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("discharged_by_rule", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("enrolments", schema=None) as batch_op:
        batch_op.drop_column("discharged_by_rule")
