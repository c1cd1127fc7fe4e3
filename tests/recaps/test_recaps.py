"""Recap pages: rendered by itself when the event closes, stored in a folder the app serves, fetched back over
HTTP; the RECAP message goes out once per confirmed attendee; re-rendered on demand; autoescaped; no script."""

from __future__ import annotations

import httpx
from httpx import AsyncClient

from stagevote.core.runtime import Runtime
from tests.attendees.conftest import messages
from tests.conftest import Actor
from tests.factories import live_show, web_fan
from tests.http import ok, problem
from tests.messaging.conftest import settle
from tests.reports.conftest import web_vote

SCRIPT_NAME = "<script>alert('owls')</script>"


async def test_closing_the_event_renders_its_recap_which_the_app_serves(
    client: AsyncClient, runtime: Runtime, admin: Actor, served: str
) -> None:
    show = await live_show(client, runtime, admin, names=("Owls", SCRIPT_NAME), rounds=[{"number": 1, "name": "Final"}])
    fans = [await web_fan(runtime, show.id) for _ in range(5)]
    for n, fan in enumerate(fans):
        await web_vote(client, show, fan, "Owls" if n < 3 else SCRIPT_NAME, 1)
    problem(await client.get(f"/events/{show.id}/recap"), 404)
    problem(await client.post(f"/events/{show.id}/recap", headers=admin.headers), 409)

    ok(await client.post(f"/events/{show.id}/close", headers=admin.headers))
    url = ok(await client.get(f"/events/{show.id}/recap"))["url"]
    assert url.startswith("http://testserver/recaps/") and url.endswith(".html")
    async with httpx.AsyncClient() as http:
        page = await http.get(url.replace("http://testserver", served))
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src" not in page.headers["content-security-policy"]
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    html = page.text
    assert show.event["title"] in html and "Winner: <strong>Owls</strong>" in html
    assert "&lt;script&gt;alert(&#39;owls&#39;)&lt;/script&gt;" in html and "<script" not in html.lower()
    assert "<svg" in html and "Votes per minute" in html and "60.0%" in html  # 3 of 5 votes
    assert all(f.phone not in html and f.phone.removeprefix("+1") not in html and f.email not in html for f in fans)
    seal = ok(await client.get(f"/events/{show.id}/rounds/1/seal"))
    assert seal["votes"] == 5 and f"<code>{seal['root']}</code>" in html  # the sealed root, for fans to check

    await settle(runtime)
    recaps = await messages(runtime, message_type="RECAP")
    assert sorted(m.attendee_id for m in recaps) == sorted(f.attendee_id for f in fans)
    assert all(url in m.body for m in recaps)
    again = ok(await client.post(f"/events/{show.id}/recap", headers=admin.headers), 201)
    assert again == {"url": url}
    assert len(await messages(runtime, message_type="RECAP")) == len(fans)  # once per attendee, ever
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{served}/recaps/..%2Fsecret_key")).status_code == 404
        assert (await http.get(f"{served}/recaps/999-nothing.html")).status_code == 404


async def test_a_hidden_leaderboard_stays_hidden_on_the_recap(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    show = await live_show(client, runtime, admin, names=("Owls", "Foxes"), leaderboardVisibility="hidden")
    await web_vote(client, show, await web_fan(runtime, show.id), "Foxes", 1)
    ok(await client.post(f"/events/{show.id}/close", headers=admin.headers))
    url = ok(await client.get(f"/events/{show.id}/recap"))["url"]
    html = (await client.get(url.removeprefix("http://testserver"))).text
    assert "Turnout" in html and "Foxes" not in html and "Winner" not in html
