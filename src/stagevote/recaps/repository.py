"""Every query of the recaps domain: the recap row of an event, written once and updated on each render."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.dialects import postgresql, sqlite

from stagevote.core.repository import Repository
from stagevote.recaps.models import Recap


class RecapRepository(Repository[Recap]):
    model = Recap

    async def record(self, *, event_id: int, url: str, storage_key: str, at: dt.datetime) -> bool:
        """Remember where the event's page now is; True when this is its first render (race-safe)."""
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        first = await self.session.scalar(
            insert(Recap)
            .values(event_id=event_id, url=url, storage_key=storage_key, first_rendered_at=at, rendered_at=at)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(Recap.event_id)
        )
        if first is not None:
            return True
        recap = await self.session.get(Recap, event_id, populate_existing=True, with_for_update=True)
        if recap is not None:
            recap.url, recap.storage_key, recap.rendered_at = url, storage_key, at
            await self.session.flush()
        return False
