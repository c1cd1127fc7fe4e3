"""`stagevote demo`: a live event with artists, an open round and votes, whose printed URLs and sign-in work."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from click.testing import CliRunner
from httpx import ASGITransport, AsyncClient

from stagevote.app import create_app
from stagevote.cli import _print_welcome, main  # _print_welcome: what `stagevote serve` says first
from stagevote.config import Settings
from stagevote.migrations import upgrade
from stagevote.web.demo import has_no_event

SECRET = "demo-test-secret-" + "d" * 40


@pytest.fixture
def demo_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A fresh, migrated SQLite database of its own (the demo is the same on any backend)."""
    for name in list(os.environ):
        if name.startswith("STAGEVOTE_") and not name.startswith("STAGEVOTE_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    asyncio.run(upgrade(url))
    env = {"STAGEVOTE_DATABASE_URL": url, "STAGEVOTE_SECRET_KEY": SECRET, "STAGEVOTE_PUBLIC_URL": "http://stage.test"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def demo_urls(output: str) -> dict[str, Any]:
    found = {
        "console": re.search(r"console\s+(\S+)\s+sign in as (\S+) / (\S+)", output),
        "screen": re.search(r"screen\s+http://stage\.test/e/(\d+)", output),
        "join": re.search(r"join\s+http://stage\.test/j/(\w+)", output),
        "ballots": re.findall(r"ballot\s+http://stage\.test/b/(\S+)", output),
    }
    assert all(found.values()), output
    return found


async def check_demo(settings: Settings, found: dict[str, Any]) -> None:
    console = found["console"]
    event_id = int(found["screen"].group(1))
    application = create_app(settings)
    transport = ASGITransport(app=application)
    async with LifespanManager(application), AsyncClient(transport=transport, base_url="http://stage.test") as http:
        login = await http.post("/auth/login", json={"email": console.group(2), "password": console.group(3)})
        assert login.status_code == 200 and login.json()["user"]["role"] == "admin"
        event = (await http.get(f"/events/{event_id}")).json()
        assert (event["status"], event["keyword"]) == ("live", found["join"].group(1))
        rounds = (await http.get(f"/events/{event_id}/rounds")).json()["items"]
        assert [r["status"] for r in rounds] == ["open", "pending"]
        board = (await http.get(f"/events/{event_id}/leaderboard")).json()
        assert [s["votes"] for s in board["standings"]] == [9, 6, 4, 2]
        for page in ("/console", f"/e/{event_id}", f"/j/{event['keyword']}", f"/b/{found['ballots'][0]}"):
            assert (await http.get(page)).status_code == 200, page
        english, spanish = found["ballots"]
        assert (await http.get("/ballot", headers={"Authorization": f"Bearer {spanish}"})).json()["language"] == "es"
        ballot = (await http.get("/ballot", headers={"Authorization": f"Bearer {english}"})).json()
        assert ballot == {"eventId": event_id, "language": "en", "mayVote": True, "reason": None}
        artist_id = board["standings"][-1]["artistId"]
        voted = await http.post(
            f"/events/{event_id}/vote",
            json={"round": 1, "artistId": artist_id, "token": "demo-vote"},
            headers={"Authorization": f"Bearer {english}"},
        )
        assert voted.status_code == 201, voted.text


def test_the_demo_makes_a_live_event_whose_printed_pages_and_sign_in_work(demo_settings: Settings) -> None:
    assert asyncio.run(has_no_event(demo_settings)) is True
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    found = demo_urls(result.output)
    assert found["join"].group(1) == "ROCKFEST"
    asyncio.run(check_demo(demo_settings, found))
    assert asyncio.run(has_no_event(demo_settings)) is False

    again = CliRunner().invoke(main, ["demo"])  # a second demo beside the first: its own keyword and admin
    assert again.exit_code == 0, again.output
    second = demo_urls(again.output)
    assert (second["join"].group(1), second["console"].group(2)) == ("ROCKFEST2", "demo2@example.com")


def test_the_demo_on_a_database_not_migrated_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["demo"],
        env={"STAGEVOTE_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}", "STAGEVOTE_SECRET_KEY": SECRET},
    )
    assert result.exit_code == 1
    assert "Has `stagevote migrate` been run on it?" in result.output


def test_serve_names_the_console_and_on_an_empty_database_the_demo(
    demo_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    _print_welcome(demo_settings, "0.0.0.0", 8123)  # noqa: S104
    first = capsys.readouterr().out
    assert "console http://127.0.0.1:8123/console · API docs http://127.0.0.1:8123/docs" in first
    assert "run `make demo`" in first
    assert CliRunner().invoke(main, ["demo"]).exit_code == 0
    capsys.readouterr()
    _print_welcome(demo_settings, "127.0.0.1", 8123)
    assert "make demo" not in capsys.readouterr().out  # there is an event now


def test_the_demo_on_another_port_prints_pages_on_that_port(
    demo_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make demo PORT=8766` (STAGEVOTE_PORT, no PUBLIC_URL): the printed pages are where `serve` will listen."""
    monkeypatch.delenv("STAGEVOTE_PUBLIC_URL")
    monkeypatch.setenv("STAGEVOTE_PORT", "8766")
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert re.search(r"screen\s+http://127\.0\.0\.1:8766/e/\d+", result.output), result.output
    assert re.search(r"ballot\s+http://127\.0\.0\.1:8766/b/\S+", result.output), result.output


@pytest.mark.parametrize(
    ("env", "public_url"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"STAGEVOTE_PORT": "9000", "STAGEVOTE_HOST": "0.0.0.0"}, "http://127.0.0.1:9000"),  # noqa: S104
        ({"STAGEVOTE_PORT": "9000", "STAGEVOTE_HOST": "::1"}, "http://[::1]:9000"),
        ({"STAGEVOTE_PORT": "9000", "STAGEVOTE_PUBLIC_URL": "https://vote.example.com/"}, "https://vote.example.com"),
    ],
)
def test_public_url_unset_is_where_the_server_listens(
    demo_settings: Settings, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], public_url: str
) -> None:
    monkeypatch.delenv("STAGEVOTE_PUBLIC_URL")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings().public_url == public_url
