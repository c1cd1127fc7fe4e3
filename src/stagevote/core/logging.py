"""Structured logs (structlog): JSON lines when `LOG_FORMAT=json`, every line of a request tagged with its id."""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import sys
from typing import TextIO

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is when a record is emitted, not to the stream of the moment it was made.

    A handler that kept the stream it was built with would write into a replaced and closed
    stream (a test's captured output, a CLI runner's) long after that stream is gone.
    """

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr  # emit runs under the handler's lock
        super().emit(record)


def configure_logging(*, log_format: str, level: str) -> None:
    """Route stdlib and structlog records through one renderer, on stderr.

    Safe to call again (every app calls it): it replaces the handler an earlier call installed
    and leaves handlers that others installed on the root logger (pytest's, for one) alone.
    """
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if log_format == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # taskiq's receiver says "Executing task …" at info for every task: the outbox drain runs every second,
    # so that was a line a second in `make run` and in every worker's log. Its warnings and errors stay;
    # at debug level it says everything again.
    receiver = logging.getLogger("taskiq.receiver.receiver")
    receiver.setLevel(logging.WARNING if root.level >= logging.INFO else logging.NOTSET)


# A new request id: this process's random 80 bits, then a count (32 hex digits, as a uuid4's hex). Unique
# like a uuid4, without a `urandom` call per request; a forked child draws its own 80 bits.
_id_prefix = secrets.token_hex(10)
_id_count = itertools.count()


def _new_id_prefix() -> None:
    global _id_prefix  # noqa: PLW0603 - the process's own, drawn again in a forked child
    _id_prefix = secrets.token_hex(10)


os.register_at_fork(after_in_child=_new_id_prefix)


def new_request_id() -> str:
    return f"{_id_prefix}{next(_id_count) & 0xFFFFFFFFFFFF:012x}"


class RequestIdMiddleware:
    """Give each HTTP request an id (the caller's `X-Request-ID` or a new one), log it, echo it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or new_request_id()
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:  # as it was before: a caller running several requests in one task sees no leftover id
            structlog.contextvars.reset_contextvars(**bound)


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER.encode():
            candidate: str = bytes(value).decode("latin-1")[:128]
            # printable ASCII only: the id is echoed in a header and written into every log line
            if candidate.isascii() and candidate.isprintable() and candidate.strip():
                return candidate
    return None
