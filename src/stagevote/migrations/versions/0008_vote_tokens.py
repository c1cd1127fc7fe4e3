"""vote_tokens: the tokens a vote change replaced, so that a late retry of them never changes the vote back

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vote_tokens",
        sa.Column("token", sa.String(length=100), nullable=False),
        sa.Column("vote_id", sa.Integer(), nullable=False),
        sa.Column("attendee_id", sa.Integer(), nullable=False),
        sa.Column("artist_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["vote_id"], ["votes.id"], name=op.f("fk_vote_tokens_vote_id_votes"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["attendee_id"], ["attendees.id"], name=op.f("fk_vote_tokens_attendee_id_attendees"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["artist_id"], ["artists.id"], name=op.f("fk_vote_tokens_artist_id_artists")),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_vote_tokens")),
    )
    op.create_index(op.f("ix_vote_tokens_vote_id"), "vote_tokens", ["vote_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_vote_tokens_vote_id"), table_name="vote_tokens")
    op.drop_table("vote_tokens")
