"""votes: one index fewer and byte-order codes, so a receipt costs the vote path's inserts (almost) nothing

`ix_votes_attendee_id` goes: the unique (attendee_id, event_id, round, slot) index starts with the same
column and serves every look-up by attendee, the cascade of an attendee's delete included. On
PostgreSQL the vote token and the receipt, opaque codes that are only ever compared for equality,
are compared byte by byte (COLLATE "C") instead of by the database's locale, in their unique indexes
too. SQLite already compares text byte by byte.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CODES = (("token", 100, False), ("receipt", 32, True))


def upgrade() -> None:
    op.drop_index("ix_votes_attendee_id", table_name="votes")
    if op.get_bind().dialect.name == "postgresql":
        for column, length, nullable in _CODES:
            op.alter_column("votes", column, type_=sa.String(length=length, collation="C"), existing_nullable=nullable)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for column, length, nullable in _CODES:
            op.alter_column(
                "votes", column, type_=sa.String(length=length, collation="default"), existing_nullable=nullable
            )
    op.create_index("ix_votes_attendee_id", "votes", ["attendee_id"], unique=False)
