"""vote receipts, round seals, voided votes and attendees

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

`votes.receipt`: the fan's receipt (unique; written by the vote's INSERT). Votes cast before this
revision have none: their receipts are recomputed from the row when a round is sealed or audited.
`votes.voided_at`, `void_reason`, `void_note`, `voided_by` and `attendees.voided_at`, `void_reason`:
an organizer's void. `round_seals`: the Merkle root of each closed round and the receipts it covers.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("receipt", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("void_reason", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("void_note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("voided_by", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_votes_receipt"), ["receipt"])
        batch_op.create_foreign_key(
            batch_op.f("fk_votes_voided_by_users"), "users", ["voided_by"], ["id"], ondelete="SET NULL"
        )
    with op.batch_alter_table("attendees", schema=None) as batch_op:
        batch_op.add_column(sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("void_reason", sa.String(length=20), nullable=True))
    op.create_table(
        "round_seals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("root", sa.String(length=64), nullable=False),
        sa.Column("votes", sa.Integer(), nullable=False),
        sa.Column("receipts", sa.Text(), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_round_seals_event_id_events"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_round_seals")),
        sa.UniqueConstraint("event_id", "round", name=op.f("uq_round_seals_event_id_round")),
    )


def downgrade() -> None:
    op.drop_table("round_seals")
    with op.batch_alter_table("attendees", schema=None) as batch_op:
        batch_op.drop_column("void_reason")
        batch_op.drop_column("voided_at")
    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_votes_voided_by_users"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_votes_receipt"), type_="unique")
        batch_op.drop_column("voided_by")
        batch_op.drop_column("void_note")
        batch_op.drop_column("void_reason")
        batch_op.drop_column("voided_at")
        batch_op.drop_column("receipt")
