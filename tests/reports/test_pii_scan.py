"""No phone number, e-mail or attendee id reaches a sponsor: every route a sponsor can call, over real HTTP
(JSON, CSV, XLSX cells, SSE frames, the recap page) and the Socket.IO leaderboard, scanned for the seeded
show's personal data; and the routes that hold personal data refuse the sponsor."""

from __future__ import annotations

import io
import re

import httpx
import openpyxl
from httpx import AsyncClient

from stagevote.core.runtime import Runtime
from tests.conftest import Actor, Actors
from tests.http import ok
from tests.messaging.conftest import settle
from tests.realtime.test_live import Screen
from tests.reports.conftest import EventStream, brand_of, seed_show

ENOUGH = 10.0
ATTENDEE_KEY = re.compile(r"attendee[_ ]?id", re.IGNORECASE)


def xlsx_text(content: bytes) -> str:
    book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    return "\n".join(
        "\t".join("" if c is None else str(c) for c in row)
        for sheet in book.worksheets
        for row in sheet.iter_rows(values_only=True)
    )


async def test_nothing_a_sponsor_can_reach_holds_personal_data(
    client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors, served: str
) -> None:
    seeded = await seed_show(client, runtime, admin)
    event_id = seeded.event_id
    brand = await brand_of(client, actors, event_id, admin)
    answers: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=served, headers=brand.headers, timeout=30) as http:
        async with EventStream(f"{served}/analytics/events/{event_id}", brand.headers) as stream:
            await stream.wait_for(lambda f: f.event == "analytics", ENOUGH)
            body = {"round": 3, "artistId": seeded.show.artists["Owls"], "token": "pii-scan-vote"}
            ok(await http.post(f"/events/{event_id}/vote", json=body, headers=seeded.web[13].headers), 201)
            await stream.wait_for(lambda f: f.event == "analytics" and f.json()["votes"]["total"] == 55, ENOUGH)
            await stream.wait_for(lambda f: f.comment is not None, ENOUGH)
            answers["sse"] = "\n".join(stream.raw)
        for dataset in ("votes", "attendees"):
            csv_answer = await http.get(f"/events/{event_id}/report", params={"dataset": dataset})
            assert csv_answer.status_code == 200
            answers[f"csv {dataset}"] = csv_answer.text
            xlsx_answer = await http.get(f"/events/{event_id}/report", params={"dataset": dataset, "format": "xlsx"})
            assert xlsx_answer.status_code == 200
            answers[f"xlsx {dataset}"] = xlsx_text(xlsx_answer.content)
        for path in (
            f"/analytics/events/{event_id}",
            f"/events/{event_id}",
            f"/events/{event_id}/artists",
            f"/events/{event_id}/rounds",
            *(f"/events/{event_id}/leaderboard?round={n}" for n in (1, 2, 3)),
            "/events",
            "/auth/profile",
        ):
            r = await http.get(path)
            assert r.status_code == 200, (path, r.text)
            answers[path] = r.text
        screen = Screen()
        await screen.connect(served)
        try:
            answers["socket.io subscribe"] = str(await screen.subscribe(event_id, brand.token))
        finally:
            await screen.client.disconnect()

        ok(await client.post(f"/events/{event_id}/close", headers=admin.headers))
        await settle(runtime)
        recap = ok(await http.get(f"/events/{event_id}/recap"))
        answers["recap"] = str(recap)
        page = await http.get(recap["url"].replace("http://testserver", served))
        assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
        answers["recap page"] = page.text

        for path in (  # where personal data lives, a sponsor is refused
            f"/events/{event_id}/attendees",
            f"/events/{event_id}/messages",
            f"/attendees/{seeded.web[0].attendee_id}/export",
            f"/events/{event_id}/sponsors",
        ):
            assert (await http.get(path)).status_code == 403, path

    secrets = seeded.secrets()
    assert len(secrets) == 3 * 20 + 14 - 20  # 20 phones in two spellings, 14 e-mails
    leaks = [(where, s) for where, text in answers.items() for s in secrets if s in text]
    assert leaks == []
    keys = [(where, m.group()) for where, text in answers.items() for m in ATTENDEE_KEY.finditer(text)]
    assert keys == []
    assert "Owls" in answers["csv votes"] and "Owls" in answers["recap page"]  # the scan saw real answers
