"""A client that hangs up while its request is read is no bug: no 500, no error line, counted as 499."""

from __future__ import annotations

import pytest
from asgi_lifespan import LifespanManager
from starlette.types import Message

from stagevote.app import create_app
from stagevote.config import Settings
from stagevote.core.runtime import Runtime
from tests.core.test_logging import by_event, json_lines


@pytest.mark.parametrize(
    ("path", "content_type", "route"),
    [
        ("/sms/join", "application/x-www-form-urlencoded", "/sms/join"),  # a Twilio webhook's form
        ("/events/1/vote", "application/json", "/events/{event_id}/vote"),  # a ballot's vote
    ],
)
async def test_a_client_that_hangs_up_mid_body_gets_no_answer_and_logs_no_error(
    settings: Settings, capsys: pytest.CaptureFixture[str], path: str, content_type: str, route: str
) -> None:
    application = create_app(settings.model_copy(update={"log_format": "json"}))
    parts: list[Message] = [
        {"type": "http.request", "body": b"Body=VOTE+3&From=%2B1202", "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return parts.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", content_type.encode()), (b"content-length", b"64")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    async with LifespanManager(application):
        runtime: Runtime = application.state.runtime
        capsys.readouterr()
        await application(scope, receive, send)
        lines = json_lines(capsys.readouterr().err)
        counted = runtime.metrics.registry.get_sample_value(
            "stagevote_http_requests_total", {"method": "POST", "route": route, "status": "499"}
        )
    assert sent == []  # nobody is there to read an answer, a 500 least of all
    assert by_event(lines, "unhandled_error") == []
    [line] = by_event(lines, "client_disconnected")
    assert line["level"] == "info" and line["path"] == path
    assert counted == 1.0
