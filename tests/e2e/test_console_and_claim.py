"""The organizer runs an event from the console; an artist claims a profile from the invitation link."""

from __future__ import annotations

import asyncio
import re

from httpx import AsyncClient
from playwright.async_api import Browser, Route, expect

from tests.conftest import PASSWORD, Actor
from tests.e2e.conftest import WAIT_MS, assert_accessible, open_page, screenshot
from tests.factories import event_body
from tests.messaging.conftest import FakeTwilio


async def test_an_organizer_creates_an_event_invites_goes_live_opens_a_round_and_messages_the_room(
    browser: Browser, server: str, client: AsyncClient, admin: Actor, twilio: FakeTwilio
) -> None:
    console = await open_page(browser, f"{server}/console")
    page = console.page
    await assert_accessible(page, "console-sign-in")
    # the first call after signing in is refused as if the access token had expired: the console refreshes
    # it with the refresh token and carries on
    refreshed: list[str] = []
    page.on("request", lambda request: refreshed.append(request.url) if "/auth/refresh" in request.url else None)
    expired = {"status": 401, "content_type": "application/problem+json", "body": '{"title": "Unauthorized"}'}
    await page.route("**/events?limit=200", lambda route: route.fulfill(**expired), times=1)
    await page.get_by_label("E-mail", exact=True).fill(admin.email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    async with page.expect_request("**/auth/refresh", timeout=WAIT_MS):
        await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#who-email")).to_have_text(admin.email, timeout=WAIT_MS)
    await expect(page.locator("#events")).to_contain_text("No events yet", timeout=WAIT_MS)
    assert len(refreshed) == 1  # once: the refreshed token served the retried call
    # nothing of the session is kept where a script of another page, or the next visitor, could read it
    assert await page.evaluate("localStorage.length + sessionStorage.length + document.cookie.length") == 0

    await page.get_by_text("New event").click()
    await page.get_by_label("Title", exact=True).fill("Console Fest")
    await page.get_by_label("Keyword fans text").fill("CONSOLEFEST")
    await page.get_by_label("Rounds (one name per line)").fill("Heats\nFinal")
    await page.get_by_role("button", name="Create event").click()
    await expect(page.locator("#event-heading")).to_have_text("Console Fest", timeout=WAIT_MS)
    event_id = int(re.sub(r"\D", "", page.url.rsplit("/", 1)[1]))

    await page.get_by_label("Artist name").fill("The Owls")
    await page.get_by_role("button", name="Invite").click()
    await expect(page.get_by_label("Invitation link")).to_have_value(
        re.compile(rf"^{server}/claim/.+"), timeout=WAIT_MS
    )
    await expect(page.locator("#artists")).to_contain_text("pending")
    await page.get_by_role("button", name="Accept for The Owls").click()
    await expect(page.locator("#artists")).to_contain_text("accepted", timeout=WAIT_MS)

    await page.get_by_role("button", name="Publish").click()
    await expect(page.locator("#event-status")).to_have_text("published", timeout=WAIT_MS)

    # the event's answer comes after its rounds' (as on a slow link): the rounds are still drawn for a live event
    async def event_late(route: Route) -> None:
        await asyncio.sleep(0.5)
        await route.continue_()

    await page.route(re.compile(rf"/events/{event_id}$"), event_late)
    await page.get_by_role("button", name="Go live").click()
    await expect(page.locator("#event-status")).to_have_text("live", timeout=WAIT_MS)
    await page.unroute(re.compile(rf"/events/{event_id}$"))
    await expect(page.get_by_role("button", name="Open round 1")).to_be_enabled(timeout=WAIT_MS)
    await page.get_by_role("button", name="Open round 1").click()
    await expect(page.get_by_role("button", name="Close round 1")).to_be_visible(timeout=WAIT_MS)

    registered = await client.post(
        f"/events/{event_id}/attendees", json={"phoneNumber": "+12025550166"}, headers=admin.headers
    )
    assert registered.status_code == 201, registered.text
    await expect(page.locator("#count-joined")).to_have_text("1", timeout=WAIT_MS)

    await page.get_by_label("Text", exact=True).fill("Doors close at eleven: vote now!")
    await page.get_by_label("To", exact=True).select_option("confirmed")
    await page.get_by_label("To", exact=True).select_option("all")  # the count follows the audience
    await expect(page.locator("#bc-recipients")).to_have_text(re.compile(r"^Will reach 1 attendee\b"), timeout=WAIT_MS)
    await page.get_by_role("button", name="Send").click()
    await expect(page.locator("#bc-result")).to_have_text("Queued 1 message.", timeout=WAIT_MS)
    for _ in range(250):
        if twilio.to("+12025550166"):
            break
        await page.wait_for_timeout(20)
    assert [form["Body"] for form in twilio.to("+12025550166")] == ["Doors close at eleven: vote now!"]
    await expect(page.locator("#messages")).to_contain_text("Doors close at eleven", timeout=WAIT_MS)

    report = await client.get(f"/events/{event_id}/report?format=csv&dataset=attendees", headers=admin.headers)
    if report.status_code == 200:  # the reports API is there: the button downloads the file
        async with page.expect_download() as download:
            await page.get_by_role("button", name="Attendees (CSV)").click()
        assert (await download.value).suggested_filename.endswith(".csv")
    else:
        await page.get_by_role("button", name="Attendees (CSV)").click()
        await expect(page.locator("#report-error")).to_have_text("Reports are not available on this server yet.")

    await screenshot(page, "console-1920x1080", full_page=True)
    await assert_accessible(page, "console-event")
    console.assert_clean()


async def test_an_artist_claims_the_profile_from_the_invitation_link_and_accepts(
    browser: Browser, server: str, client: AsyncClient, admin: Actor
) -> None:
    event = (await client.post("/events", json=event_body(title="Claim Night"), headers=admin.headers)).json()
    assert (await client.post(f"/events/{event['id']}/publish", headers=admin.headers)).status_code == 200
    invited = await client.post(
        f"/events/{event['id']}/artists", json={"name": "Paper Lanterns"}, headers=admin.headers
    )
    invitation = invited.json()
    assert invitation["inviteUrl"].startswith(f"{server}/claim/")

    claim = await open_page(browser, invitation["inviteUrl"], phone=True)
    page = claim.page
    await expect(page.get_by_role("heading", name="Paper Lanterns")).to_be_visible()
    await expect(page.locator("header")).to_contain_text("Claim Night")
    await assert_accessible(page, "claim")
    await page.get_by_label("E-mail").fill("lanterns@example.com")
    await page.get_by_label("Password").fill("lanterns play loud")
    await page.get_by_role("button", name="Create account").tap()
    await expect(page.get_by_role("button", name="Accept")).to_be_visible(timeout=WAIT_MS)
    await page.get_by_role("button", name="Accept").tap()
    await expect(page.locator("#done")).to_contain_text("Accepted", timeout=WAIT_MS)
    await expect(page.locator("#invite-status")).to_have_text("accepted")
    await screenshot(page, "claim-390x844")

    line_up = (await client.get(f"/events/{event['id']}/artists", headers=admin.headers)).json()["items"]
    assert [(a["name"], a["inviteStatus"], a["status"]) for a in line_up] == [("Paper Lanterns", "accepted", "claimed")]
    assert line_up[0]["claimedByUserId"] is not None
    claim.assert_clean()
