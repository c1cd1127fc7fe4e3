"""The organizer's list: pre-registering one number or a CSV file, listing with filters, who may do it."""

from __future__ import annotations

from httpx import AsyncClient

from stagevote.attendees import service as attendees_service
from stagevote.core.runtime import Runtime
from tests.attendees.conftest import attendees_of, code_in, joined
from tests.conftest import Actor, Actors
from tests.factories import make_event, new_phone
from tests.http import ok, problem


def attendees_url(event_id: int) -> str:
    return f"/events/{event_id}/attendees"


async def test_pre_registering_one_number(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    event = await make_event(client, admin, status="draft", access="private")
    r = await client.post(
        attendees_url(event["id"]),
        json={"phoneNumber": "202-555-0175", "email": "Guest@Example.com"},
        headers=admin.headers,
    )
    attendee = ok(r, 201)
    assert attendee["phoneNumber"] == "+12025550175"
    assert attendee["email"] == "guest@example.com"
    assert attendee["preRegistered"] is True and attendee["confirmedAt"] is None and attendee["optedOut"] is False
    assert attendee["eventId"] == event["id"]

    again = await client.post(attendees_url(event["id"]), json={"phoneNumber": "+12025550175"}, headers=admin.headers)
    problem(again, 409)
    bad = await client.post(attendees_url(event["id"]), json={"phoneNumber": "555"}, headers=admin.headers)
    assert problem(bad, 422)["errors"][0]["field"] == "phoneNumber"
    missing = await client.post(attendees_url(event["id"]), json={"email": "a@example.com"}, headers=admin.headers)
    assert problem(missing, 422)["errors"][0]["field"] == "phoneNumber"
    broken = await client.post(
        attendees_url(event["id"]), content=b"{not json", headers={**admin.headers, "Content-Type": "application/json"}
    )
    problem(broken, 422)
    assert len(await attendees_of(runtime, "+12025550175")) == 1


async def test_an_attendee_who_joined_already_is_409_to_pre_register(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin, access="hybrid")
    phone = new_phone()
    await joined(client, runtime, event["id"], phone)
    problem(await client.post(attendees_url(event["id"]), json={"phoneNumber": phone}, headers=admin.headers), 409)


async def test_registration_needs_an_event_that_is_not_over(client: AsyncClient, admin: Actor) -> None:
    problem(await client.post(attendees_url(999999), json={"phoneNumber": new_phone()}, headers=admin.headers), 404)
    for status in ("closed", "archived"):
        event = await make_event(client, admin, status=status)
        r = await client.post(attendees_url(event["id"]), json={"phoneNumber": new_phone()}, headers=admin.headers)
        problem(r, 409)
    live = await make_event(client, admin, status="live")
    ok(await client.post(attendees_url(live["id"]), json={"phoneNumber": new_phone()}, headers=admin.headers), 201)


CSV = (
    "phoneNumber,email\n"  # line 1
    "+12025550101,one@example.com\n"  # 2
    "(202) 555-0102,\n"  # 3: national format, no e-mail
    "\n"  # 4: blank lines are skipped
    "+12025550101,again@example.com\n"  # 5: repeated in the file
    "12345,bad@example.com\n"  # 6: not a phone number
    "+12025550103,not-an-email\n"  # 7
    ",nobody@example.com\n"  # 8: no number
    "+12025550104,TWO@EXAMPLE.COM\n"  # 9: already an attendee (below)
    "+34612345678,\n"  # 10: a Spanish mobile
)


async def test_a_csv_upload_reports_created_duplicates_and_invalid_lines(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin, access="private")
    ok(await client.post(attendees_url(event["id"]), json={"phoneNumber": "+12025550104"}, headers=admin.headers), 201)
    r = await client.post(
        attendees_url(event["id"]), content=CSV.encode(), headers={**admin.headers, "Content-Type": "text/csv"}
    )
    report = ok(r, 200)
    assert report["created"] == 3
    assert report["duplicates"] == 2
    assert [(p["line"], p["message"].split(":")[0]) for p in report["invalid"]] == [
        (6, "phoneNumber"),
        (7, "email"),
        (8, "phoneNumber"),
    ]
    listed = ok(await client.get(attendees_url(event["id"]), headers=admin.headers))
    assert listed["total"] == 4
    by_phone = {a["phoneNumber"]: a for a in listed["items"]}
    assert set(by_phone) == {"+12025550101", "+12025550102", "+12025550104", "+34612345678"}
    assert by_phone["+12025550101"]["email"] == "one@example.com"  # the first line of a repeated number wins
    assert all(a["preRegistered"] for a in listed["items"])

    # the same file again: everything is a duplicate now, nothing changes
    again = ok(
        await client.post(
            attendees_url(event["id"]), content=CSV.encode(), headers={**admin.headers, "Content-Type": "text/csv"}
        )
    )
    assert (again["created"], again["duplicates"], len(again["invalid"])) == (0, 5, 3)

    # uploaded numbers may join the private event
    attendee_id, body = await joined(client, runtime, event["id"], "+34612345678")
    ok(await client.post(f"/attendees/{attendee_id}/confirm", json={"code": code_in(body)}))


async def test_a_csv_file_as_multipart_form_data(client: AsyncClient, admin: Actor) -> None:
    event = await make_event(client, admin, access="private")
    content = "\ufeffPhone Number,Email\r\n+12025550111,a@example.com\r\n+12025550112,b@example.com\r\n"
    files = {"file": ("guests.csv", content.encode(), "text/csv")}
    report = ok(await client.post(attendees_url(event["id"]), files=files, headers=admin.headers))
    assert report == {"created": 2, "duplicates": 0, "invalid": []}


async def test_a_csv_without_a_header_or_of_the_wrong_kind_is_refused(client: AsyncClient, admin: Actor) -> None:
    event = await make_event(client, admin)
    csv_headers = {**admin.headers, "Content-Type": "text/csv"}
    r = await client.post(attendees_url(event["id"]), content=b"+12025550101,a@example.com\n", headers=csv_headers)
    assert problem(r, 422)["errors"][0]["field"] == "file"
    r = await client.post(attendees_url(event["id"]), content=b"", headers=csv_headers)
    assert problem(r, 422)["errors"][0]["field"] == "file"
    r = await client.post(attendees_url(event["id"]), content=b"phoneNumber\n\xff\xfe\n", headers=csv_headers)
    assert problem(r, 422)["errors"][0]["field"] == "file"
    r = await client.post(
        attendees_url(event["id"]), content=b"<xml/>", headers={**admin.headers, "Content-Type": "application/xml"}
    )
    problem(r, 415)
    r = await client.post(attendees_url(event["id"]), files={"note": (None, "no file")}, headers=admin.headers)
    assert problem(r, 422)["errors"][0]["field"] == "file"
    big = b"phoneNumber\n" + b"+12025550101\n" * 500_000
    problem(await client.post(attendees_url(event["id"]), content=big, headers=csv_headers), 413)


async def test_listing_filters_and_pages(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    event = await make_event(client, admin)
    phones = [new_phone() for _ in range(5)]
    ids = []
    for phone in phones:
        attendee_id, body = await joined(client, runtime, event["id"], phone)
        ids.append(attendee_id)
        if len(ids) <= 2:
            ok(await client.post(f"/attendees/{attendee_id}/confirm", json={"code": code_in(body)}))
    async with runtime.sessionmaker() as session:
        await attendees_service.opt_out(session=session, runtime=runtime, phone_number=phones[4])
        await session.commit()

    async def listing(**params: object) -> dict[str, object]:
        return ok(await client.get(attendees_url(event["id"]), params=params, headers=admin.headers))

    everyone = await listing()
    assert everyone["total"] == 5 and everyone["limit"] == 50 and everyone["offset"] == 0
    items = everyone["items"]
    assert isinstance(items, list) and [a["id"] for a in items] == ids  # in the order they joined
    assert [a["id"] for a in (await listing(confirmed="true"))["items"]] == ids[:2]  # type: ignore[index]
    assert [a["id"] for a in (await listing(confirmed="false"))["items"]] == ids[2:]  # type: ignore[index]
    assert [a["id"] for a in (await listing(optedOut="true"))["items"]] == ids[4:]  # type: ignore[index]
    assert (await listing(optedOut="false", confirmed="false"))["total"] == 2
    page = await listing(limit=2, offset=2)
    assert page["total"] == 5 and [a["id"] for a in page["items"]] == ids[2:4]  # type: ignore[union-attr]
    problem(await client.get(attendees_url(event["id"]), params={"limit": 0}, headers=admin.headers), 422)
    problem(await client.get(attendees_url(999999), headers=admin.headers), 404)


async def test_only_admins_manage_the_list(client: AsyncClient, admin: Actor, actors: Actors) -> None:
    event = await make_event(client, admin)
    url = attendees_url(event["id"])
    body = {"phoneNumber": new_phone()}
    problem(await client.get(url), 401)
    problem(await client.post(url, json=body), 401)
    for role in ("fan", "artist", "brand", "developer"):
        who = await actors.make(role)
        problem(await client.get(url, headers=who.headers), 403)
        problem(await client.post(url, json=body, headers=who.headers), 403)
    ok(await client.post(url, json=body, headers=admin.headers), 201)
