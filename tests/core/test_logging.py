"""Structured logs: JSON lines tagged with the request id, and a configuration that can be applied again."""

from __future__ import annotations

import io
import json
import logging
import os
import re
from typing import Any

import pytest
import structlog
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from stagevote.app import create_app
from stagevote.config import Settings
from stagevote.core.logging import configure_logging, new_request_id
from stagevote.core.queue import TaskQueue


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of `text` must be a JSON object: that is what a log shipper will parse."""
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def by_event(lines: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("event") == event]


async def call(application: FastAPI, path: str, **headers: str) -> int:
    async with LifespanManager(application):
        transport = ASGITransport(app=application, raise_app_exceptions=False)
        async with AsyncClient(transport=transport, base_url="http://testserver") as http:
            return (await http.get(path, headers=headers)).status_code


def logging_app(settings: Settings) -> FastAPI:
    application = create_app(settings.model_copy(update={"log_format": "json"}))

    async def chatty() -> dict[str, str]:
        structlog.get_logger("tests.chatty").info("structlog_line", answer=42)
        logging.getLogger("tests.chatty").warning("stdlib line")
        return {"ok": "yes"}

    async def boom() -> None:
        raise RuntimeError("kaboom")

    application.add_api_route("/chatty", chatty)
    application.add_api_route("/boom", boom)
    return application


async def test_json_log_lines_of_a_request_carry_its_id(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    application = logging_app(settings)
    capsys.readouterr()
    assert await call(application, "/chatty", **{"X-Request-ID": "abc-123"}) == 200
    lines = json_lines(capsys.readouterr().err)
    [from_structlog] = by_event(lines, "structlog_line")
    assert from_structlog["request_id"] == "abc-123"
    assert from_structlog["answer"] == 42
    assert from_structlog["level"] == "info"
    assert from_structlog["logger"] == "tests.chatty"
    assert from_structlog["timestamp"].endswith("Z")
    [from_stdlib] = by_event(lines, "stdlib line")  # libraries' stdlib records get the same treatment
    assert from_stdlib["request_id"] == "abc-123"
    assert from_stdlib["level"] == "warning"


async def test_the_log_line_of_an_unhandled_error_carries_the_request_id(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    application = logging_app(settings)
    capsys.readouterr()
    assert await call(application, "/boom", **{"X-Request-ID": "req-boom"}) == 500
    [line] = by_event(json_lines(capsys.readouterr().err), "unhandled_error")
    assert line["request_id"] == "req-boom"
    assert line["level"] == "error"
    assert line["path"] == "/boom"
    assert "RuntimeError: kaboom" in line["exception"]


async def test_log_lines_outside_a_request_have_no_request_id(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    application = logging_app(settings)
    assert await call(application, "/chatty", **{"X-Request-ID": "abc-123"}) == 200
    capsys.readouterr()
    structlog.get_logger("tests.after").info("after_the_request")
    [line] = by_event(json_lines(capsys.readouterr().err), "after_the_request")
    assert "request_id" not in line


def test_configure_logging_can_run_again_without_doubling_lines(capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(3):
        configure_logging(log_format="json", level="INFO")
    capsys.readouterr()
    structlog.get_logger("tests.repeat").info("said_once")
    assert len(by_event(json_lines(capsys.readouterr().err), "said_once")) == 1
    configure_logging(log_format="console", level="WARNING")  # the last call wins
    structlog.get_logger("tests.repeat").info("below_the_level")
    structlog.get_logger("tests.repeat").warning("console_line")
    err = capsys.readouterr().err
    assert "below_the_level" not in err
    assert "console_line" in err
    assert not err.lstrip().startswith("{")


def test_configure_logging_leaves_other_handlers_alone(caplog: pytest.LogCaptureFixture) -> None:
    configure_logging(log_format="json", level="INFO")
    logging.getLogger("tests.others").warning("seen by pytest too")
    assert "seen by pytest too" in caplog.messages


def test_logs_follow_stderr_when_it_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    configure_logging(log_format="json", level="INFO")
    replacement = io.StringIO()
    monkeypatch.setattr("sys.stderr", replacement)
    structlog.get_logger("tests.stream").info("to_the_new_stderr")
    assert by_event(json_lines(replacement.getvalue()), "to_the_new_stderr")


def test_generated_request_ids_are_unique_and_a_forked_process_draws_its_own() -> None:
    ids = [new_request_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its next id, to the parent
        os.write(writer, new_request_id().encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    from_child = os.read(reader, 64).decode()
    os.close(reader)
    # a child that kept the parent's random part would repeat the parent's next ids (same count, same part)
    assert from_child[:20] != new_request_id()[:20]


async def test_a_task_run_says_nothing_at_info_but_a_failing_task_is_still_logged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The outbox drain runs every second: taskiq's "Executing task" line each time was noise in every log."""
    configure_logging(log_format="json", level="INFO")
    queue = TaskQueue("memory://", queue_name="quiet")

    async def fine() -> None:
        return None

    async def broken() -> None:
        raise RuntimeError("the provider is down")

    queue.register("fine", fine)
    queue.register("broken", broken)
    await queue.start()
    try:
        capsys.readouterr()
        await queue.enqueue("fine")
        await queue.enqueue("broken")
        await queue.broker.wait_all()  # type: ignore[attr-defined]
    finally:
        await queue.stop()
    lines = json_lines(capsys.readouterr().err)
    assert [line for line in lines if "Executing task" in line["event"]] == []
    assert any("the provider is down" in line.get("exception", "") for line in lines)  # a failure still is

    configure_logging(log_format="json", level="DEBUG")  # asked for everything, it says everything
    assert logging.getLogger("taskiq.receiver.receiver").isEnabledFor(logging.INFO)
    configure_logging(log_format="json", level="INFO")
