"""outbox leases; message texts sealed, ballot tokens and codes redacted in stored bodies and replies

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

`messages.leased_until`: until when a row handed to a delivery is that delivery's (a lease that runs out
unclaimed marks a lost task, where a row merely waiting for its turn has no lease at all).
`messages.sealed_body`, `inbound_messages.sealed_reply`: the text as sent, encrypted by the application.
Bodies of messages whose delivery has ended, and the replies already recorded, lose their ballot tokens
and codes here (the patterns of `stagevote.messaging.sealing`, copied so that this migration never
changes with the code); rows still queued or sending keep theirs until the outbox finishes them.
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_BALLOT_PATH = re.compile(r"(?<=/b/)(?!\[token\])[A-Za-z0-9._~%-]{16,}")
_CODE = re.compile(r"(?<![0-9A-Za-z])[0-9]{6}(?![0-9A-Za-z])")
BATCH = 1000


def _redact(text: str, codes: bool) -> str:
    shown = _BALLOT_PATH.sub("[token]", _JWT.sub("[token]", text))
    return _CODE.sub("[code]", shown) if codes else shown


def _redact_stored_texts() -> None:
    connection = op.get_bind()
    messages = sa.table(
        "messages", sa.column("id", sa.Integer), sa.column("body", sa.Text), sa.column("message_type", sa.String),
        sa.column("status", sa.String),
    )  # fmt: skip
    last = 0
    while True:
        rows = connection.execute(
            sa.select(messages.c.id, messages.c.body, messages.c.message_type)
            .where(messages.c.id > last, messages.c.status.notin_(["queued", "sending"]))
            .order_by(messages.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        last = rows[-1].id
        for row in rows:
            shown = _redact(row.body or "", row.message_type in ("JOIN", "CONFIRM"))
            if shown != row.body:
                connection.execute(sa.update(messages).where(messages.c.id == row.id).values(body=shown))
    inbound = sa.table("inbound_messages", sa.column("message_sid", sa.String), sa.column("reply", sa.Text))
    for sid, reply in connection.execute(sa.select(inbound.c.message_sid, inbound.c.reply)).all():
        shown = _redact(reply or "", True)
        if reply is not None and shown != reply:
            connection.execute(sa.update(inbound).where(inbound.c.message_sid == sid).values(reply=shown))


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed_body", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_messages_status_leased_until", ["status", "leased_until"], unique=False)
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed_reply", sa.Text(), nullable=True))
    _redact_stored_texts()


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_column("sealed_reply")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_status_leased_until")
        batch_op.drop_column("leased_until")
        batch_op.drop_column("sealed_body")
