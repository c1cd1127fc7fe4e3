"""Every query of the sms domain: inbound messages claimed by their MessageSid, so a Twilio retry acts once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from stagevote.core.repository import Repository
from stagevote.sms.models import InboundMessage


class InboundMessageRepository(Repository[InboundMessage]):
    model = InboundMessage

    def _insert(self) -> Any:
        dialect = self.session.get_bind().dialect.name
        return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(InboundMessage)

    async def claim(self, *, message_sid: str, from_number: str, to_number: str | None, body: str) -> bool:
        """Record the message as being handled; False when it was already (or is being, elsewhere).

        `ON CONFLICT DO NOTHING`: of two deliveries of one MessageSid, one inserts; on PostgreSQL the
        other waits for that transaction to end and then inserts nothing, so it reads the stored reply.
        """
        statement = (
            self._insert()
            .values(message_sid=message_sid, from_number=from_number, to_number=to_number, body=body)
            .on_conflict_do_nothing(index_elements=["message_sid"])
            .returning(InboundMessage.message_sid)
        )
        return await self.session.scalar(statement) is not None

    async def reply_of(self, message_sid: str) -> tuple[str, str | None] | None:
        """The reply kept for the message (redacted, and sealed), None before there is one."""
        row = (
            await self.session.execute(
                select(InboundMessage.reply, InboundMessage.sealed_reply).where(
                    InboundMessage.message_sid == message_sid
                )
            )
        ).first()
        return (row[0], row[1]) if row is not None and row[0] is not None else None

    async def set_reply(self, message_sid: str, reply: str, *, sealed: str | None) -> None:
        await self.session.execute(
            update(InboundMessage)
            .where(InboundMessage.message_sid == message_sid)
            .values(reply=reply, sealed_reply=sealed)
        )

    async def of_number(self, phone_number: str) -> Sequence[InboundMessage]:
        """What the number texted us, oldest first."""
        statement = (
            select(InboundMessage)
            .where(InboundMessage.from_number == phone_number)
            .order_by(InboundMessage.received_at, InboundMessage.message_sid)
        )
        return (await self.session.scalars(statement)).all()

    async def erase_of_number(self, phone_number: str) -> None:
        """Blank the number, what it texted and our replies; the MessageSid stays, so a retry acts once."""
        await self.session.execute(
            update(InboundMessage)
            .where(InboundMessage.from_number == phone_number)
            .values(from_number="", body="", reply="", sealed_reply=None)
            .execution_options(synchronize_session=False)
        )
