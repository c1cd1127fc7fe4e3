"""The Socket.IO `/live` namespace: subscribe to an event, get its leaderboard now and as it moves."""

from __future__ import annotations

from typing import Any

import socketio
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stagevote.auth import service as auth_service
from stagevote.auth.principal import Principal
from stagevote.core.db import unit_of_work
from stagevote.core.errors import ProblemError
from stagevote.core.runtime import Runtime
from stagevote.realtime.rooms import NAMESPACE, public_room, staff_room
from stagevote.voting import service as voting_service

log = structlog.get_logger(__name__)


class Subscribe(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event_id: int = Field(alias="eventId", ge=1)
    token: str | None = Field(default=None, max_length=4096)


def _refusal(status: int, title: str) -> dict[str, Any]:
    return {"ok": False, "status": status, "title": title}


class LiveNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    def __init__(self, runtime: Runtime) -> None:
        super().__init__(NAMESPACE)
        self._runtime = runtime

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        self._runtime.metrics.live_connections.inc()

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self._runtime.metrics.live_connections.dec()

    async def on_subscribe(self, sid: str, data: Any) -> dict[str, Any]:
        try:
            request = Subscribe.model_validate(data)
        except ValidationError:
            return _refusal(422, "Send {eventId, token?}.")
        try:
            async with unit_of_work(self._runtime.sessionmaker) as session:
                principal = await self._principal(session, request.token)
                board = await voting_service.leaderboard(
                    session=session,
                    runtime=self._runtime,
                    event_id=request.event_id,
                    round_number=None,
                    principal=principal,
                )
        except ProblemError as problem:
            return _refusal(problem.status, problem.detail)
        admin = principal is not None and principal.is_admin
        room = staff_room(request.event_id) if admin else public_room(request.event_id)
        await self.enter_room(sid, room)
        return {"ok": True, "leaderboard": board.model_dump(mode="json", by_alias=True)}

    async def _principal(self, session: Any, token: str | None) -> Principal | None:
        if not token:
            return None
        return await auth_service.authenticate(session=session, runtime=self._runtime, bearer=token)


def create_live_server(runtime: Runtime) -> socketio.AsyncServer:
    """The Socket.IO server; with Redis, instances share rooms through its pub/sub."""
    settings = runtime.settings
    manager = (
        socketio.AsyncRedisManager(settings.redis_url, channel=f"{settings.redis_key_prefix}socketio")
        if settings.redis_url
        else None
    )
    sio = socketio.AsyncServer(
        async_mode="asgi", client_manager=manager, cors_allowed_origins="*", logger=False, engineio_logger=False
    )
    sio.register_namespace(LiveNamespace(runtime))
    return sio
