"""Fan-out of one Socket.IO event to a room: encoded once, the very same bytes written to every socket.

python-socketio's own emit encodes the packet once, then per client creates a task that queues it
for the socket's writer task, which wakes, frames the text for the websocket and writes it
(~40–60 µs of CPU a client on a 2-core machine, `bench/fanout.py --micro`; ~10 µs here). At thousands
of screens that is a large part of a core per emit. `FanOut` does per client only what must be done per client:

- an idle websocket served by uvicorn gets the websocket frame, built once for the room, written
  straight to its transport (one `write`, no task, no per-client encoding, no compression);
- any other socket (long polling, a websocket that is upgrading, backed up or already has packets
  waiting, another ASGI server) gets the same engine.io packet through its own queue, without a task,
  so the order of what it is sent is kept.

An uncompressed frame is valid even where the client negotiated permessage-deflate (RFC 7692: only
frames with RSV1 set are compressed). Across instances the Redis manager still carries emits
(`RedisFanOut`): every instance fans its own sockets out this way.

A disconnect leaves the rooms the socket is in, kept per socket here: python-socketio looks through
every room of the namespace for it, and every socket has a room of its own, so 5,000 sockets leaving
at once cost 25 million look-ups (seconds of CPU, on the core the next doors-open needs).
"""

from __future__ import annotations

import struct
from typing import Any

import socketio
from engineio import packet as eio_packet
from engineio.async_drivers.asgi import WebSocket as AsgiWebSocket
from socketio import packet as sio_packet
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

_WS_ATTRIBUTE = "_stagevote_websocket"


class RecordedWebSocket(AsgiWebSocket):  # type: ignore[misc]
    """engine.io's ASGI websocket, remembered on its engine.io socket so a fan-out can reach its transport."""

    async def __call__(self, environ: dict[str, Any]) -> Any:
        owner = getattr(self.handler, "__self__", None)  # the engine.io socket whose handler this is
        if owner is not None:
            setattr(owner, _WS_ATTRIBUTE, self)
        return await super().__call__(environ)


def install_recorded_websockets(sio: socketio.AsyncServer) -> None:
    """Make this server's engine.io sockets remember their websocket (a copy of the driver table, not the global)."""
    drivers = dict(sio.eio._async)
    drivers["websocket"] = RecordedWebSocket
    sio.eio._async = drivers


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked, uncompressed websocket text frame (RFC 6455 §5.2), as a server sends it."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


def _direct_transport(socket: Any) -> Any | None:
    """The transport to write a frame to directly, if this socket is an idle websocket on uvicorn."""
    ws = getattr(socket, _WS_ATTRIBUTE, None)
    if ws is None or socket.closed or socket.upgrading or not socket.upgraded or not socket.queue.empty():
        return None
    protocol = getattr(ws.asgi_send, "__self__", None)
    if not isinstance(protocol, WebSocketsSansIOProtocol):
        return None
    if not protocol.handshake_complete or protocol.close_sent or protocol.disconnected:
        return None
    if not protocol.writable.is_set():  # the client reads slowly: let its queue hold the packet
        return None
    transport = protocol.transport
    if transport is None or transport.is_closing():
        return None
    return transport


class FanOut(socketio.AsyncManager):  # type: ignore[misc]
    """The local client manager: rooms as python-socketio keeps them, emits written as described above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.direct_writes = 0  # frames written straight to a transport
        self.queued_writes = 0  # packets handed to a socket's own queue
        self._rooms_of: dict[tuple[str, str], set[Any]] = {}  # (namespace, sid) → its rooms, None and its own included

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        rooms = self._rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms_of[(namespace, sid)]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """python-socketio's, leaving only the rooms this socket is in."""
        for room in list(self._rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            waiting = pending.get(namespace)
            if waiting is not None and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        room = to or room
        if callback is not None or namespace not in self.rooms:
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs)
            return
        args = list(data) if isinstance(data, tuple) else ([data] if data is not None else [])
        encoded = self.server.packet_class(sio_packet.EVENT, namespace=namespace, data=[event, *args]).encode()
        if isinstance(encoded, list):  # binary attachments: several packets, python-socketio knows how
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs)
            return
        self.write(self.get_participants(namespace, room), encoded, skip=skip_sid)

    def write(self, participants: Any, encoded: str, *, skip: Any = None) -> int:
        """Send one encoded Socket.IO packet to each (sid, eio_sid); the number of sockets it went to."""
        skipped = set(skip) if isinstance(skip, list) else {skip}
        message = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        frame = text_frame(message.encode().encode())
        sockets = self.server.eio.sockets
        sent = 0
        for sid, eio_sid in participants:
            if sid in skipped:
                continue
            socket = sockets.get(eio_sid)
            if socket is None or socket.closed:
                continue
            transport = _direct_transport(socket)
            if transport is not None:
                transport.write(frame)
                self.direct_writes += 1
            else:
                socket.queue.put_nowait(message)
                self.queued_writes += 1
            sent += 1
        return sent


class RedisFanOut(socketio.AsyncRedisManager, FanOut):  # type: ignore[misc]
    """Emits go through Redis to every instance; each instance's local delivery is `FanOut.emit`.

    (The method order puts `FanOut` between the pub/sub manager and python-socketio's local manager,
    so what the pub/sub layer hands to "the local manager" is this fan-out.)
    """
