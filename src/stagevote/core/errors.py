"""Errors as RFC 9457 problem details: the one place that turns a failure into an HTTP answer."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, cast

import asyncpg
import limits.errors
import redis.exceptions
import sentry_sdk
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class FieldError(dict[str, str]):
    """One invalid field: `{"field": "voteConfig.votesPerRound", "message": "..."}`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field=field, message=message)


class ProblemError(Exception):
    """A failure the caller can act on; its class fixes the status and the problem type."""

    status: int = 500
    slug: str = "internal"
    commit_session: bool = False

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        slug: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.headers = headers or {}
        if slug:
            self.slug = slug


class BadRequest(ProblemError):
    status, slug = 400, "bad-request"


class Unauthorized(ProblemError):
    status, slug = 401, "unauthorized"

    def __init__(self, detail: str = "Missing, invalid, expired or revoked credentials.", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(ProblemError):
    status, slug = 403, "forbidden"


class NotFound(ProblemError):
    status, slug = 404, "not-found"


class Conflict(ProblemError):
    status, slug = 409, "conflict"


class Unprocessable(ProblemError):
    status, slug = 422, "invalid-input"

    @classmethod
    def field(cls, field: str, message: str) -> Unprocessable:
        return cls(f"{field}: {message}", errors=[FieldError(field, message)])


class TooManyRequests(ProblemError):
    status, slug = 429, "rate-limited"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


class ServiceUnavailable(ProblemError):
    """A dependency (Redis, the database) does not answer: try again after `Retry-After` seconds."""

    status, slug = 503, "unavailable"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


def problem_response(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    errors: Sequence[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:stagevote:problem:{slug or _default_slug(status)}",
        "title": _title(status),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # a status code the standard library does not name
        return "Error" if status < 500 else "Server Error"


def _default_slug(status: int) -> str:
    return _title(status).lower().replace(" ", "-")


def _field_name(loc: Sequence[str | int]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie", "form"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _on_problem(_: Request, exc: Exception) -> JSONResponse:
    exc = cast(ProblemError, exc)
    return problem_response(exc.status, exc.detail, slug=exc.slug, errors=exc.errors, headers=exc.headers)


def _field_error(error: dict[str, Any]) -> FieldError:
    if error.get("type") == "json_invalid":  # its loc is ("body", <character offset>), not a field
        reason = (error.get("ctx") or {}).get("error")
        return FieldError("body", f"{error['msg']}: {reason}" if reason else str(error["msg"]))
    return FieldError(_field_name(error["loc"]), str(error["msg"]))


async def _on_validation(_: Request, exc: Exception) -> JSONResponse:
    exc = cast(RequestValidationError, exc)
    errors = [_field_error(e) for e in exc.errors()]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return problem_response(422, detail or "Invalid input.", slug="invalid-input", errors=errors)


async def _on_http(_: Request, exc: Exception) -> JSONResponse:
    exc = cast(StarletteHTTPException, exc)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).description
    slug = getattr(exc, "slug", None)  # our own HTTP errors (core/bodylimit.py) name their problem type
    return problem_response(exc.status_code, detail, slug=slug, headers=dict(exc.headers or {}))


_UNEXPECTED = "An unexpected error occurred; it has been logged."
_LOGGED = "_stagevote_logged"


def _log_unexpected(exc: BaseException, *, method: str, path: str) -> None:
    if getattr(exc, _LOGGED, False):
        return
    log.error("unhandled_error", path=path, method=method, exc_info=exc)
    sentry_sdk.capture_exception(exc)  # a no-op unless Sentry is configured
    with contextlib.suppress(AttributeError):  # an exception without a __dict__ may be logged twice
        setattr(exc, _LOGGED, True)


class UnhandledErrorMiddleware:
    """Answer an exception no handler took with a 500 problem, from inside the app's own middleware.

    A client that hangs up while its request is read (`ClientDisconnect`, from a body or form read) is no
    bug: it is logged at info level and answered with nothing, and the metrics count it as 499.

    Starlette sends the answer to an unhandled exception from its outermost middleware, outside
    every middleware the app adds: that answer would lack `X-Request-ID`, the log line its
    request id, and the metrics would not see it. This middleware sits innermost instead.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:  # the client hung up before its request was read: nobody to answer, no bug
            log.info("client_disconnected", path=scope["path"], method=scope["method"])
            if response_started:
                raise
        except Exception as exc:
            _log_unexpected(exc, method=scope["method"], path=scope["path"])
            if response_started:  # too late for a problem answer: let the server drop the connection
                raise
            await problem_response(500, _UNEXPECTED, slug="internal")(scope, receive, send)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # the last resort, for an exception raised outside UnhandledErrorMiddleware (in outer middleware)
    _log_unexpected(exc, method=request.method, path=request.url.path)
    return problem_response(500, _UNEXPECTED, slug="internal")


# --- failures that are not bugs: a dependency down, a value the database cannot hold ------------------

DEPENDENCY_RETRY_AFTER_SECONDS = 5
# What Redis raises when it is down, hung, loading or a read-only replica; `limits` may wrap it.
REDIS_DOWN: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    limits.errors.StorageError,
)
# What reaching PostgreSQL raises while it is down or restarting: a refused or reset connection (asyncpg raises the
# OSError itself), a connection the server closed, "the database system is starting up / shutting down". SQLAlchemy
# wraps those of a pooled connection in a DBAPIError that says `connection_invalidated` (see `database_down`).
DATABASE_DOWN: tuple[type[Exception], ...] = (
    ConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)
# SQLSTATEs of a value the database cannot hold: text longer than its column, a number or a date past
# its type's range, a NUL character (PostgreSQL text cannot hold one), a character the encoding lacks.
_VALUE_DOES_NOT_FIT = frozenset({"22001", "22003", "22008", "22021", "22P05"})


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in found):
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def value_does_not_fit(exc: BaseException) -> bool:
    """Whether the database (or its driver, binding a parameter) refused a value too large for its column.

    Such a value came from the request (an id of 20 digits, `?offset=2**63`, a NUL in a name): the answer
    is a 422, not a 500. An OverflowError of our own arithmetic is not this: it stays a bug.
    """
    chain = _chain(exc)
    if any(str(getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)) in _VALUE_DOES_NOT_FIT for e in chain):
        return True
    if isinstance(exc, StatementError):  # a driver refused to bind the parameter (asyncpg: "out of int32 range")
        return any(isinstance(e, OverflowError) for e in chain)
    # sqlite3 raises this unwrapped while binding a parameter
    return isinstance(exc, OverflowError) and "SQLite INTEGER" in str(exc)


def database_down(exc: BaseException) -> bool:
    """Whether the database could not be reached (down, restarting, the connection cut): a 503, not a bug."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return any(isinstance(e, DATABASE_DOWN) for e in _chain(exc))


async def _on_statement_error(request: Request, exc: Exception) -> JSONResponse:
    if database_down(exc):
        return await _on_dependency_down(request, exc)
    if not value_does_not_fit(exc):
        raise exc
    log.warning("value_out_of_range", path=request.url.path, error=str(exc).splitlines()[0][:200])
    return problem_response(
        422,
        "A value in the request is out of range (too large a number, a date too far, or a NUL character).",
        slug="out-of-range",
    )


async def _on_dependency_down(request: Request, exc: Exception) -> JSONResponse:
    cause = exc.storage_error if isinstance(exc, limits.errors.StorageError) else exc
    log.warning("dependency_unavailable", path=request.url.path, error=f"{type(cause).__name__}: {cause}"[:200])
    return problem_response(
        503,
        "A service this call needs (the database or Redis) does not answer; try again shortly.",
        slug="unavailable",
        headers={"Retry-After": str(DEPENDENCY_RETRY_AFTER_SECONDS)},
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error of the app, the framework's own included, a problem+json answer.

    Call it before adding any other middleware: the middleware it adds must be the innermost.
    """
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(StatementError, _on_statement_error)
    app.add_exception_handler(OverflowError, _on_statement_error)
    for down in REDIS_DOWN + DATABASE_DOWN:
        app.add_exception_handler(down, _on_dependency_down)
    app.add_exception_handler(Exception, _on_unexpected)
    app.add_middleware(UnhandledErrorMiddleware)
    _document_problems(app)


# --- the OpenAPI document says so too ---------------------------------------------------------------------

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `errors` lists the invalid fields of a 422.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "urn:stagevote:problem:<slug>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
_FASTAPI_VALIDATION = "#/components/schemas/HTTPValidationError"


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": _PROBLEM_CONTENT}


def _declares_its_own_body(response: dict[str, Any]) -> bool:
    """A response whose route declared a JSON body of its own (e.g. /ready's 503 report), not FastAPI's default."""
    schemas = [media.get("schema") for media in (response.get("content") or {}).values()]
    return any(schema and schema.get("$ref") != _FASTAPI_VALIDATION for schema in schemas)


def _document_problems(app: FastAPI) -> None:
    """Every error answer is problem+json: say so in the OpenAPI document, for each operation.

    FastAPI documents only its own 422 (as `application/json`, a shape we never send). Each operation gets
    the problem schema for its 422 and for the errors its route names, plus `4XX` (a refusal: 401, 403, 404,
    409, 413, 415, 429…, each with its own slug in `type`) and `503` (a dependency down, with `Retry-After`).
    A 500 is not documented: it is a bug.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        for path_item in document.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.setdefault("responses", {})
                for code, response in responses.items():
                    if code[0] in "45" and not _declares_its_own_body(response):
                        response["content"] = _PROBLEM_CONTENT
                responses.setdefault("4XX", _problem_response("A refusal; `type` names the problem"))
                responses.setdefault("503", _problem_response("A dependency does not answer; try after `Retry-After`"))
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = PROBLEM_SCHEMA
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
