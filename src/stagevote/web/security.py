"""What every page sends to keep the browser strict (CSP, framing, referrer), and tokens kept out of access logs."""

from __future__ import annotations

import logging
import re

NO_FRAMING = "'none'"

# Page paths whose last segment is a secret: a ballot token, an artist's claim token.
_SECRET_PATH = re.compile(r"^(/(?:b|claim)/)[^/?#\s]+")
REDACTED = "[redacted]"


def content_security_policy(*, frame_ancestors: str = NO_FRAMING) -> str:
    """Scripts, styles and connections from this origin only: no inline script, no eval, no inline style.

    `connect-src 'self'` covers the Socket.IO websocket of the same origin (CSP 3 matches ws: and wss:).
    """
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {frame_ancestors}",
        )
    )


def page_headers(*, secret_in_url: bool = False, frame_ancestors: str = NO_FRAMING) -> dict[str, str]:
    """The headers of one page. `secret_in_url`: the URL carries a token (ballot, claim), so the page sends
    no Referer anywhere and is never stored by a cache."""
    headers = {
        "Content-Security-Policy": content_security_policy(frame_ancestors=frame_ancestors),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer" if secret_in_url else "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
        "Cache-Control": "no-store" if secret_in_url else "no-cache",
    }
    if frame_ancestors == NO_FRAMING:
        headers["X-Frame-Options"] = "DENY"  # for browsers older than CSP frame-ancestors
    if secret_in_url:
        headers["X-Robots-Tag"] = "noindex, nofollow"
    return headers


def redact_path(path: str) -> str:
    """`/b/<token>` → `/b/[redacted]` (and the same for `/claim/<token>`); any other path as it is."""
    return _SECRET_PATH.sub(rf"\g<1>{REDACTED}", path)


class RedactTokensInAccessLog(logging.Filter):
    """uvicorn's access log line is `%s - "%s %s HTTP/%s" %d` (client, method, path, version, status):
    the path of a ballot or claim page would write the token into every log store; this rewrites it."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            redacted = redact_path(args[2])
            if redacted != args[2]:
                record.args = (*args[:2], redacted, *args[3:])
        return True


def redact_access_log() -> None:
    """Install the filter on uvicorn's access logger, once per process."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokensInAccessLog) for f in access.filters):
        access.addFilter(RedactTokensInAccessLog())
