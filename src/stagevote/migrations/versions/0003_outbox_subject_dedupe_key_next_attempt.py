"""outbox: subject, dedupe key, next attempt

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("dedupe_key", sa.String(length=160), nullable=True))
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_messages_status_next_attempt_at", ["status", "next_attempt_at"], unique=False)
        batch_op.create_unique_constraint(batch_op.f("uq_messages_dedupe_key"), ["dedupe_key"])


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_messages_dedupe_key"), type_="unique")
        batch_op.drop_index("ix_messages_status_next_attempt_at")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("dedupe_key")
        batch_op.drop_column("subject")
