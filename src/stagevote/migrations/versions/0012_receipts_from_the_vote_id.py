"""votes: receipts derived from the vote's id (version 2), so the vote path writes no receipt and no index entry

`votes.receipt_version`: 1 for every vote already cast (its receipt, when it has one, stays in
`votes.receipt`), 2 by default for every vote cast from now on, whose receipt is computed from its row
and id (voting/receipts.py) and never stored. The unique constraint on `receipt` becomes a unique index
on the rows that have one, so a vote without a stored receipt adds no entry to it. A downgrade is refused
once a version 2 vote exists: the older schema would read it as version 1, and its receipt would change.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STORED = sa.text("receipt IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("votes", schema=None) as batch_op:
        # the rows there now are version 1; the default then moves to 2 for the rows to come
        batch_op.add_column(sa.Column("receipt_version", sa.SmallInteger(), server_default="1", nullable=False))
        batch_op.drop_constraint("uq_votes_receipt", type_="unique")
    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.alter_column(
            "receipt_version", server_default="2", existing_type=sa.SmallInteger(), existing_nullable=False
        )
    op.create_index(
        "ix_votes_receipt", "votes", ["receipt"], unique=True, postgresql_where=_STORED, sqlite_where=_STORED
    )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM votes WHERE receipt_version = 2 LIMIT 1")).first() is not None:
        raise RuntimeError(
            "votes were cast with version 2 receipts (derived from the row, never stored): before 0012 they "
            "would be read as version 1 and every such receipt would change. Not downgrading."
        )
    op.drop_index("ix_votes_receipt", table_name="votes")
    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_votes_receipt", ["receipt"])
        batch_op.drop_column("receipt_version")
