"""Every query of the sms domain: inbound messages claimed by their MessageSid, so a Twilio retry acts once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from stagevote.core.repository import Repository
from stagevote.sms.models import InboundMessage

# The claim and the reply are Core statements on the table, each built once: the ORM's bulk INSERT/UPDATE
# machinery, and building a statement afresh, cost each inbound text more than the statements themselves
# (every text runs both).
_TABLE = cast(Table, InboundMessage.__table__)
_CLAIM = {
    name: insert(_TABLE)
    .values(
        message_sid=bindparam("sid"), from_number=bindparam("from_"), to_number=bindparam("to"), body=bindparam("body")
    )
    .on_conflict_do_nothing(index_elements=["message_sid"])
    .returning(_TABLE.c.message_sid)
    for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}
_SET_REPLY = (
    update(_TABLE)
    .where(_TABLE.c.message_sid == bindparam("sid"))
    .values(reply=bindparam("reply"), sealed_reply=bindparam("sealed"))
)


class InboundMessageRepository(Repository[InboundMessage]):
    model = InboundMessage

    async def claim(self, *, message_sid: str, from_number: str, to_number: str | None, body: str) -> bool:
        """Record the message as being handled; False when it was already (or is being, elsewhere).

        `ON CONFLICT DO NOTHING`: of two deliveries of one MessageSid, one inserts; on PostgreSQL the
        other waits for that transaction to end and then inserts nothing, so it reads the stored reply.
        """
        statement = _CLAIM[self.session.get_bind().dialect.name]
        values = {"sid": message_sid, "from_": from_number, "to": to_number, "body": body}
        return await self.session.scalar(statement, values) is not None

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
        await self.session.execute(_SET_REPLY, {"sid": message_sid, "reply": reply, "sealed": sealed})

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
