"""Tables of the audit domain: one row per recorded action, never updated nor deleted."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from stagevote.core.db import Base, utcnow


class AuditEntry(Base):
    """One action: who (`actor_id`, a user id), what (`action`, `target`, `changes`), when, from which address.

    No foreign keys: the log outlives what it names (a user or an event may go; the record of what was
    done to it stays). It holds ids, field names and non-personal values only, never phone numbers,
    e-mails, message bodies or secrets, so erasing an attendee never needs to touch it. The database
    refuses UPDATE and DELETE of its rows (triggers of migration 0009).
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_event_id_id", "event_id", "id"),
        Index("ix_audit_log_actor_id_id", "actor_id", "id"),
        Index("ix_audit_log_action_id", "action", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None]
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[int | None]
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    address: Mapped[str | None] = mapped_column(String(45))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
