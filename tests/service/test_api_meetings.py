"""REST meetings: booking, listing, reading, and the credentials they issue."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from rooms.presence import PresenceEvent, PresenceKind, Role
from rooms.room import RoomKind
from rooms.tokens import digest_key, digest_link, new_rejoin_secret
from signalling.bootstrap import create_app
from signalling.keys import PRESENCE
from signalling.store.base import Store
from tests.service.api_support import (
    ADA,
    BASE_URL,
    BOB,
    NOW,
    SAM,
    TEAM_A,
    ZED,
    Api,
    make_api,
)

START = NOW + timedelta(hours=3)


@pytest.fixture
async def api(aiohttp_client: Any, tmp_path: Path) -> Api:
    return await make_api(aiohttp_client, tmp_path)


def iso(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


def booking(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "guest": {"name": "Alex Morgan", "email": "alex@example.org", "phone": "+44 20 7946 0018"},
        "description": "Follow-up on the knee",
        "start": iso(START),
        "duration": 1800,
    }
    body.update(extra)
    return {key: value for key, value in body.items() if value is not None}


async def redeems(store: Store, token: str, at: Any = START) -> bool:
    """Whether the link token is accepted now (consuming it)."""
    _, device = new_rejoin_secret()
    return await store.redeem_link(digest_link(token), device, at) is not None


async def book(api: Api, role: str = "host", **extra: Any) -> dict[str, Any]:
    reply = await api.call("POST", "/api/meetings", role=role, json=booking(**extra))
    assert reply.status == 201, reply.body
    meeting: dict[str, Any] = reply.body["meetings"][0]
    return meeting


# -- booking --------------------------------------------------------------------------


async def test_booking_returns_the_credentials_and_they_work(api: Api) -> None:
    meeting = await book(api)
    assert meeting["host"] == ADA
    assert meeting["room"] == api.own_room(ADA).slug  # the host's own room by default
    assert meeting["status"] == "scheduled"
    assert meeting["indicator"] == "not_entered"
    assert meeting["start"] == iso(START)
    assert meeting["link"] == f"{BASE_URL}/join/{meeting['token']}"
    assert len(meeting["guest_key"]) == 9 and meeting["guest_key"][4] == "-"
    # staff of the team see them again, opened from their sealed copies
    again = await api.call("GET", f"/api/meetings/{meeting['id']}", role="member")
    shown = again.body["meeting"]
    assert (shown["guest_key"], shown["token"], shown["link"]) == (
        meeting["guest_key"],
        meeting["token"],
        meeting["link"],
    )
    # the guest key redeems in its room; the link token is then spent (single use)
    _, device = new_rejoin_secret()
    key_digest = digest_key(api.own_room(ADA).id, meeting["guest_key"])
    assert await api.store.redeem_key(key_digest, device, START) is not None
    assert not await redeems(api.store, meeting["token"])


async def test_booking_is_logged_for_the_dashboard_and_audited(api: Api) -> None:
    meeting = await book(api)
    entries = await api.store.log_for_meeting(TEAM_A, meeting["id"])
    assert [(e.topic, e.kind) for e in entries] == [("meeting", "created")]
    audit = await api.store.list_audit("org-a", team_id=TEAM_A)
    assert [(e.action, e.actor_id, e.target) for e in audit] == [
        ("meeting.create", ADA, meeting["id"])
    ]


async def test_book_for_a_colleague_in_a_shared_room_with_a_type(api: Api) -> None:
    reception = api.shared_room(TEAM_A, RoomKind.RECEPTION)
    meeting = await book(
        api, role="member", host=ADA, room=reception.slug, type="consult", duration=None
    )
    assert (meeting["host"], meeting["room"]) == (ADA, reception.slug)
    assert meeting["type"] == {"id": "consult", "label": "Consultation", "colour": "#3b82f6"}
    assert meeting["duration"] == 1800  # the type's


async def test_room_may_be_given_by_id(api: Api) -> None:
    room = api.own_room(ADA)
    assert (await book(api, room=room.id))["room"] == room.slug


async def test_proposed_slots_then_confirm_issues_the_link(api: Api) -> None:
    slots = [iso(START), iso(START + timedelta(days=1))]
    planning = await book(api, start=None, slots=slots)
    assert planning["status"] == "planning"
    assert planning["start"] is None
    assert planning["proposed_slots"] == slots
    assert (planning["link"], planning["token"], planning["guest_key"]) == (None, None, None)
    assert await api.store.get_credential_for_meeting(planning["id"]) is None
    path = f"/api/meetings/{planning['id']}/confirm"
    wrong = await api.call("POST", path, role="host", json={"slot": iso(START + timedelta(1, 60))})
    assert (wrong.status, wrong.code) == (422, "invalid")
    reply = await api.call("POST", path, role="member", json={"slot": slots[1]})
    assert reply.status == 200
    confirmed = reply.body["meeting"]
    assert (confirmed["status"], confirmed["start"], confirmed["proposed_slots"]) == (
        "scheduled",
        slots[1],
        [],
    )
    assert await redeems(api.store, confirmed["token"], START + timedelta(days=1))
    twice = await api.call("POST", path, role="host", json={"slot": slots[0]})
    assert (twice.status, twice.code) == (409, "conflict")
    kinds = [e.kind for e in await api.store.log_for_meeting(TEAM_A, planning["id"])]
    assert kinds[:2] == ["created", "slot_chosen"]


async def test_a_weekly_series_books_each_occurrence_with_its_own_link(api: Api) -> None:
    reply = await api.call(
        "POST",
        "/api/meetings",
        role="host",
        json=booking(repeat={"frequency": "weekly", "count": 3}),
    )
    assert reply.status == 201
    meetings = reply.body["meetings"]
    assert [m["start"] for m in meetings] == [iso(START + timedelta(weeks=n)) for n in range(3)]
    assert len({m["series"] for m in meetings}) == 1 and meetings[0]["series"]
    assert len({m["token"] for m in meetings}) == 3
    for n, meeting in enumerate(meetings):
        assert await redeems(api.store, meeting["token"], START + timedelta(weeks=n))
    until = await api.call(
        "POST",
        "/api/meetings",
        role="host",
        json=booking(repeat={"frequency": "daily", "until": iso(START + timedelta(days=4))}),
    )
    assert len(until.body["meetings"]) == 5


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"guest": None}, 422, "invalid"),
        ({"guest": "Alex"}, 400, "bad_message"),
        ({"guest": {"name": "Alex"}}, 422, "invalid"),
        ({"guest": {"name": "Alex", "email": "not-an-email"}}, 422, "invalid"),
        ({"start": iso(NOW - timedelta(minutes=1))}, 422, "invalid"),
        ({"start": "2025-01-14T12:00:00"}, 422, "invalid"),
        ({"start": "tomorrow"}, 422, "invalid"),
        ({"start": None}, 422, "invalid"),
        ({"slots": [iso(START + timedelta(days=1))]}, 422, "invalid"),
        ({"duration": 1830}, 422, "invalid"),
        ({"duration": "30"}, 400, "bad_message"),
        ({"room": "no-such-room"}, 404, "not_found"),
        ({"room": "__SAM_ROOM__"}, 403, "not_host"),
        ({"room": "__BOB_ROOM__"}, 404, "not_found"),
        ({"host": BOB}, 404, "not_found"),
        ({"host": "no-such-member"}, 404, "not_found"),
        ({"type": "b-consult"}, 404, "not_found"),
        ({"repeat": {"frequency": "hourly", "count": 2}}, 422, "invalid"),
        ({"repeat": {"frequency": "weekly"}}, 422, "invalid"),
        ({"repeat": {"frequency": "weekly", "count": 53}}, 422, "invalid"),
    ],
)
async def test_booking_errors(api: Api, change: dict[str, Any], status: int, code: str) -> None:
    body = booking(**change)
    if body.get("room") == "__SAM_ROOM__":
        body["room"] = api.own_room(SAM).slug
    if body.get("room") == "__BOB_ROOM__":
        body["room"] = api.own_room(BOB).slug
    reply = await api.call("POST", "/api/meetings", role="host", json=body)
    assert (reply.status, reply.code) == (status, code), reply.body
    assert await api.store.list_meetings(TEAM_A) == []


async def test_booking_with_a_body_that_is_not_an_object(api: Api) -> None:
    for data in ("[1, 2]", "{", ""):
        reply = await api.call("POST", "/api/meetings", role="host", data=data)
        assert (reply.status, reply.code) == (400, "bad_message")


async def test_an_api_key_must_name_the_host(api: Api) -> None:
    reply = await api.call("POST", "/api/meetings", role="api_key", json=booking())
    assert (reply.status, reply.code) == (422, "invalid")
    meeting = await book(api, role="api_key", host=SAM)
    assert (meeting["host"], meeting["room"]) == (SAM, api.own_room(SAM).slug)
    audit = await api.store.list_audit("org-a", team_id=TEAM_A)
    assert [e.actor_id for e in audit] == ["key:key-team-a"]


# -- listing ----------------------------------------------------------------------------


async def test_scope_my_and_everyone(api: Api) -> None:
    ada = (await api.add_meeting(ADA, start=START))[0]
    sam = (await api.add_meeting(SAM, start=START + timedelta(hours=1)))[0]
    zed = (await api.add_meeting(ZED, start=START + timedelta(hours=2)))[0]
    await api.add_meeting(BOB, start=START)

    async def ids(role: str, query: str = "") -> list[str]:
        reply = await api.call("GET", f"/api/meetings{query}", role=role)
        assert reply.status == 200
        return [m["id"] for m in reply.body["meetings"]]

    assert await ids("host") == [ada.id]
    assert await ids("host", "?scope=my") == [ada.id]
    # Ada's groups hold Ada and Sam; Zed is in none
    assert await ids("host", "?scope=everyone") == [ada.id, sam.id]
    assert await ids("api_key") == [ada.id, sam.id, zed.id]
    assert await ids("manager_as_team", "?scope=everyone") == [ada.id, sam.id, zed.id]
    zed_view = await api.call("GET", "/api/meetings?scope=everyone", headers=api.cookie(ZED))
    assert [m["id"] for m in zed_view.body["meetings"]] == [zed.id]


async def test_sort_status_and_date_filters(api: Api) -> None:
    soon = (await api.add_meeting(ADA, start=NOW + timedelta(minutes=30)))[0]
    later = (await api.add_meeting(ADA, start=NOW + timedelta(days=2)))[0]
    slots = (NOW + timedelta(days=3), NOW + timedelta(days=4))
    planning = (await api.add_meeting(ADA, start=None, slots=slots))[0]
    gone = (await api.add_meeting(ADA, start=NOW + timedelta(days=1)))[0]
    cancelled = await api.call("POST", f"/api/meetings/{gone.id}/cancel", role="host")
    assert cancelled.status == 200

    async def ids(query: str) -> list[str]:
        reply = await api.call("GET", f"/api/meetings{query}", role="host")
        assert reply.status == 200, reply.body
        return [m["id"] for m in reply.body["meetings"]]

    assert await ids("") == [soon.id, gone.id, later.id, planning.id]
    assert await ids("?sort=-start") == [later.id, gone.id, soon.id, planning.id]
    assert await ids("?status=starting_soon") == [soon.id]
    assert await ids("?status=cancelled,planning") == [gone.id, planning.id]
    assert await ids("?from=2025-01-15") == [gone.id, later.id]
    assert await ids("?to=2025-01-14") == [soon.id]
    assert await ids("?from=2025-01-15T00:00:00Z&to=2025-01-16T12:00:00%2B00:00") == [
        gone.id,
        later.id,
    ]


@pytest.mark.parametrize(
    "query",
    [
        "?scope=all",
        "?sort=host",
        "?status=late",
        "?from=yesterday",
        "?from=2025-01-15&to=2025-01-14",
    ],
)
async def test_listing_errors(api: Api, query: str) -> None:
    reply = await api.call("GET", f"/api/meetings{query}", role="host")
    assert (reply.status, reply.code) == (422, "invalid")


async def test_an_unknown_meeting_is_not_found(api: Api) -> None:
    reply = await api.call("GET", "/api/meetings/nope", role="host")
    assert (reply.status, reply.code) == (404, "not_found")


async def test_another_teams_meeting_looks_exactly_like_an_unknown_one(api: Api) -> None:
    bob = (await api.add_meeting(BOB))[0]
    theirs = await api.call("GET", f"/api/meetings/{bob.id}", role="host")
    unknown = await api.call("GET", "/api/meetings/0123456789abcdef", role="host")
    assert (theirs.status, theirs.body) == (unknown.status, unknown.body)
    # team B's own member sees it
    mine = await api.call("GET", f"/api/meetings/{bob.id}", role="other_member")
    assert (mine.status, mine.body["meeting"]["host"]) == (200, BOB)


async def test_status_and_indicator_survive_a_restart(api: Api, aiohttp_client: Any) -> None:
    # two days ahead: beyond what the status scheduler loads at start-up
    meeting, _ = await api.add_meeting(ADA, start=NOW + timedelta(days=2))
    entered = PresenceEvent(
        PresenceKind.ENTERED, TEAM_A, meeting.room_id, "guest-1", Role.GUEST, NOW, meeting.id
    )
    api.app[PRESENCE].record(entered)
    await api.flush()
    # another node on the same database has never seen the event
    other = await aiohttp_client(create_app(api.settings, clock=api.clock))
    headers = api.cookie(ADA)
    one = await other.get(f"/api/meetings/{meeting.id}", headers=headers)
    assert (await one.json())["meeting"]["indicator"] == "entered"
    listed = await other.get("/api/meetings", headers=headers)
    assert [m["indicator"] for m in (await listed.json())["meetings"]] == ["entered"]
