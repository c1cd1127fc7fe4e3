"""The consent record: every opt-in and opt-out with its time, channel and exact words (or terms version), in the
attendee's export and the event's consent CSV (admins only); erasure keeps the fact and time, drops the rest."""

from __future__ import annotations

import csv
import io

import pytest
from httpx import AsyncClient
from pydantic import SecretStr

from stagevote.config import Settings
from stagevote.core.runtime import Runtime
from tests.attendees.conftest import code_in, web_join
from tests.conftest import Actor, Actors
from tests.factories import live_show, new_phone
from tests.http import ok, problem
from tests.messaging.conftest import settle
from tests.reports.conftest import brand_of
from tests.sms.conftest import AUTH_TOKEN, Phone

TERMS = "2027-03-terms"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "twilio_auth_token": SecretStr(AUTH_TOKEN),
            "twilio_account_sid": "AC" + "0" * 32,
            "terms_version": TERMS,
        }
    )


def consent_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_joins_stops_and_starts_are_kept_with_their_words(
    client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors
) -> None:
    show = await live_show(client, runtime, admin)
    other_show = await live_show(client, runtime, admin)
    phone = Phone(client, new_phone())
    await phone.text(f"  join {show.keyword.lower()} ")  # the words exactly as texted
    await phone.text(f"JOIN {other_show.keyword}")
    await phone.text("Stop")
    await phone.text("start")
    web_fan = new_phone()
    web_id = int(ok(await web_join(client, show.id, web_fan), 202)["attendeeId"])
    await settle(runtime)

    r = await client.get(f"/events/{show.id}/report", params={"dataset": "consent"}, headers=admin.headers)
    assert r.status_code == 200 and r.headers["content-disposition"].endswith('-consent.csv"')
    rows = consent_rows(r.text)
    assert [(c["phone_number"], c["kind"], c["channel"], c["words"], c["terms_version"]) for c in rows] == [
        (phone.number, "opt_in", "sms", f"  join {show.keyword.lower()} ", ""),
        (phone.number, "opt_out", "sms", "Stop", ""),  # a STOP holds across events: a row in each
        (phone.number, "opt_in", "sms", "start", ""),
        (web_fan, "opt_in", "web", "", TERMS),
    ]
    assert all(c["at"] for c in rows) and rows[-1]["attendee_id"] == str(web_id)
    other = consent_rows(
        (await client.get(f"/events/{other_show.id}/report", params={"dataset": "consent"}, headers=admin.headers)).text
    )
    assert [(c["kind"], c["words"]) for c in other] == [
        ("opt_in", f"JOIN {other_show.keyword}"),
        ("opt_out", "Stop"),
        ("opt_in", "start"),
    ]

    # admins only: a sponsor in privacy mode gets aggregates of votes and attendees, never the consent record
    brand = await brand_of(client, actors, show.id, admin)
    assert (await client.get(f"/events/{show.id}/report", headers=brand.headers)).status_code == 200
    problem(await client.get(f"/events/{show.id}/report", params={"dataset": "consent"}, headers=brand.headers), 403)
    problem(await client.get(f"/events/{show.id}/report", params={"dataset": "consent"}), 401)


async def test_the_export_holds_the_consents_and_erasure_keeps_only_the_fact(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    show = await live_show(client, runtime, admin)
    phone = Phone(client, new_phone())
    code = code_in(await phone.text(f"JOIN {show.keyword}") or "")
    await phone.text(code)
    attendee_id = int(ok(await web_join(client, show.id, phone.number), 202)["attendeeId"])
    await phone.text("STOP")
    await settle(runtime)

    export = ok(await client.get(f"/attendees/{attendee_id}/export", headers=admin.headers))
    assert [(c["kind"], c["channel"], c["words"], c["termsVersion"]) for c in export["consents"]] == [
        ("opt_in", "sms", f"JOIN {show.keyword}", None),
        ("opt_in", "web", None, TERMS),
        ("opt_out", "sms", "STOP", None),
    ]
    assert all(c["eventId"] == show.id and c["at"] for c in export["consents"])

    assert (await client.delete(f"/attendees/{attendee_id}", headers=admin.headers)).status_code == 204
    erased = ok(await client.get(f"/attendees/{attendee_id}/export", headers=admin.headers))["consents"]
    assert [(c["kind"], c["channel"], c["words"], c["termsVersion"]) for c in erased] == [
        ("opt_in", "sms", None, None),
        ("opt_in", "web", None, TERMS),
        ("opt_out", "sms", None, None),
    ]
    assert [c["at"] for c in erased] == [c["at"] for c in export["consents"]]  # the fact and its time stay
    report = (await client.get(f"/events/{show.id}/report", params={"dataset": "consent"}, headers=admin.headers)).text
    assert phone.number not in report and show.keyword not in report
    assert [(c["attendee_id"], c["kind"]) for c in consent_rows(report)] == [
        (str(attendee_id), "opt_in"),
        (str(attendee_id), "opt_in"),
        (str(attendee_id), "opt_out"),
    ]
