"""Meeting types changed, retired and deleted; working hours; the public
booking page, its free slots and a patient's booking through the real app
(SQLite file), with the confirmation through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from signalling.api.booking import LIMITS
from signalling.throttle import WindowLimiter
from tests.service.api_support import ADA, BASE_URL, NOW, Api, make_api
from tests.service.mail_support import WAIT, Inbox, mail_api, mail_settings, serving_inbox

#: Ada's working hours: Wednesdays 09:00-11:00 UTC; NOW is Tuesday 14 January 2025
WEDNESDAY = NOW + timedelta(days=1)
HOURS = {"timezone": "UTC", "ranges": [{"weekday": 2, "start": "09:00", "end": "11:00"}]}


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@pytest.fixture
async def api(aiohttp_client: Any, tmp_path: Path) -> Api:
    return await make_api(aiohttp_client, tmp_path)


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with serving_inbox() as box:
        yield box


def ada_page(api: Api) -> str:
    return f"/api/book/{api.own_room(ADA).slug}"


async def offer(api: Api, **fields: Any) -> dict[str, Any]:
    """Make the seeded Consultation bookable online (with ``fields``) and set
    Ada's working hours."""
    body = {"online_bookable": True, **fields}
    reply = await api.call("PATCH", "/api/meeting-types/consult", role="host", json=body)
    assert reply.status == 200, reply.body
    reply = await api.call("PUT", f"/api/members/{ADA}/working-hours", role="host", json=HOURS)
    assert reply.status == 200, reply.body
    meeting_type: dict[str, Any] = reply.body and body
    return meeting_type


def booking(start: datetime, email: str = "pat@example.org", **guest: str) -> dict[str, Any]:
    return {
        "type": "consult",
        "start": iso(start),
        "guest": {"name": "Pat Example", "email": email, **guest},
    }


async def slots(api: Api, type_id: str = "consult") -> list[str]:
    reply = await api.call("GET", f"{ada_page(api)}/slots?type={type_id}")
    assert reply.status == 200, reply.body
    found: list[str] = reply.body["slots"]
    return found


async def test_meeting_types_are_changed_retired_and_deleted(api: Api) -> None:
    reply = await api.call(
        "PATCH", "/api/meeting-types/consult", role="member",
        json={"label": "Follow-up", "address": "1 Quay St", "duration": 1200, "kinds": ["phone"]},
    )  # fmt: skip
    assert reply.status == 200
    changed = reply.body["meeting_type"]
    assert (changed["label"], changed["address"], changed["duration"]) == (
        "Follow-up",
        "1 Quay St",
        1200,
    )
    assert changed["kinds"] == ["phone"] and changed["retired"] is False
    for bad, status in (({"duration": 60}, 422), ({"label": ""}, 422), ({"kinds": ["fax"]}, 422),
                        ({"online_bookable": "yes"}, 400)):  # fmt: skip
        reply = await api.call("PATCH", "/api/meeting-types/consult", role="host", json=bad)
        assert reply.status == status, bad
    # another team's type is not there for team B
    reply = await api.call("PATCH", "/api/meeting-types/consult", role="other_member", json={})
    assert reply.status == 404
    reply = await api.call("DELETE", "/api/meeting-types/consult", role="other_member")
    assert reply.status == 404

    # unused: deleted
    created = await api.call(
        "POST", "/api/meeting-types", role="host", json={"label": "Spare", "duration": 900}
    )
    spare = created.body["meeting_type"]["id"]
    assert (await api.call("DELETE", f"/api/meeting-types/{spare}", role="host")).status == 204
    listed = await api.call("GET", "/api/meeting-types", role="host")
    assert [t["id"] for t in listed.body["meeting_types"]] == ["consult"]
    assert (await api.call("DELETE", f"/api/meeting-types/{spare}", role="host")).status == 404

    # in use by a meeting: retired, kept, and offered no more for new meetings
    new = {"guest": {"name": "Alex", "email": "alex@example.org"}, "type": "consult",
           "start": iso(NOW + timedelta(days=2))}  # fmt: skip
    assert (await api.call("POST", "/api/meetings", role="host", json=new)).status == 201
    reply = await api.call("DELETE", "/api/meeting-types/consult", role="api_key")
    assert reply.status == 200 and reply.body["meeting_type"]["retired"] is True
    reply = await api.call("POST", "/api/meetings", role="host", json=new)
    assert reply.status == 422 and "retired" in reply.body["error"]["message"]
    reply = await api.call(
        "PATCH", "/api/meeting-types/consult", role="host", json={"retired": False}
    )
    assert reply.body["meeting_type"]["retired"] is False
    assert (await api.call("POST", "/api/meetings", role="host", json=new)).status == 201


async def test_working_hours_are_set_by_the_member_or_an_administrator(api: Api) -> None:
    path = f"/api/members/{ADA}/working-hours"
    reply = await api.call("GET", path, role="member")
    assert reply.body["working_hours"] == {
        "member": ADA, "timezone": "UTC", "ranges": [], "days_off": [],
        "booking_url": f"{BASE_URL}/book/{api.own_room(ADA).slug}",
    }  # fmt: skip
    body = {
        "timezone": "Europe/London",
        "ranges": [{"weekday": 4, "start": "13:00", "end": "24:00"},
                   {"weekday": 0, "start": "09:00", "end": "12:30"}],
        "days_off": ["2025-02-03"],
    }  # fmt: skip
    reply = await api.call("PUT", path, role="host", json=body)
    assert reply.status == 200
    assert reply.body["working_hours"]["ranges"] == [
        {"weekday": 0, "start": "09:00", "end": "12:30"},
        {"weekday": 4, "start": "13:00", "end": "24:00"},
    ]
    assert (await api.call("GET", path, role="api_key")).body == reply.body
    # a colleague may not; an API key of the team may; another team sees no Ada
    assert (await api.call("PUT", path, role="member", json=body)).status == 403
    assert (await api.call("PUT", path, role="api_key", json=HOURS)).status == 200
    assert (await api.call("PUT", path, role="other_member", json=HOURS)).status == 404
    assert (await api.call("GET", path, role="anonymous")).status == 401
    for bad, status in (
        ({"timezone": "Mars/Olympus"}, 422),
        ({"timezone": "UTC", "ranges": [{"weekday": 1, "start": "09:00", "end": "08:00"}]}, 422),
        ({"timezone": "UTC", "ranges": [{"weekday": 1, "start": "9am", "end": "10:00"}]}, 422),
        ({"timezone": "UTC", "ranges": [{"weekday": 1, "start": "09:00", "end": "11:00"},
                                        {"weekday": 1, "start": "10:00", "end": "12:00"}]}, 422),
        ({"timezone": "UTC", "days_off": ["someday"]}, 422),
        ({"timezone": "UTC", "ranges": [{"weekday": "mon", "start": "09:00", "end": "1"}]}, 400),
        ({"ranges": []}, 422),
    ):  # fmt: skip
        reply = await api.call("PUT", path, role="host", json=bad)
        assert reply.status == status, bad
    # nothing of the refused bodies was stored
    assert (await api.call("GET", path, role="host")).body["working_hours"]["timezone"] == "UTC"


async def test_the_public_page_shows_the_clinician_practice_and_offered_types(api: Api) -> None:
    await offer(api, description="A first talk", address="1 Quay St")
    hidden = {"label": "Staff only", "duration": 900}
    await api.call("POST", "/api/meeting-types", role="host", json=hidden)
    retired = {"label": "Old", "duration": 900, "online_bookable": True}
    old = (await api.call("POST", "/api/meeting-types", role="host", json=retired)).body
    await api.call("PATCH", f"/api/meeting-types/{old['meeting_type']['id']}", role="host",
                   json={"retired": True})  # fmt: skip
    reply = await api.call("GET", ada_page(api))
    assert reply.status == 200
    page = reply.body
    assert page["clinician"] == {
        "name": "Ada Jones",
        "title": "Dr",
        "speciality": "GP",
        "contact": "",
    }
    assert page["practice"] == {"name": "Harbour Clinic", "email": "a@a.example.org", "phone": ""}
    assert page["legal"] == api.settings.booking_legal_notice and page["timezone"] == "UTC"
    assert [(t["id"], t["address"], t["description"]) for t in page["types"]] == [
        ("consult", "1 Quay St", "A first talk")
    ]
    # shared rooms, unknown slugs and types not offered are not there
    reception = next(r.slug for r in api.rooms.values() if r.team_id == "team-a" and r.shared)
    for path in (f"/api/book/{reception}", "/api/book/nobody-here",
                 f"{ada_page(api)}/slots?type={old['meeting_type']['id']}",
                 f"{ada_page(api)}/slots?type=b-consult", f"{ada_page(api)}/slots"):  # fmt: skip
        assert (await api.call("GET", path)).status == 404, path


async def test_free_slots_are_working_hours_minus_the_clinicians_meetings(api: Api) -> None:
    await offer(api)
    await api.add_meeting(ADA, start=WEDNESDAY + timedelta(minutes=30))  # 09:30-10:00
    cancelled, _ = await api.add_meeting(ADA, start=WEDNESDAY + timedelta(hours=1, minutes=30))
    reply = await api.call("POST", f"/api/meetings/{cancelled.id}/cancel", role="host")
    assert reply.status == 200
    await api.add_meeting("sam", start=WEDNESDAY + timedelta(hours=1))  # a colleague's
    free = await slots(api)
    wednesdays = [WEDNESDAY + timedelta(weeks=n) for n in range(4)]
    expected = [WEDNESDAY, WEDNESDAY + timedelta(hours=1), WEDNESDAY + timedelta(hours=1.5)]
    for day in wednesdays[1:]:
        expected += [day + timedelta(minutes=30 * n) for n in range(4)]
    assert free == [iso(s) for s in expected]
    # a day off takes a Wednesday away
    off = {**HOURS, "days_off": ["2025-01-22"]}
    await api.call("PUT", f"/api/members/{ADA}/working-hours", role="host", json=off)
    assert [s for s in await slots(api) if s.startswith("2025-01-22")] == []


async def test_a_patient_books_online_and_gets_the_confirmation_with_the_link(
    aiohttp_client: Any, tmp_path: Path, inbox: Inbox
) -> None:
    api = await mail_api(aiohttp_client, mail_settings(tmp_path, inbox))
    await offer(api, address="1 Quay Street", instructions="Bring your medication list.")
    start = WEDNESDAY + timedelta(minutes=30)
    reply = await api.call("POST", ada_page(api), json=booking(start, phone="+44 20 7946 0000"))
    assert reply.status == 201, reply.body
    booked = reply.body["booking"]
    assert booked["start"] == iso(start) and booked["clinician"] == "Ada Jones"
    assert "token" not in orjson.dumps(reply.body).decode()
    assert iso(start) not in await slots(api)

    await inbox.until(received=1)
    mail = inbox.received[0]
    assert mail.envelope_to == ["pat@example.org"]
    assert "Address: 1 Quay Street" in mail.text and "Bring your medication list." in mail.text
    assert "1 Quay Street" in mail.html
    (token,) = mail.links()
    event = next(iter(mail.calendar().walk("VEVENT")))  # type: ignore[union-attr]
    assert event.decoded("dtstart") == start and str(event["url"]) == f"{BASE_URL}/join/{token}"

    # the meeting is Ada's, in her room, of the type; the link opens its waiting room
    meeting = (await api.call("GET", f"/api/meetings/{booked['meeting']}", role="host")).body
    assert meeting["meeting"]["guest"]["phone"] == "+44 20 7946 0000"
    api.clock.set(start - timedelta(minutes=5))
    ws = await api.client.ws_connect("/ws")
    await ws.send_str(orjson.dumps({"type": "hello", "token": token}).decode())
    welcome = await ws.receive_json(timeout=WAIT)
    await ws.close()
    assert welcome["type"] == "welcome" and welcome["meeting"] == booked["meeting"]
    assert welcome["address"] == "1 Quay Street"
    assert welcome["instructions"] == "Bring your medication list."

    # the same time again: taken
    api.clock.set(NOW)
    again = await api.call("POST", ada_page(api), json=booking(start, "sam@example.org"))
    assert (again.status, again.code) == (409, "slot_taken")


async def test_an_online_booking_is_audited_as_the_page_and_marked_booked_online(
    api: Api,
) -> None:
    """The audit names the page, the action and the meeting, never the patient;
    the meeting's view (the overview's) says it was booked online, and one the
    practice booked says it was not."""
    await offer(api)
    start = WEDNESDAY + timedelta(minutes=30)
    details = booking(start, "pat.online@example.org", phone="+44 20 7946 0999")
    details["guest"]["name"] = "Pat Online"
    reply = await api.call("POST", ada_page(api), json=details)
    assert reply.status == 201, reply.body
    booked = reply.body["booking"]["meeting"]

    ada = api.staff[ADA]
    assert ada.team_id is not None
    entries = await api.store.list_audit(ada.org_id, team_id=ada.team_id)
    (entry,) = [e for e in entries if e.action == "meeting.book_online"]
    assert (entry.actor_id, entry.team_id, entry.target) == ("booking-page", ada.team_id, booked)
    assert entry.at == NOW
    written = repr(entry).lower()
    assert "pat online" not in written and "pat.online" not in written and "0999" not in written

    shown = await api.call("GET", f"/api/meetings/{booked}", role="host")
    assert shown.body["meeting"]["booked_online"] is True
    practice, _ = await api.add_meeting()
    listed = await api.call("GET", "/api/meetings?scope=my", role="host")
    marks = {m["id"]: m["booked_online"] for m in listed.body["meetings"]}
    assert marks[booked] is True and marks[practice.id] is False


async def test_concurrent_bookings_of_the_last_slot_give_it_to_one_patient(api: Api) -> None:
    await offer(api)
    start = WEDNESDAY + timedelta(hours=1)
    replies = await asyncio.gather(
        *(
            api.call("POST", ada_page(api), json=booking(start, f"p{n}@example.org"))
            for n in range(5)
        )
    )
    assert sorted(r.status for r in replies) == [201, 409, 409, 409, 409]
    assert {r.code for r in replies if r.status == 409} == {"slot_taken"}
    meetings = await api.store.list_meetings("team-a", host_ids=[ADA])
    assert [m.start for m in meetings] == [start]


async def test_known_patients_only_refuses_unknown_emails_and_says_nothing_more(api: Api) -> None:
    await offer(api, known_patients_only=True)
    await api.add_meeting(ADA, start=NOW + timedelta(hours=2))  # alex.morgan@example.org
    start = WEDNESDAY
    api.app[LIMITS].by_address = WindowLimiter(100, 3600.0)  # more tries than the default
    refusals = []
    for email in ("stranger@example.org", "bob@b.example.org"):
        reply = await api.call("POST", ada_page(api), json=booking(start, email))
        assert (reply.status, reply.code) == (403, "known_patients_only")
        refusals.append(reply.body)
    assert refusals[0] == refusals[1]
    assert "stranger" not in orjson.dumps(refusals[0]).decode()
    # booking an open type online does not make the patient known
    open_type = {"label": "Open", "duration": 1800, "online_bookable": True}
    made = await api.call("POST", "/api/meeting-types", role="host", json=open_type)
    open_id = made.body["meeting_type"]["id"]
    later = start + timedelta(hours=1)
    reply = await api.call(
        "POST", ada_page(api), json={**booking(later, "new@example.org"), "type": open_id}
    )
    assert reply.status == 201
    reply = await api.call("POST", ada_page(api), json=booking(start, "new@example.org"))
    assert (reply.status, reply.code) == (403, "known_patients_only")
    reply = await api.call("POST", ada_page(api), json=booking(start, "Alex.Morgan@example.org"))
    assert reply.status == 201
    # a taken slot is answered first, whoever asks
    reply = await api.call("POST", ada_page(api), json=booking(start, "other@example.org"))
    assert (reply.status, reply.code) == (409, "slot_taken")


async def test_bad_bookings_are_refused_and_book_nothing(api: Api) -> None:
    await offer(api)
    api.app[LIMITS].by_address = WindowLimiter(100, 3600.0)  # more tries than the default
    page = ada_page(api)
    for body, status, code in (
        (booking(WEDNESDAY + timedelta(minutes=10)), 409, "slot_taken"),  # off the grid
        (booking(WEDNESDAY - timedelta(days=7)), 409, "slot_taken"),  # the past
        ({**booking(WEDNESDAY), "type": "b-consult"}, 404, "not_found"),
        ({**booking(WEDNESDAY), "start": "2025-01-15T09:00"}, 422, "invalid"),
        ({"type": "consult", "start": iso(WEDNESDAY)}, 422, "invalid"),
        ({**booking(WEDNESDAY), "guest": {"name": "Pat", "email": "nope"}}, 422, "invalid"),
        ({**booking(WEDNESDAY), "guest": "Pat"}, 400, "bad_message"),
    ):
        reply = await api.call("POST", page, json=body)
        assert (reply.status, reply.code) == (status, code), body
    assert await api.store.list_meetings("team-a", host_ids=[ADA]) == []


async def test_booking_tries_are_throttled_per_client_address_and_per_email(api: Api) -> None:
    await offer(api)
    page = ada_page(api)
    limit = api.settings.online_bookings_per_hour
    for n in range(limit):
        reply = await api.call("POST", page, json=booking(WEDNESDAY, f"x{n}@example.org", name=""))
        assert reply.status == 422
    reply = await api.call("POST", page, json=booking(WEDNESDAY, "fresh@example.org"))
    assert (reply.status, reply.code) == (429, "rate_limited") and "Retry-After" in reply.headers
    # per email: the same address from a client that still has tries left
    api.app[LIMITS].by_address = WindowLimiter(100, 3600.0)
    for _ in range(limit):
        await api.call("POST", page, json=booking(WEDNESDAY, "same@example.org", name=""))
    reply = await api.call("POST", page, json=booking(WEDNESDAY, "SAME@example.org"))
    assert (reply.status, reply.code) == (429, "rate_limited")
    reply = await api.call("POST", page, json=booking(WEDNESDAY, "other@example.org"))
    assert reply.status == 201
