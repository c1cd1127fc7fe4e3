"""Every query of the audit domain: append a row, page the log newest first. There is no update or delete."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from stagevote.audit.models import AuditEntry
from stagevote.core.repository import Repository


class AuditRepository(Repository[AuditEntry]):
    model = AuditEntry

    async def page_filtered(
        self, *, event_id: int | None, actor_id: int | None, action: str | None, limit: int, offset: int
    ) -> tuple[Sequence[AuditEntry], int]:
        statement = select(AuditEntry).order_by(AuditEntry.id.desc())
        if event_id is not None:
            statement = statement.where(AuditEntry.event_id == event_id)
        if actor_id is not None:
            statement = statement.where(AuditEntry.actor_id == actor_id)
        if action is not None:
            statement = statement.where(AuditEntry.action == action)
        return await self.page(statement, limit=limit, offset=offset)
