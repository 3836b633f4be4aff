"""REST changes to a meeting: cancel, reschedule, reassign, summary, review, and
what each does to the guest's credential (single use, revocation)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from rooms.room import RoomKind
from rooms.tokens import digest_key, digest_link, digest_secret, new_rejoin_secret
from signalling.store.base import Store
from tests.service.api_support import ADA, BOB, NOW, SAM, TEAM_A, Api, make_api

START = NOW + timedelta(hours=3)
#: inside the link's window for a meeting at START (it opens 15 min before)
AT_START = START + timedelta(minutes=1)


@pytest.fixture
async def api(aiohttp_client: Any, tmp_path: Path) -> Api:
    return await make_api(aiohttp_client, tmp_path)


def iso(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


async def redeem(store: Store, token: str, at: Any = AT_START) -> str | None:
    """Redeem a link token as a new device: its rejoin secret, or None if refused."""
    secret, device = new_rejoin_secret()
    found = await store.redeem_link(digest_link(token), device, at)
    return secret if found is not None else None


# -- cancel ---------------------------------------------------------------------------


async def test_cancel_revokes_the_link_and_the_guest_key(api: Api) -> None:
    meeting, issued = await api.add_meeting(ADA, start=START)
    assert issued is not None
    reply = await api.call("POST", f"/api/meetings/{meeting.id}/cancel", role="member")
    assert reply.status == 200
    view = reply.body["meeting"]
    assert view["status"] == "cancelled"
    assert view["cancelled_at"] == iso(NOW)
    assert await redeem(api.store, issued.link_token) is None
    _, device = new_rejoin_secret()
    key = digest_key(meeting.room_id, issued.guest_key)
    assert await api.store.redeem_key(key, device, AT_START) is None
    stored = await api.store.get_meeting(meeting.id)
    assert stored.cancelled_by == SAM
    kinds = [e.kind for e in await api.store.log_for_meeting(TEAM_A, meeting.id)]
    assert "cancelled" in kinds
    again = await api.call("POST", f"/api/meetings/{meeting.id}/cancel", role="host")
    assert (again.status, again.code) == (409, "conflict")


async def test_cancel_ends_a_redeemed_devices_rejoin(api: Api) -> None:
    meeting, issued = await api.add_meeting(ADA, start=START)
    assert issued is not None
    secret = await redeem(api.store, issued.link_token)
    assert secret is not None
    assert await api.store.find_by_device(digest_secret(secret), AT_START) is not None
    assert (await api.call("POST", f"/api/meetings/{meeting.id}/cancel", role="host")).status == 200
    assert await api.store.find_by_device(digest_secret(secret), AT_START) is None


async def test_a_meeting_that_is_over_cannot_be_cancelled(api: Api) -> None:
    meeting, _ = await api.add_meeting(ADA, start=START)
    api.clock.set(START + timedelta(hours=1))
    reply = await api.call("POST", f"/api/meetings/{meeting.id}/cancel", role="host")
    assert (reply.status, reply.code) == (409, "conflict")


# -- reschedule -----------------------------------------------------------------------


async def test_reschedule_revokes_the_old_link_and_the_new_one_works(api: Api) -> None:
    meeting, issued = await api.add_meeting(ADA, start=START)
    assert issued is not None
    new_start = START + timedelta(days=1)
    reply = await api.call(
        "POST",
        f"/api/meetings/{meeting.id}/reschedule",
        role="api_key",
        json={"start": iso(new_start), "duration": 2700},
    )
    assert reply.status == 200, reply.body
    moved = reply.body["meeting"]
    assert (moved["start"], moved["duration"]) == (iso(new_start), 2700)
    assert moved["token"] != issued.link_token
    assert moved["link"].endswith(moved["token"])
    # the old link opens neither the old time nor the new one
    assert await redeem(api.store, issued.link_token) is None
    assert await redeem(api.store, issued.link_token, new_start) is None
    # the new one is not valid at the old time, and is at the new one, once
    assert await redeem(api.store, moved["token"]) is None
    assert await redeem(api.store, moved["token"], new_start) is not None
    assert await redeem(api.store, moved["token"], new_start) is None
    kinds = [e.kind for e in await api.store.log_for_meeting(TEAM_A, meeting.id)]
    assert "rescheduled" in kinds


async def test_reschedule_errors(api: Api) -> None:
    meeting, _ = await api.add_meeting(ADA, start=START)
    path = f"/api/meetings/{meeting.id}/reschedule"
    past = await api.call("POST", path, role="host", json={"start": iso(NOW - timedelta(hours=1))})
    assert (past.status, past.code) == (422, "invalid")
    missing = await api.call("POST", path, role="host", json={})
    assert (missing.status, missing.code) == (422, "invalid")
    typed = await api.call("POST", path, role="host", json={"start": 12})
    assert (typed.status, typed.code) == (400, "bad_message")
    await api.call("POST", f"/api/meetings/{meeting.id}/cancel", role="host")
    cancelled = await api.call("POST", path, role="host", json={"start": iso(START)})
    assert (cancelled.status, cancelled.code) == (409, "conflict")


async def test_reschedule_gives_a_meeting_in_planning_its_time_and_link(api: Api) -> None:
    slots = (START, START + timedelta(days=1))
    meeting, _ = await api.add_meeting(ADA, start=None, slots=slots)
    reply = await api.call(
        "POST", f"/api/meetings/{meeting.id}/reschedule", role="host", json={"start": iso(START)}
    )
    assert reply.body["meeting"]["status"] == "scheduled"
    assert await redeem(api.store, reply.body["meeting"]["token"]) is not None


# -- reassign -------------------------------------------------------------------------


async def test_reassign_from_a_user_room_moves_it_and_reissues_the_link(api: Api) -> None:
    meeting, issued = await api.add_meeting(ADA, start=START)
    assert issued is not None
    reply = await api.call(
        "POST", f"/api/meetings/{meeting.id}/reassign", role="member", json={"host": SAM}
    )
    assert reply.status == 200, reply.body
    view = reply.body["meeting"]
    assert (view["host"], view["room"]) == (SAM, api.own_room(SAM).slug)
    assert view["token"] and view["guest_key"]
    assert await redeem(api.store, issued.link_token) is None
    assert await redeem(api.store, view["token"]) is not None
    kinds = [e.kind for e in await api.store.log_for_meeting(TEAM_A, meeting.id)]
    assert "reassigned" in kinds


async def test_reassign_in_a_shared_room_keeps_the_room_and_the_link(api: Api) -> None:
    reception = api.shared_room(TEAM_A, RoomKind.RECEPTION)
    meeting, issued = await api.add_meeting(ADA, room=reception, start=START)
    assert issued is not None
    reply = await api.call(
        "POST", f"/api/meetings/{meeting.id}/reassign", role="host", json={"host": SAM}
    )
    view = reply.body["meeting"]
    # the same credential: its sealed copy is the one stored (none for this
    # meeting, seeded without one), no new one is issued
    assert (view["host"], view["room"], view["guest_key"]) == (SAM, reception.slug, None)
    assert view["token"] is None
    assert await redeem(api.store, issued.link_token) is not None


async def test_reassign_errors(api: Api) -> None:
    meeting, _ = await api.add_meeting(ADA, start=START)
    path = f"/api/meetings/{meeting.id}/reassign"
    same = await api.call("POST", path, role="host", json={"host": ADA})
    assert (same.status, same.code) == (409, "conflict")
    outsider = await api.call("POST", path, role="host", json={"host": BOB})
    assert (outsider.status, outsider.code) == (404, "not_found")
    missing = await api.call("POST", path, role="host", json={})
    assert (missing.status, missing.code) == (422, "invalid")


# -- summary --------------------------------------------------------------------------


async def test_only_the_host_writes_the_summary(api: Api) -> None:
    meeting, _ = await api.add_meeting(ADA, start=START)
    path = f"/api/meetings/{meeting.id}/summary"
    for role in ("member", "api_key", "manager_as_team"):
        refused = await api.call("POST", path, role=role, json={"text": "Rest the knee."})
        assert (refused.status, refused.code) == (403, "not_host"), role
    reply = await api.call("POST", path, role="host", json={"text": "Rest the knee."})
    assert reply.status == 200
    assert reply.body["meeting"]["summary"] == "Rest the knee."
    empty = await api.call("POST", path, role="host", json={"text": "   "})
    assert (empty.status, empty.code) == (422, "invalid")
    assert (await api.store.get_meeting(meeting.id)).summary == "Rest the knee."


# -- review ---------------------------------------------------------------------------


async def test_the_guest_reviews_with_the_rejoin_secret_after_the_start(api: Api) -> None:
    meeting, issued = await api.add_meeting(ADA, start=START)
    assert issued is not None
    secret = await redeem(api.store, issued.link_token)
    assert secret is not None
    path = f"/api/meetings/{meeting.id}/review"
    headers = {"X-Vestibule-Rejoin": secret}
    body = {"rating": 5, "text": "Very helpful"}
    api.clock.set(START - timedelta(minutes=5))
    early = await api.call("POST", path, headers=headers, json=body)
    assert (early.status, early.code) == (409, "conflict")
    api.clock.set(START + timedelta(minutes=40))
    reply = await api.call("POST", path, headers=headers, json=body)
    assert reply.status == 200
    assert reply.body == {"review": {"rating": 5, "text": "Very helpful"}}
    staff_view = await api.call("GET", f"/api/meetings/{meeting.id}", role="host")
    assert staff_view.body["meeting"]["review"] == {"rating": 5, "text": "Very helpful"}
    twice = await api.call("POST", path, headers=headers, json=body)
    assert (twice.status, twice.code) == (409, "conflict")


async def test_review_refusals_reveal_nothing(api: Api) -> None:
    meeting, issued = await api.add_meeting(ADA, start=START)
    _, other_issued = await api.add_meeting(SAM, start=START)
    assert issued is not None and other_issued is not None
    secret = await redeem(api.store, issued.link_token)
    other_secret = await redeem(api.store, other_issued.link_token)
    assert secret is not None and other_secret is not None
    api.clock.set(START + timedelta(minutes=40))
    path = f"/api/meetings/{meeting.id}/review"
    body = {"rating": 4}
    missing = await api.call("POST", path, json=body)
    assert (missing.status, missing.code) == (401, "unauthorized")
    wrong = await api.call("POST", path, headers={"X-Vestibule-Rejoin": "guess"}, json=body)
    elsewhere = await api.call(
        "POST", path, headers={"X-Vestibule-Rejoin": other_secret}, json=body
    )
    unknown = await api.call(
        "POST", "/api/meetings/nope/review", headers={"X-Vestibule-Rejoin": secret}, json=body
    )
    for reply in (wrong, elsewhere, unknown):
        assert (reply.status, reply.body) == (401, wrong.body)
        assert reply.code == "token_invalid"
    # a staff session is no guest
    staff = await api.call("POST", path, role="host", json=body)
    assert (staff.status, staff.code) == (401, "unauthorized")
    bad = await api.call("POST", path, headers={"X-Vestibule-Rejoin": secret}, json={"rating": 6})
    assert (bad.status, bad.code) == (422, "invalid")
    none = await api.call("POST", path, headers={"X-Vestibule-Rejoin": secret}, json={})
    assert (none.status, none.code) == (422, "invalid")
    assert (await api.store.get_meeting(meeting.id)).review_rating is None


async def test_review_after_a_reschedule_is_refused(api: Api) -> None:
    meeting, issued = await api.add_meeting(ADA, start=START)
    assert issued is not None
    secret = await redeem(api.store, issued.link_token)
    assert secret is not None
    moved = await api.call(
        "POST",
        f"/api/meetings/{meeting.id}/reschedule",
        role="host",
        json={"start": iso(START + timedelta(minutes=30))},
    )
    assert moved.status == 200
    api.clock.set(START + timedelta(minutes=40))
    reply = await api.call(
        "POST",
        f"/api/meetings/{meeting.id}/review",
        headers={"X-Vestibule-Rejoin": secret},
        json={"rating": 3},
    )
    assert (reply.status, reply.code) == (401, "token_invalid")
