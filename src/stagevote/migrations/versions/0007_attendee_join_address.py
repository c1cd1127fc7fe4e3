"""attendees.join_address: where the latest web join came from, for the integrity flags

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

The client address of the web join (behind TRUSTED_PROXIES, the client they name): an IPv4 address, or
the /64 of an IPv6 one, as the per-IP rate limits key it. NULL for attendees who joined by SMS, were
pre-registered, joined before this revision, or were erased. `GET /events/{id}/integrity` counts joins
per address with it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attendees", schema=None) as batch_op:
        batch_op.add_column(sa.Column("join_address", sa.String(length=45), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attendees", schema=None) as batch_op:
        batch_op.drop_column("join_address")
