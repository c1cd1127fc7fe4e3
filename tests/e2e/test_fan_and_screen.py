"""A fan joins on the web, confirms with the texted code and votes; the venue screen moves; rounds change live."""

from __future__ import annotations

import json
import re
import time

from httpx import AsyncClient
from playwright.async_api import Browser, expect

from stagevote.attendees.models import Attendee
from stagevote.core.db import unit_of_work
from stagevote.core.runtime import Runtime
from tests.conftest import Actor
from tests.e2e.conftest import (
    ARTIFACTS,
    WAIT_MS,
    LiveServer,
    assert_accessible,
    code_sent_to,
    open_page,
    screenshot,
)
from tests.factories import build_stage
from tests.messaging.conftest import FakeTwilio

FAN = "+12025550147"


async def standings(client: AsyncClient, event_id: int, admin: Actor) -> dict[str, int]:
    board = (await client.get(f"/events/{event_id}/leaderboard", headers=admin.headers)).json()
    return {s["name"]: s["votes"] for s in board["standings"]}


async def test_a_fan_joins_votes_and_the_screen_moves_then_the_round_closes_on_both(
    browser: Browser, server: str, client: AsyncClient, runtime: Runtime, admin: Actor, twilio: FakeTwilio
) -> None:
    stage = await build_stage(client, runtime, admin)
    keyword = (await client.get(f"/events/{stage.event_id}")).json()["keyword"]

    screen = await open_page(browser, f"{server}/e/{stage.event_id}")
    owls_bar = screen.page.locator(f'.row[data-artist-id="{stage.artists["Owls"]}"] .votes')
    await expect(owls_bar).to_have_text("0", timeout=WAIT_MS)
    await expect(screen.page.locator(".join-sms")).to_have_text(f"Text {keyword} to +1 202-555-0000")
    await screen.page.evaluate("window.sameDocument = true")  # gone if the page reloads

    phone = await open_page(browser, f"{server}/j/{keyword}", phone=True)
    await screenshot(phone.page, "join-390x844")
    await assert_accessible(phone.page, "join")
    await phone.page.get_by_label("Your mobile number").fill("+1 202 555 0147")
    await phone.page.get_by_role("button", name="Text me a code").tap()
    code = await code_sent_to(twilio, FAN)
    await phone.page.get_by_label("The 6-digit code we texted you").fill(code)
    await phone.page.get_by_role("button", name="Confirm and vote").tap()
    await phone.page.wait_for_url(re.compile(r"/b/[^/]+$"), timeout=WAIT_MS)

    owls = phone.page.get_by_role("button", name=re.compile(r"^Owls"))
    status = phone.page.locator("#status")
    await expect(status).to_have_text("Tap an artist to vote.", timeout=WAIT_MS)
    await phone.page.evaluate("window.sameDocument = true")
    await screenshot(phone.page, "ballot-390x844")
    await assert_accessible(phone.page, "ballot")

    tapped = time.monotonic()
    await owls.tap()
    await expect(owls_bar).to_have_text("1", timeout=WAIT_MS)
    moved_after = time.monotonic() - tapped
    await expect(status).to_have_text("Your vote for Owls is in. Thank you!")
    await expect(phone.page.locator("#note")).to_have_text(re.compile(r"^Receipt: [A-Z2-7]{16}$"))
    await expect(owls).to_have_attribute("aria-pressed", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "timings.json").write_text(json.dumps({"tap_to_screen_bar_seconds": round(moved_after, 3)}))
    print(f"tap on the ballot → the screen's bar moved: {moved_after:.3f} s (shared machine: indicative)")  # noqa: T201
    await screenshot(phone.page, "ballot-voted-390x844")
    await screenshot(screen.page, "screen-1920x1080")
    await assert_accessible(screen.page, "screen")

    await phone.page.get_by_role("button", name=re.compile(r"^Foxes")).tap()
    await expect(status).to_have_text("You already voted in this round.", timeout=WAIT_MS)
    assert await standings(client, stage.event_id, admin) == {"Owls": 1, "Foxes": 0, "Bears": 0}

    await stage.admin_post("/rounds/1/close")
    await expect(status).to_have_text(
        "Round 1 (Heats) is closed. Waiting for the next round: keep this page open.", timeout=WAIT_MS
    )
    await expect(screen.page.locator("#round-state")).to_have_text("Voting closed", timeout=WAIT_MS)
    await expect(phone.page.get_by_role("button", name=re.compile(r"^Owls"))).to_have_count(0)

    await stage.admin_post("/rounds/2/open")
    await expect(screen.page.locator("#round-name")).to_have_text("Final", timeout=WAIT_MS)
    await expect(owls_bar).to_have_text("0", timeout=WAIT_MS)
    await expect(status).to_have_text("Tap an artist to vote.", timeout=WAIT_MS)
    await stage.admin_post("/close")
    await expect(status).to_have_text("Voting is over. Thank you for taking part!", timeout=WAIT_MS)
    await expect(screen.page.locator("#round-state")).to_have_text("Final results", timeout=WAIT_MS)
    await screenshot(screen.page, "screen-results-1920x1080")

    assert await screen.page.evaluate("window.sameDocument") is True  # all of it live, no reload
    assert await phone.page.evaluate("window.sameDocument") is True
    screen.assert_clean()
    phone.assert_clean()


async def test_a_double_tap_counts_once_and_the_ballot_speaks_the_fans_language(
    browser: Browser, server: str, client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    stage = await build_stage(client, runtime, admin, votesPerRound=3)  # a second tap would count
    ballot = await stage.ballot()
    async with unit_of_work(runtime.sessionmaker) as session:
        attendee = await session.get(Attendee, ballot.attendee_id)
        assert attendee is not None
        attendee.language_pref = "es"

    phone = await open_page(browser, f"{server}/b/{ballot.token}", phone=True)
    status = phone.page.locator("#status")
    await expect(status).to_have_text("Toca un artista para votar. Tienes 3 votos en esta ronda.", timeout=WAIT_MS)
    assert await phone.page.evaluate("document.documentElement.lang") == "es"
    await phone.page.get_by_role("button", name=re.compile(r"^Bears")).dblclick()
    await expect(status).to_have_text("Tu voto por Bears está registrado. ¡Gracias!", timeout=WAIT_MS)
    assert await standings(client, stage.event_id, admin) == {"Bears": 1, "Foxes": 0, "Owls": 0}
    await screenshot(phone.page, "ballot-es-voted-390x844")

    # On a quick network the first answer is back before the second tap lands on the redrawn button.
    await phone.page.wait_for_timeout(600)
    foxes = phone.page.get_by_role("button", name=re.compile(r"^Foxes"))
    async with phone.page.expect_response(re.compile(r"/vote$")):
        await foxes.click()
    await expect(foxes).to_be_enabled()
    await foxes.click()
    await expect(status).to_have_text("Tu voto por Foxes está registrado. ¡Gracias!", timeout=WAIT_MS)
    await phone.page.wait_for_timeout(300)  # time for a second vote to arrive, were one sent
    assert await standings(client, stage.event_id, admin) == {"Bears": 1, "Foxes": 1, "Owls": 0}

    await phone.page.wait_for_timeout(600)  # a deliberate tap later is a vote again
    await phone.page.get_by_role("button", name=re.compile(r"^Owls")).click()
    await expect(status).to_have_text("Tu voto por Owls está registrado. ¡Gracias!", timeout=WAIT_MS)
    assert await standings(client, stage.event_id, admin) == {"Bears": 1, "Foxes": 1, "Owls": 1}
    phone.assert_clean()


async def test_a_hidden_leaderboard_never_shows_counts_and_a_screen_comes_back_by_itself(
    browser: Browser, live_server: LiveServer, client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    hidden = await build_stage(client, runtime, admin, leaderboardVisibility="hidden")
    assert (await hidden.vote(await hidden.ballot(), "Owls")).status_code == 201
    screen = await open_page(browser, f"{live_server.url}/e/{hidden.event_id}")
    await expect(screen.page.locator("#board-message")).to_have_text("Results at the end.", timeout=WAIT_MS)
    await expect(screen.page.locator(".row")).to_have_count(3)
    assert (await hidden.vote(await hidden.ballot(), "Owls")).status_code == 201
    await screen.page.wait_for_timeout(1000)  # time for a leaderboard emit, were one sent to the public
    assert await screen.page.locator(".row .votes").all_inner_texts() == ["", "", ""]
    assert await screen.page.locator("#total").inner_text() == ""
    await screenshot(screen.page, "screen-hidden-1920x1080")
    await assert_accessible(screen.page, "screen-hidden")

    shown = await build_stage(client, runtime, admin)
    screen = await open_page(browser, f"{live_server.url}/e/{shown.event_id}")
    owls_bar = screen.page.locator(f'.row[data-artist-id="{shown.artists["Owls"]}"] .votes')
    await expect(owls_bar).to_have_text("0", timeout=WAIT_MS)
    await screen.page.evaluate("window.sameDocument = true")
    await live_server.stop()  # every connection drops
    await expect(screen.page.locator("#connection")).to_be_visible(timeout=WAIT_MS)
    assert (await shown.vote(await shown.ballot(), "Owls")).status_code == 201  # while the screen is away
    await live_server.start()
    await expect(owls_bar).to_have_text("1", timeout=WAIT_MS)  # re-synced from the leaderboard endpoint
    await expect(screen.page.locator("#connection")).to_be_hidden()
    assert (await shown.vote(await shown.ballot(), "Owls")).status_code == 201
    await expect(owls_bar).to_have_text("2", timeout=WAIT_MS)  # and live again
    assert await screen.page.evaluate("window.sameDocument") is True
