"""Messages to guests through a real SMTP server (aiosmtpd on a free port).

A recurring booking sends one confirmation and, as the clock reaches each
reminder offset, one reminder per session carrying that session's own link,
which then opens the waiting room through /ws ``hello``. A restart with due
messages sends each once, even with two senders on one database. A failing
SMTP server leads to retries and then ``failed`` in the history. Changing a
meeting cancels its pending reminders and schedules new ones. The clock is a
FixedClock moved by the test; nothing waits on time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar
import orjson
import pytest

from rooms.outbox import backoff
from tests.service.api_support import BASE_URL, NOW, Api
from tests.service.mail_support import (
    WAIT,
    Inbox,
    mail_api,
    mail_settings,
    outbox_of,
    serving_inbox,
)

START = NOW + timedelta(days=3, hours=1)
OFFSETS = (timedelta(hours=24), timedelta(hours=1))


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with serving_inbox() as box:
        yield box


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def booking(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "guest": {"name": "Alex Morgan", "email": "alex@example.org"},
        "start": iso(START),
        "duration": 1800,
    }
    body.update(extra)
    return {key: value for key, value in body.items() if value is not None}


async def book(api: Api, **extra: Any) -> list[dict[str, Any]]:
    reply = await api.call("POST", "/api/meetings", role="host", json=booking(**extra))
    assert reply.status == 201, reply.body
    meetings: list[dict[str, Any]] = reply.body["meetings"]
    return meetings


async def history(api: Api, meeting_id: str) -> list[dict[str, Any]]:
    """The meeting's messages, read as a member. Staff session cookies are checked
    against the app's clock, which the tests move days ahead: read at NOW."""
    moved = api.clock.now()
    api.clock.set(NOW)
    try:
        reply = await api.call("GET", f"/api/meetings/{meeting_id}/messages", role="member")
    finally:
        api.clock.set(moved)
    assert reply.status == 200
    messages: list[dict[str, Any]] = reply.body["messages"]
    return messages


async def enters_with(api: Api, token: str) -> dict[str, Any]:
    """Open the link as the guest's browser does: /ws hello with the token."""
    ws = await api.client.ws_connect("/ws")
    try:
        await ws.send_str(orjson.dumps({"type": "hello", "token": token}).decode())
        while True:
            msg = await ws.receive_json(timeout=WAIT)
            if msg["type"] in ("welcome", "error"):
                reply: dict[str, Any] = msg
                return reply
    finally:
        await ws.close()


def events(calendar: icalendar.Calendar | None) -> list[Any]:
    assert calendar is not None, "no .ics attached"
    return list(calendar.walk("VEVENT"))


async def test_a_series_sends_one_confirmation_and_a_reminder_per_session_with_its_link(
    aiohttp_client: Any, tmp_path: Path, inbox: Inbox
) -> None:
    api = await mail_api(aiohttp_client, mail_settings(tmp_path, inbox))
    outbox = outbox_of(api)
    meetings = await book(api, repeat={"frequency": "weekly", "count": 3})
    tokens = [m["token"] for m in meetings]
    starts = [START + timedelta(weeks=n) for n in range(3)]

    # the confirmation: the series' own trigger, the first session's link, every date
    await inbox.until(received=1)
    await asyncio.wait_for(outbox.until_settled(1), WAIT)
    confirmation = inbox.received[0]
    assert confirmation.envelope_to == ["alex@example.org"]
    assert "3 video appointments" in confirmation.subject
    assert confirmation.links() == [tokens[0]]
    assert meetings[0]["guest_key"] in confirmation.text
    for start in starts:
        assert f"{start:%B %Y, %H:%M} UTC" in confirmation.text
    assert f'href="{BASE_URL}/join/{tokens[0]}"' in confirmation.html
    cal_events = events(confirmation.calendar())
    assert [e.decoded("dtstart") for e in cal_events] == starts
    assert str(cal_events[0]["url"]) == f"{BASE_URL}/join/{tokens[0]}"
    assert all("url" not in e for e in cal_events[1:])  # later links come in their reminders
    first = await history(api, meetings[0]["id"])
    assert [(m["trigger"], m["state"]) for m in first] == [
        ("series_confirmation", "sent"),
        ("reminder", "scheduled"),
        ("reminder", "scheduled"),
    ]

    # each reminder as the clock reaches it: that session's link, and nothing else
    seen = 1
    for n, start in enumerate(starts):
        for offset in OFFSETS:
            api.clock.set(start - offset)
            await outbox.run_due(api.clock.now())
            seen += 1
            await inbox.until(received=seen)
            assert len(inbox.received) == seen
            reminder = inbox.received[-1]
            assert reminder.subject.startswith("Reminder:")
            assert reminder.links() == [tokens[n]]
            (event,) = events(reminder.calendar())
            assert event.decoded("dtstart") == start
            assert str(event["url"]) == f"{BASE_URL}/join/{tokens[n]}"
        # the link from the received reminder opens the waiting room
        api.clock.set(start - timedelta(minutes=5))
        welcome = await enters_with(api, inbox.received[-1].links()[0])
        assert welcome["type"] == "welcome", welcome
    api.clock.set(starts[-1] + timedelta(days=30))
    assert await outbox.run_due(api.clock.now()) == 0
    assert len(inbox.received) == 7
    for meeting in meetings:
        states = {m["state"] for m in await history(api, meeting["id"])}
        assert states == {"sent"}


async def test_without_an_smtp_url_messages_wait_and_a_restart_sends_each_once(
    aiohttp_client: Any, tmp_path: Path, inbox: Inbox
) -> None:
    first = await mail_api(aiohttp_client, mail_settings(tmp_path, None))
    (meeting,) = await book(first)
    waiting = await history(first, meeting["id"])
    assert [(m["trigger"], m["state"], m["attempts"]) for m in waiting] == [
        ("confirmation", "scheduled", 0),
        ("reminder", "scheduled", 0),
        ("reminder", "scheduled", 0),
    ]
    assert [m["offset"] for m in waiting] == [None, 86400, 3600]
    assert await outbox_of(first).run_due(NOW) == 0  # no transport: nothing is sent
    await first.client.close()
    assert inbox.attempts == 0

    # two nodes start on the same database after every message fell due
    late = START - timedelta(minutes=30)
    settings = mail_settings(tmp_path, inbox)
    nodes = []
    for name in ("node-a", "node-b"):
        node = await mail_api(
            aiohttp_client,
            settings.__class__(**{**_fields(settings), "node_id": name}),
            seed=False,
        )
        node.clock.set(late)
        outbox_of(node).poke()
        nodes.append(node)
    await inbox.until(received=3)
    for node in nodes:
        await outbox_of(node).run_due(late)
    assert inbox.attempts == 3
    ids = [r.message["Message-ID"] for r in inbox.received]
    assert len(set(ids)) == 3
    sent = await history(nodes[0], meeting["id"])
    assert [(m["state"], m["attempts"]) for m in sent] == [("sent", 1)] * 3
    assert [r.links() for r in inbox.received] == [[meeting["token"]]] * 3


def _fields(settings: Any) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in settings.__dataclass_fields__}


@pytest.mark.parametrize("answer", ["451 4.3.0 try again later", "554 5.6.0 refused"])
async def test_a_failing_server_is_retried_then_failed_never_lost(
    aiohttp_client: Any, tmp_path: Path, inbox: Inbox, answer: str
) -> None:
    api = await mail_api(aiohttp_client, mail_settings(tmp_path, inbox, mail_attempts=3))
    outbox = outbox_of(api)
    inbox.fail_with = answer
    (meeting,) = await book(api)
    code = answer.split()[0]
    await asyncio.wait_for(outbox.until_settled(1), WAIT)
    due = NOW
    for attempt in (2, 3):
        due += backoff(attempt - 1)
        (confirmation, *_) = await history(api, meeting["id"])
        assert confirmation["state"] == "scheduled"
        assert confirmation["attempts"] == attempt - 1
        assert confirmation["last_error"] == f"SMTPDataError {code}"
        assert confirmation["due_at"] == iso(due)
        # not before its time
        assert await outbox.run_due(due - timedelta(seconds=1)) == 0
        api.clock.set(due)
        assert await outbox.run_due(api.clock.now()) == 1
        assert inbox.attempts == attempt
    (confirmation, *reminders) = await history(api, meeting["id"])
    assert (confirmation["state"], confirmation["attempts"]) == ("failed", 3)
    assert confirmation["last_error"] == f"SMTPDataError {code}"
    assert [r["state"] for r in reminders] == ["scheduled", "scheduled"]
    # the server recovers: the failed one stays failed (in the history), the rest go
    inbox.fail_with = None
    api.clock.set(START - timedelta(hours=1))
    await outbox.run_due(api.clock.now())
    await inbox.until(received=2)
    states = [m["state"] for m in await history(api, meeting["id"])]
    assert states == ["failed", "sent", "sent"]
    assert inbox.attempts == 5


async def test_reschedule_and_cancel_replace_the_pending_reminders(
    aiohttp_client: Any, tmp_path: Path, inbox: Inbox
) -> None:
    api = await mail_api(aiohttp_client, mail_settings(tmp_path, inbox))
    outbox = outbox_of(api)
    (meeting,) = await book(api)
    await inbox.until(received=1)
    moved_to = START + timedelta(days=2)
    reply = await api.call(
        "POST",
        f"/api/meetings/{meeting['id']}/reschedule",
        role="member",
        json={"start": iso(moved_to)},
    )
    assert reply.status == 200
    new_token = reply.body["meeting"]["token"]
    await inbox.until(received=2)
    await asyncio.wait_for(outbox.until_settled(2), WAIT)
    moved = inbox.received[1]
    assert "has changed" in moved.subject and moved.links() == [new_token]
    rows = [(m["due_at"], m["trigger"], m["state"]) for m in await history(api, meeting["id"])]
    assert [row[0] for row in rows] == sorted(row[0] for row in rows)  # by due time
    assert sorted(rows) == [
        (iso(NOW), "confirmation", "sent"),
        (iso(NOW), "reschedule", "sent"),
        (iso(START - OFFSETS[0]), "reminder", "cancelled"),
        (iso(START - OFFSETS[1]), "reminder", "cancelled"),
        (iso(moved_to - OFFSETS[0]), "reminder", "scheduled"),
        (iso(moved_to - OFFSETS[1]), "reminder", "scheduled"),
    ]
    # the old reminder times pass: nothing goes; then the new one carries the new link
    api.clock.set(START)
    assert await outbox.run_due(api.clock.now()) == 0
    api.clock.set(moved_to - OFFSETS[0])
    await outbox.run_due(api.clock.now())
    await inbox.until(received=3)
    assert inbox.received[2].links() == [new_token]
    reply = await api.call("POST", f"/api/meetings/{meeting['id']}/cancel", role="api_key")
    assert reply.status == 200
    await inbox.until(received=4)
    await asyncio.wait_for(outbox.until_settled(4), WAIT)
    cancelled = inbox.received[3]
    assert "cancelled" in cancelled.subject and cancelled.links() == []
    assert cancelled.calendar() is None
    states = sorted((m["trigger"], m["state"]) for m in await history(api, meeting["id"]))[-3:]
    assert states == [("reminder", "cancelled"), ("reminder", "sent"), ("reschedule", "sent")]
    latest = [m for m in await history(api, meeting["id"]) if m["trigger"] == "cancellation"]
    assert [m["state"] for m in latest] == ["sent"]
    api.clock.set(moved_to)
    assert await outbox.run_due(api.clock.now()) == 0


async def test_a_team_template_and_offsets_are_used(
    aiohttp_client: Any, tmp_path: Path, inbox: Inbox
) -> None:
    api = await mail_api(aiohttp_client, mail_settings(tmp_path, inbox))
    reply = await api.call(
        "PUT",
        "/api/messaging",
        role="member",
        json={
            "reminder_offsets": [7200],
            "templates": {
                "confirmation": {
                    "subject": "Booked: {{ start }}",
                    "html": "<p>{{ guest_name }}</p>",
                }
            },
        },
    )
    assert reply.status == 200, reply.body
    assert reply.body["reminder_offsets"] == [7200]
    confirmation = reply.body["templates"]["confirmation"]
    assert confirmation["subject"] == {"source": "Booked: {{ start }}", "own": True}
    assert confirmation["text"]["own"] is False
    (meeting,) = await book(api, guest={"name": "<b>Alex</b>", "email": "alex@example.org"})
    await inbox.until(received=1)
    mail = inbox.received[0]
    assert mail.subject == f"Booked: {START:%A} {START.day} {START:%B %Y, %H:%M} UTC"
    assert "&lt;b&gt;Alex&lt;/b&gt;" in mail.html  # the HTML part is autoescaped
    assert mail.links() == [meeting["token"]]  # the shipped text part
    reminders = [m for m in await history(api, meeting["id"]) if m["trigger"] == "reminder"]
    assert [m["offset"] for m in reminders] == [7200]


@pytest.mark.parametrize(
    "templates",
    [
        {"reminder": {"text": "{{ guest_name "}},  # does not compile
        {"reminder": {"text": "{{ password }}"}},  # not a value a message gives
        {"reminder": {"text": "{{ link.__class__.__mro__ }}"}},  # the sandbox refuses
        {"birthday": {"text": "hi"}},  # no such trigger
    ],
)
async def test_a_bad_team_template_is_refused(
    aiohttp_client: Any, tmp_path: Path, templates: dict[str, Any]
) -> None:
    api = await mail_api(aiohttp_client, mail_settings(tmp_path, None))
    reply = await api.call("PUT", "/api/messaging", role="member", json={"templates": templates})
    assert (reply.status, reply.code) == (422, "invalid")
    got = await api.call("GET", "/api/messaging", role="member")
    assert all(not part["own"] for t in got.body["templates"].values() for part in t.values())


async def test_calendar_file_and_reissue(aiohttp_client: Any, tmp_path: Path) -> None:
    api = await mail_api(aiohttp_client, mail_settings(tmp_path, None))
    (meeting,) = await book(api)
    reply = await api.call("GET", f"/api/meetings/{meeting['id']}/calendar.ics", role="member")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/calendar")
    (event,) = events(icalendar.Calendar.from_ical(reply.body))
    assert event.decoded("dtstart") == START
    assert event.decoded("dtend") == START + timedelta(minutes=30)
    assert str(event["url"]) == meeting["link"]
    # re-issue: a new link and key, shown again; the old link stops working
    reissued = await api.call("POST", f"/api/meetings/{meeting['id']}/reissue", role="member")
    assert reissued.status == 200
    fresh = reissued.body["meeting"]
    assert fresh["token"] != meeting["token"] and fresh["guest_key"] != meeting["guest_key"]
    shown = await api.call("GET", f"/api/meetings/{meeting['id']}", role="host")
    assert shown.body["meeting"]["token"] == fresh["token"]
    again = await api.call("GET", f"/api/meetings/{meeting['id']}/calendar.ics", role="host")
    (event,) = events(icalendar.Calendar.from_ical(again.body))
    assert str(event["url"]) == fresh["link"]
    api.clock.set(START - timedelta(minutes=5))
    assert (await enters_with(api, meeting["token"]))["code"] == "token_invalid"
    assert (await enters_with(api, fresh["token"]))["type"] == "welcome"
    api.clock.set(NOW)  # (staff session cookies are checked against the app's clock)
    # another team sees none of it
    other = await api.call("GET", f"/api/meetings/{meeting['id']}/messages", role="other_member")
    assert other.status == 404
    cancelled = await api.call("POST", f"/api/meetings/{meeting['id']}/cancel", role="host")
    assert cancelled.body["meeting"]["guest_key"] is None
    for path in ("calendar.ics", "reissue"):
        method = "GET" if path.endswith(".ics") else "POST"
        gone = await api.call(method, f"/api/meetings/{meeting['id']}/{path}", role="host")
        assert (gone.status, gone.code) == (409, "conflict")


async def test_keys_sealed_under_another_data_key_read_as_absent(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    first = await mail_api(aiohttp_client, mail_settings(tmp_path, None))
    (meeting,) = await book(first)
    stored = await first.store.get_credential_for_meeting(meeting["id"])
    assert stored is not None and stored.link_sealed and stored.key_sealed
    # the database holds no clear value
    for clear in (meeting["token"], meeting["guest_key"].replace("-", "")):
        assert clear not in stored.link_sealed + stored.key_sealed
    await first.client.close()
    other_key = "Zm9yIGEgZGlmZmVyZW50IGRhdGEga2V5IDMyIGJ5dGU="
    second = await mail_api(
        aiohttp_client, mail_settings(tmp_path, None, data_key=other_key), seed=False
    )
    shown = await second.call("GET", f"/api/meetings/{meeting['id']}", role="host")
    assert (shown.body["meeting"]["guest_key"], shown.body["meeting"]["link"]) == (None, None)


async def test_the_dashboard_shows_the_guest_key_and_a_reissued_one(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    api = await mail_api(aiohttp_client, mail_settings(tmp_path, None))
    (meeting,) = await book(api)
    ws = await api.client.ws_connect("/ws/dashboard", headers=api.headers("host"))
    try:
        await ws.send_json({"type": "subscribe", "scope": "my"})
        snapshot = await _next(ws, "snapshot")
        (view,) = snapshot["meetings"]
        assert view["guest_key"] == meeting["guest_key"]
        reply = await api.call("POST", f"/api/meetings/{meeting['id']}/reissue", role="member")
        fresh = reply.body["meeting"]["guest_key"]
        change = await _next(ws, "meeting")
        assert (change["change"], change["view"]["guest_key"]) == ("updated", fresh)
    finally:
        await ws.close()


async def _next(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        msg: dict[str, Any] = await ws.receive_json(timeout=WAIT)
        if msg["type"] == kind:
            return msg
        assert msg["type"] != "error", msg


async def test_a_chosen_slot_confirms_and_a_reassignment_sends_the_new_link(
    aiohttp_client: Any, tmp_path: Path, inbox: Inbox
) -> None:
    api = await mail_api(aiohttp_client, mail_settings(tmp_path, inbox))
    outbox = outbox_of(api)
    slots = [START, START + timedelta(days=1)]
    (planning,) = await book(api, start=None, slots=[iso(s) for s in slots])
    # the guest is sent the proposed slots; the confirmation waits for the choice
    await inbox.until(received=1)
    await asyncio.wait_for(outbox.until_settled(1), WAIT)
    assert inbox.received[0].links() == []
    assert [m["trigger"] for m in await history(api, planning["id"])] == ["proposed_slots"]
    reply = await api.call(
        "POST",
        f"/api/meetings/{planning['id']}/confirm",
        role="host",
        json={"slot": iso(slots[1])},
    )
    first_token = reply.body["meeting"]["token"]
    await inbox.until(received=2)
    assert inbox.received[1].links() == [first_token]
    assert f"{slots[1]:%B %Y, %H:%M}" in inbox.received[1].text
    reply = await api.call(
        "POST", f"/api/meetings/{planning['id']}/reassign", role="host", json={"host": "sam"}
    )
    new_token = reply.body["meeting"]["token"]
    assert new_token != first_token
    await inbox.until(received=3)
    await asyncio.wait_for(outbox.until_settled(3), WAIT)
    assert inbox.received[2].links() == [new_token]
    triggers = sorted((m["trigger"], m["state"]) for m in await history(api, planning["id"]))
    assert triggers == [
        ("confirmation", "sent"),
        ("proposed_slots", "sent"),
        ("reminder", "cancelled"),
        ("reminder", "cancelled"),
        ("reminder", "scheduled"),
        ("reminder", "scheduled"),
        ("reschedule", "sent"),
    ]
