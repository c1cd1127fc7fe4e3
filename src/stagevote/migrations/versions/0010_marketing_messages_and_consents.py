"""marketing messages (quiet hours, daily cap); the consent record

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10

`messages.marketing`: the row is a marketing message (waits for quiet hours, counts against the cap).
`consents`: every opt-in and opt-out with its time, channel and the words texted (or the terms version).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("marketing", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("attendee_id", sa.Integer(), nullable=True),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("phone_number", sa.String(length=20), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("words", sa.Text(), nullable=True),
        sa.Column("terms_version", sa.String(length=40), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('opt_in','opt_out')", name=op.f("ck_consents_kind")),
        sa.CheckConstraint("channel IN ('sms','web')", name=op.f("ck_consents_channel")),
        sa.ForeignKeyConstraint(
            ["attendee_id"], ["attendees.id"], name=op.f("fk_consents_attendee_id_attendees"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_consents_event_id_events"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    op.create_index(op.f("ix_consents_attendee_id"), "consents", ["attendee_id"])
    op.create_index(op.f("ix_consents_phone_number"), "consents", ["phone_number"])
    op.create_index("ix_consents_event_id_id", "consents", ["event_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_consents_event_id_id", table_name="consents")
    op.drop_index(op.f("ix_consents_phone_number"), table_name="consents")
    op.drop_index(op.f("ix_consents_attendee_id"), table_name="consents")
    op.drop_table("consents")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("marketing")
