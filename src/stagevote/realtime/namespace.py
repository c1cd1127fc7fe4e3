"""The Socket.IO `/live` namespace: subscribe to an event's topics, get its leaderboard now and as it moves.

A subscribe is answered from the in-process copy of the event and the tally cache: no unit of work
in the common case (a miss loads once for everyone waiting, see `voting.context` and `Boards`). An
admin's `token` is checked without the database too: the signature here, the denylist in
Redis/memory, and the account's role from a copy kept `hot_cache_seconds` (so a demotion reaches
new subscriptions within that time). Every subscribe is answered: a refusal, or any failure at all
(a pool timeout, Redis down), is `{ok: false, status, title}`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import socketio
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stagevote.auth import service as auth_service
from stagevote.auth.principal import Principal
from stagevote.core.db import unit_of_work, utcnow
from stagevote.core.errors import Forbidden, NotFound, ProblemError, Unauthorized
from stagevote.core.runtime import Runtime
from stagevote.events.models import EventStatus
from stagevote.realtime.boards import Boards
from stagevote.realtime.fanout import FanOut, RedisFanOut, install_recorded_websockets
from stagevote.realtime.rooms import NAMESPACE, TOPICS, Topic, event_room, public_room, round_room, staff_room
from stagevote.voting import service as voting_service
from stagevote.voting.context import vote_context

log = structlog.get_logger(__name__)
SUBSCRIBE_TIMEOUT_SECONDS = 20.0


class Subscribe(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event_id: int = Field(alias="eventId", ge=1)
    token: str | None = Field(default=None, max_length=4096)
    topics: list[Topic] = Field(default=list(TOPICS), min_length=1, max_length=len(TOPICS))


def _refusal(status: int, title: str) -> dict[str, Any]:
    return {"ok": False, "status": status, "title": title}


class LiveNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    def __init__(self, runtime: Runtime, boards: Boards) -> None:
        super().__init__(NAMESPACE)
        self._runtime = runtime
        self._boards = boards
        self._roles: dict[int, asyncio.Future[bool]] = {}  # role loads under way, by user id

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        self._runtime.metrics.live_connections.inc()

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self._runtime.metrics.live_connections.dec()

    async def on_subscribe(self, sid: str, data: Any) -> dict[str, Any]:
        try:
            request = Subscribe.model_validate(data)
        except ValidationError:
            return _refusal(422, 'Send {eventId, token?, topics?} (topics: "leaderboard", "round", "event").')
        try:
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_SECONDS):  # Redis or the database not answering
                return await self._subscribe(sid, request)
        except ProblemError as problem:
            return _refusal(problem.status, problem.detail)
        except Exception:  # a pool timeout, Redis gone…: still an answer, never a hang
            log.exception("live_subscribe_failed", event_id=request.event_id)
            return _refusal(503, "The live stream cannot answer right now; try again in a moment.")

    async def _subscribe(self, sid: str, request: Subscribe) -> dict[str, Any]:
        admin = await self._is_admin(request.token) if request.token else False
        event_id = request.event_id
        context = await vote_context(session=None, runtime=self._runtime, event_id=event_id)
        if context is None or (context.event.status == EventStatus.DRAFT.value and not admin):
            raise NotFound(f"No event {event_id}.")
        topics = set(request.topics)
        number: int | None = None
        if "leaderboard" in topics:
            now = utcnow()
            number = context.current_round(now)
            if not admin and not voting_service.may_see_leaderboard(context, number, None, now):
                raise Forbidden("The organizer keeps this leaderboard hidden for now.", slug="leaderboard-hidden")
        # rooms first, standings after: whatever changes once the standings are read is emitted to this client
        rooms = {"round": round_room(event_id), "event": event_room(event_id)}
        rooms["leaderboard"] = staff_room(event_id) if admin else public_room(event_id)
        wanted = {rooms[topic] for topic in topics}
        for room in wanted:
            await self.enter_room(sid, room)
        # a subscribe again to the same event says what this socket wants now (a screen whose board was hidden)
        for room in {public_room(event_id), staff_room(event_id), round_room(event_id), event_room(event_id)} - wanted:
            await self.leave_room(sid, room)
        if number is None:
            return {"ok": True}
        board = await self._boards.current(event_id, number)
        if board is None:
            raise NotFound(f"No event {event_id}.")
        return {"ok": True, "leaderboard": board}

    async def _is_admin(self, token: str) -> bool:
        if token.startswith(auth_service.API_KEY_PREFIX):  # keys are looked up by hash: the rare slow path
            async with unit_of_work(self._runtime.sessionmaker) as session:
                principal = await auth_service.authenticate(session=session, runtime=self._runtime, bearer=token)
            return principal.is_admin
        access = await auth_service.check_access_token(runtime=self._runtime, bearer=token)
        return await self._role_is_admin(access.user_id)

    async def _role_is_admin(self, user_id: int) -> bool:
        key = f"live-admin:{user_id}"
        cached = self._runtime.memo.get(key)
        if isinstance(cached, bool):
            return cached
        pending = self._roles.get(user_id)
        if pending is None:
            pending = asyncio.ensure_future(self._load_role(user_id))
            self._roles[user_id] = pending
            pending.add_done_callback(lambda _: self._roles.pop(user_id, None))
        is_admin = await asyncio.shield(pending)
        self._runtime.memo.put(key, is_admin)
        return is_admin

    async def _load_role(self, user_id: int) -> bool:
        async with unit_of_work(self._runtime.sessionmaker) as session:
            user = await auth_service.get_user(session=session, user_id=user_id)
        if user is None:
            raise Unauthorized("The account no longer exists.")
        return Principal(user=user).is_admin


def create_live_server(runtime: Runtime, boards: Boards) -> socketio.AsyncServer:
    """The Socket.IO server; with Redis, instances share emits through its pub/sub, and each instance
    writes to its own sockets with `FanOut`."""
    settings = runtime.settings
    manager = (
        RedisFanOut(settings.redis_url.get_secret_value(), channel=f"{settings.redis_key_prefix}socketio")
        if settings.redis_url is not None
        else FanOut()
    )
    sio = socketio.AsyncServer(
        async_mode="asgi", client_manager=manager, cors_allowed_origins="*", logger=False, engineio_logger=False
    )
    install_recorded_websockets(sio)
    sio.register_namespace(LiveNamespace(runtime, boards))
    return sio
