"""The links a patient acts from, end to end through a real SMTP server
(aiosmtpd): the proposed slots message leads to the pick page's API, whose
pick schedules the confirmation; a completed meeting sends the review request,
whose link stores one review. Wrong, spent and racing uses get typed errors."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from rooms.patient_links import REVIEW_DELAY, Purpose
from rooms.presence import PresenceEvent, PresenceKind, Role
from signalling.api.scope import new_id
from signalling.keys import PRESENCE
from signalling.outbox import Outbox
from signalling.patient_links import patient_links_for
from signalling.sealing import sealer_for
from signalling.store.sqlite import SQLiteStore
from tests.service.api_support import BASE_URL, NOW, Api
from tests.service.mail_support import Inbox, mail_api, mail_settings, outbox_of, serving_inbox
from tests.service.test_mail import START, book, history, iso

PICK = re.compile(re.escape(BASE_URL) + r"/pick/([A-Za-z0-9_.-]+)")
REVIEW = re.compile(re.escape(BASE_URL) + r"/review/([A-Za-z0-9_.-]+)")
SLOTS = [START, START + timedelta(days=1), START + timedelta(days=2)]


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with serving_inbox() as box:
        yield box


def link(pattern: re.Pattern[str], text: str) -> str:
    found = pattern.findall(text)
    assert len(found) == 1, text
    token: str = found[0]
    return token


async def planning(api: Api, inbox: Inbox) -> tuple[dict[str, Any], str]:
    """A meeting booked with proposed slots, and the pick token its message carries."""
    (meeting,) = await book(api, start=None, slots=[iso(s) for s in SLOTS])
    await inbox.until(received=1)
    await asyncio.wait_for(outbox_of(api).until_settled(1), 5)
    offer = inbox.received[0]
    assert offer.subject.startswith("Choose a time for your video appointment")
    for slot in SLOTS:
        assert f"{slot:%B %Y, %H:%M} UTC" in offer.text
    token = link(PICK, offer.text)
    assert f'href="{BASE_URL}/pick/{token}"' in offer.html
    assert offer.calendar() is None and "/join/" not in offer.text
    return meeting, token


def as_link(token: str) -> dict[str, str]:
    return {"X-Vestibule-Link": token}


async def test_the_patient_picks_a_slot_once_and_is_sent_the_confirmation(
    aiohttp_client: Any, tmp_path: Path, inbox: Inbox
) -> None:
    api = await mail_api(aiohttp_client, mail_settings(tmp_path, inbox))
    meeting, token = await planning(api, inbox)

    shown = await api.call("GET", "/api/pick", headers=as_link(token))
    assert shown.status == 200
    assert shown.body["appointment"]["slots"] == [iso(s) for s in SLOTS]
    assert shown.body["appointment"]["start"] is None
    assert shown.body["appointment"]["host"] == "Ada Jones"

    # a slot never offered, and a slot of the right day at the wrong minute
    for wrong in (START + timedelta(hours=5), START + timedelta(minutes=1)):
        reply = await api.call(
            "POST", "/api/pick", headers=as_link(token), json={"slot": iso(wrong)}
        )
        assert (reply.status, reply.code) == (409, "slot_not_offered")
    bad = await api.call("POST", "/api/pick", headers=as_link(token), json={"slot": "soon"})
    assert (bad.status, bad.code) == (422, "invalid")

    picked = await api.call(
        "POST", "/api/pick", headers=as_link(token), json={"slot": iso(SLOTS[1])}
    )
    assert picked.status == 200, picked.body
    assert picked.body["appointment"]["start"] == iso(SLOTS[1])
    assert picked.body["appointment"]["slots"] == []

    # the confirmation: the chosen time, the join link, the calendar file
    await inbox.until(received=2)
    await asyncio.wait_for(outbox_of(api).until_settled(2), 5)
    confirmation = inbox.received[1]
    assert f"{SLOTS[1]:%B %Y, %H:%M} UTC" in confirmation.text
    (join,) = confirmation.links()
    calendar = confirmation.calendar()
    assert calendar is not None
    (event,) = calendar.walk("VEVENT")
    assert event.decoded("dtstart") == SLOTS[1]
    assert str(event["url"]) == f"{BASE_URL}/join/{join}"

    # the staff see the meeting scheduled at that time, the other slots released
    staff = await api.call("GET", f"/api/meetings/{meeting['id']}", role="host")
    assert staff.body["meeting"]["start"] == iso(SLOTS[1])
    assert staff.body["meeting"]["proposed_slots"] == []
    assert staff.body["meeting"]["status"] == "scheduled"
    triggers = sorted((m["trigger"], m["state"]) for m in await history(api, meeting["id"]))
    assert triggers == [
        ("confirmation", "sent"),
        ("proposed_slots", "sent"),
        ("reminder", "scheduled"),
        ("reminder", "scheduled"),
    ]

    # picking again, with the same or another slot
    for slot in (SLOTS[1], SLOTS[0]):
        again = await api.call(
            "POST", "/api/pick", headers=as_link(token), json={"slot": iso(slot)}
        )
        assert (again.status, again.code) == (409, "slot_already_chosen")
    after = await api.call("GET", "/api/pick", headers=as_link(token))
    assert after.body["appointment"]["start"] == iso(SLOTS[1])
    assert after.body["appointment"]["slots"] == []


async def test_a_wrong_or_foreign_link_gets_the_uniform_answer(
    aiohttp_client: Any, tmp_path: Path, inbox: Inbox
) -> None:
    settings = mail_settings(tmp_path, inbox, key_attempts_per_address=100)
    api = await mail_api(aiohttp_client, settings)
    meeting, token = await planning(api, inbox)
    meeting_id, _, mac = token.rpartition(".")
    other, _ = await api.add_meeting(slots=(SLOTS[0], SLOTS[1]), start=None)
    wrong = [
        "",
        "x",
        f"{meeting_id}.{'A' * len(mac)}",  # forged
        f"{other.id}.{mac}",  # another meeting's id under this meeting's mac
        f"nosuchmeeting.{mac}",
    ]
    for value in wrong:
        reply = await api.call(
            "POST", "/api/pick", headers=as_link(value), json={"slot": iso(SLOTS[0])}
        )
        assert (reply.status, reply.code) == (401, "token_invalid"), value
        shown = await api.call("GET", "/api/pick", headers=as_link(value))
        assert (shown.status, shown.code) == (401, "token_invalid"), value
    # a pick token is no review token
    review = await api.call("GET", "/api/review", headers=as_link(token))
    assert (review.status, review.code) == (401, "token_invalid")
    # a cancelled meeting's link is revoked with it
    cancelled = await api.call("POST", f"/api/meetings/{meeting['id']}/cancel", role="host")
    assert cancelled.status == 200
    gone = await api.call("POST", "/api/pick", headers=as_link(token), json={"slot": iso(SLOTS[0])})
    assert (gone.status, gone.code) == (401, "token_invalid")
    assert (await api.call("GET", "/api/pick", headers=as_link(token))).code == "token_invalid"
    # the cancellation went out (and the sender is done before the inbox closes)
    await inbox.until(received=2)
    await asyncio.wait_for(outbox_of(api).until_settled(2), 5)


async def test_two_picks_at_once_one_wins(
    aiohttp_client: Any, tmp_path: Path, inbox: Inbox
) -> None:
    api = await mail_api(aiohttp_client, mail_settings(tmp_path, inbox))
    meeting, token = await planning(api, inbox)

    async def pick(slot: Any) -> Any:
        return await api.call("POST", "/api/pick", headers=as_link(token), json={"slot": iso(slot)})

    replies = await asyncio.gather(*(pick(SLOTS[n % 3]) for n in range(6)))
    winners = [r for r in replies if r.status == 200]
    assert len(winners) == 1
    assert {(r.status, r.code) for r in replies if r.status != 200} == {
        (409, "slot_already_chosen")
    }
    start = winners[0].body["appointment"]["start"]
    stored = await api.store.get_meeting(meeting["id"])
    assert stored.start is not None and iso(stored.start) == start
    credential = await api.store.get_credential_for_meeting(meeting["id"])
    assert (
        credential is not None and credential.not_before == stored.start - api.settings.link_before
    )
    await inbox.until(received=2)
    await asyncio.wait_for(outbox_of(api).until_settled(2), 5)
    confirmations = [m for m in await history(api, meeting["id"]) if m["trigger"] == "confirmation"]
    assert len(confirmations) == 1


async def test_picks_are_throttled_per_address(
    aiohttp_client: Any, tmp_path: Path, inbox: Inbox
) -> None:
    api = await mail_api(aiohttp_client, mail_settings(tmp_path, inbox, key_attempts_per_address=3))
    _, token = await planning(api, inbox)
    for _ in range(3):
        reply = await api.call("GET", "/api/pick", headers=as_link(token + "x"))
        assert reply.code == "token_invalid"
    limited = await api.call(
        "POST", "/api/pick", headers=as_link(token), json={"slot": iso(SLOTS[0])}
    )
    assert (limited.status, limited.code) == (429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1


async def completed(api: Api, meeting_id: str) -> None:
    """Host and guest enter, the guest is admitted, both leave: completed."""
    meeting = await api.store.get_meeting(meeting_id)
    assert meeting.start is not None
    presence = api.app[PRESENCE]
    at = meeting.start + timedelta(minutes=2)
    api.clock.set(at)
    steps = [
        (PresenceKind.ENTERED, "s-host", Role.HOST),
        (PresenceKind.ENTERED, "g-guest", Role.GUEST),
        (PresenceKind.ADMITTED, "g-guest", Role.GUEST),
        (PresenceKind.LEFT, "g-guest", Role.GUEST),
        (PresenceKind.LEFT, "s-host", Role.HOST),
    ]
    for n, (kind, who, role) in enumerate(steps):
        event = PresenceEvent(
            kind, meeting.team_id, meeting.room_id, who, role, at + timedelta(seconds=n), meeting.id
        )
        await presence.record(event)
    await api.flush()


async def test_a_completed_meeting_asks_for_one_review_through_its_link(
    aiohttp_client: Any, tmp_path: Path, inbox: Inbox
) -> None:
    api = await mail_api(aiohttp_client, mail_settings(tmp_path, inbox))
    outbox = outbox_of(api)
    (meeting,) = await book(api)
    await inbox.until(received=1)  # the confirmation
    await asyncio.wait_for(outbox.until_settled(1), 5)
    await completed(api, meeting["id"])
    stored = await api.store.get_meeting(meeting["id"])
    assert stored.end is not None
    due = stored.end + REVIEW_DELAY

    # scheduled once for the end of the meeting, however often "completed" is seen
    async def requests() -> list[dict[str, Any]]:
        return [m for m in await history(api, meeting["id"]) if m["trigger"] == "review_request"]

    async def until_scheduled() -> list[dict[str, Any]]:
        while not (found := await requests()):
            await api.flush()
            await asyncio.sleep(0)  # let the listener's task run; bounded by wait_for
        return found

    (request,) = await asyncio.wait_for(until_scheduled(), 5)
    assert (request["state"], request["due_at"]) == ("scheduled", iso(due))
    await outbox.review_requested(stored, api.clock.now())
    assert len(await requests()) == 1

    api.clock.set(due)
    await outbox.run_due(due)
    await inbox.until(received=4)  # the confirmation, two reminders, the request
    await asyncio.wait_for(outbox.until_settled(4), 5)
    (mail,) = [m for m in inbox.received if m.subject.startswith("How was your appointment")]
    assert mail.subject == "How was your appointment with Harbour Clinic?"
    token = link(REVIEW, mail.text)
    assert f'href="{BASE_URL}/review/{token}"' in mail.html

    shown = await api.call("GET", "/api/review", headers=as_link(token))
    assert shown.status == 200
    assert shown.body["appointment"]["reviewed"] is False
    assert shown.body["appointment"]["start"] == iso(START)
    bad = await api.call("POST", "/api/review", headers=as_link(token), json={"rating": 9})
    assert (bad.status, bad.code) == (422, "invalid")
    left = await api.call(
        "POST", "/api/review", headers=as_link(token), json={"rating": 4, "text": "Clear advice."}
    )
    assert left.status == 200
    assert left.body == {"review": {"rating": 4, "text": "Clear advice."}}
    again = await api.call("POST", "/api/review", headers=as_link(token), json={"rating": 5})
    assert (again.status, again.code) == (409, "conflict")
    assert (await api.call("GET", "/api/review", headers=as_link(token))).body["appointment"][
        "reviewed"
    ] is True
    reviewed = await api.store.get_meeting(meeting["id"])
    assert (reviewed.review_rating, reviewed.review) == (4, "Clear advice.")
    # a pick request for it is no pick link, and after 30 days the link is closed
    api.clock.set(stored.end + timedelta(days=30))
    late = await api.call("GET", "/api/review", headers=as_link(token))
    assert (late.status, late.code) == (401, "token_invalid")
    assert NOW < START


async def test_two_reviews_sent_at_once_keep_the_first(aiohttp_client: Any, tmp_path: Path) -> None:
    """The review link used twice at once (two tabs, a double submit): the
    first request has read the meeting unreviewed and waits for the rest of
    its body while the second stores its review; the first is then refused
    with 409 conflict and the second review is the one kept. (No SMTP server:
    the meeting's messages stay queued, nothing is sent meanwhile.)"""
    api = await mail_api(aiohttp_client, mail_settings(tmp_path, None))
    (meeting,) = await book(api)
    api.clock.set(START + timedelta(minutes=40))
    token = patient_links_for(api.settings.data_key).token(Purpose.REVIEW, meeting["id"])
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b'{"rating": 2,'
        started.set()  # the headers and the first part are sent
        await release.wait()
        yield b' "text": "Too slow."}'

    first = asyncio.create_task(
        api.client.post(
            "/api/review",
            headers={**as_link(token), "Content-Type": "application/json"},
            data=slow_body(),
        )
    )
    await asyncio.wait_for(started.wait(), 5)
    second = await api.call(
        "POST", "/api/review", headers=as_link(token), json={"rating": 5, "text": "Clear."}
    )
    assert second.status == 200, second.body
    release.set()
    refused = await asyncio.wait_for(first, 5)
    assert refused.status == 409
    assert (await refused.json())["error"]["code"] == "conflict"
    stored = await api.store.get_meeting(meeting["id"])
    assert (stored.review_rating, stored.review) == (5, "Clear.")


async def test_two_nodes_seeing_completed_at_once_queue_one_review_request(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    """Two nodes' outboxes (each on its own connection to the database) see
    one meeting completed at the same instant: one review request is queued.
    (No SMTP server: the messages stay queued, which is all this is about.)"""
    settings = mail_settings(tmp_path, None)
    api = await mail_api(aiohttp_client, settings)
    (meeting,) = await book(api)
    other_store = SQLiteStore(settings.db_path)
    await other_store.open()
    try:
        other = Outbox(
            settings,
            other_store,
            api.clock,
            sealer_for(settings.data_key),
            new_id,
            transport=None,
        )
        stored = await api.store.get_meeting(meeting["id"])
        at = START + timedelta(minutes=40)
        queued = await asyncio.gather(
            outbox_of(api).review_requested(stored, at), other.review_requested(stored, at)
        )
    finally:
        await other_store.close()
    assert len([message for message in queued if message is not None]) == 1
    requests = [m for m in await history(api, meeting["id"]) if m["trigger"] == "review_request"]
    assert len(requests) == 1
