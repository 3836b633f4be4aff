"""REST room administration: create within the plan, rename, settings, archive."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rooms.room import RoomKind
from tests.service.api_support import ADA, SAM, TEAM_A, TEAM_B, Api, make_api


@pytest.fixture
async def api(aiohttp_client: Any, tmp_path: Path) -> Api:
    return await make_api(aiohttp_client, tmp_path)


async def test_rename_and_settings_keep_the_slug(api: Api) -> None:
    reception = api.shared_room(TEAM_A, RoomKind.RECEPTION)
    path = f"/api/rooms/{reception.id}"
    reply = await api.call(
        "PATCH", path, role="member", json={"name": "Front desk", "show_position": False}
    )
    assert reply.status == 200, reply.body
    room = reply.body["room"]
    assert (room["name"], room["slug"], room["show_position"]) == (
        "Front desk",
        reception.slug,
        False,
    )
    assert room["walk_ins"] is True  # untouched
    stored = await api.store.get_room(reception.id)
    assert (stored.name, stored.show_position, stored.walk_ins) == ("Front desk", False, True)
    off = await api.call("PATCH", path, role="host", json={"walk_ins": False})
    assert off.body["room"]["walk_ins"] is False


async def test_bad_changes_are_typed_and_change_nothing(api: Api) -> None:
    meeting_room = api.shared_room(TEAM_A, RoomKind.TEAM_MEETING)
    path = f"/api/rooms/{meeting_room.id}"
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({}, 422, "invalid"),
        ({"name": "  "}, 422, "invalid"),
        ({"walk_ins": True}, 422, "invalid"),
        ({"show_position": "no"}, 400, "bad_message"),
        ({"colour": "red"}, 400, "bad_message"),
    ]
    for body, status, code in cases:
        reply = await api.call("PATCH", path, role="member", json=body)
        assert (reply.status, reply.code) == (status, code), body
    assert await api.store.get_room(meeting_room.id) == meeting_room


async def test_who_may_change_a_room(api: Api) -> None:
    own = api.own_room(ADA)
    path = f"/api/rooms/{own.id}"
    reply = await api.call("PATCH", path, role="member", json={"name": "Sam's now"})
    assert (reply.status, reply.code) == (403, "not_host")
    for role in ("manager_as_team", "api_key"):
        reply = await api.call("PATCH", path, role=role, json={"show_position": False})
        assert (reply.status, reply.code) == (403, "forbidden"), role
    for role in ("other_member", "other_api_key"):
        reply = await api.call("PATCH", path, role=role, json={"show_position": False})
        assert (reply.status, reply.code) == (404, "not_found"), role
    reply = await api.call("PATCH", "/api/rooms/ghost", role="host", json={"archived": True})
    assert (reply.status, reply.code) == (404, "not_found")
    reply = await api.call("PATCH", path, role="host", json={"show_position": False})
    assert reply.status == 200


async def test_archive_hides_the_room_and_keeps_its_meetings(api: Api) -> None:
    made = await api.call("POST", "/api/rooms", role="member", json={"name": "Physio"})
    room = made.body["room"]
    assert (room["walk_ins"], room["archived"]) == (False, False)
    meeting, _ = await api.add_meeting(SAM, room=await api.store.get_room(room["id"]))
    path = f"/api/rooms/{room['id']}"
    busy = await api.call("PATCH", path, role="member", json={"archived": True})
    assert (busy.status, busy.code) == (409, "conflict")
    cancelled = await api.call("POST", f"/api/meetings/{meeting.id}/cancel", role="member")
    assert cancelled.status == 200, cancelled.body
    done = await api.call("PATCH", path, role="member", json={"archived": True})
    assert (done.status, done.body["room"]["archived"]) == (200, True)
    me = await api.call("GET", "/api/me", role="member")
    assert room["slug"] not in {r["slug"] for r in me.body["rooms"]}
    listed = await api.call("GET", "/api/rooms", role="member")
    assert {r["slug"]: r["archived"] for r in listed.body["rooms"]}[room["slug"]] is True
    kept = await api.call("GET", f"/api/meetings/{meeting.id}", role="member")
    assert kept.status == 200
    back = await api.call("PATCH", path, role="member", json={"archived": False})
    assert back.body["room"]["archived"] is False


async def test_a_consulting_room_is_not_archived(api: Api) -> None:
    reply = await api.call(
        "PATCH", f"/api/rooms/{api.own_room(ADA).id}", role="host", json={"archived": True}
    )
    assert (reply.status, reply.code) == (422, "invalid")


async def test_create_room_beyond_the_plan_names_the_plan(api: Api) -> None:
    reply = await api.call("POST", "/api/rooms", role="other_member", json={"name": "Extra"})
    assert (reply.status, reply.code) == (403, "plan_limit")
    assert "starter plan" in reply.body["error"]["message"]
    assert len(await api.store.list_rooms(TEAM_B)) == 2


async def test_restoring_a_room_needs_a_place_in_the_plan(api: Api) -> None:
    reception = api.shared_room(TEAM_B, RoomKind.RECEPTION)
    path = f"/api/rooms/{reception.id}"
    done = await api.call("PATCH", path, role="other_member", json={"archived": True})
    assert done.status == 200, done.body
    # the starter plan's one reception is free again: another takes its place
    await api.store.add_room(replace(reception, id="r-new", slug="front-desk", archived=False))
    refused = await api.call("PATCH", path, role="other_member", json={"archived": False})
    assert (refused.status, refused.code) == (403, "plan_limit")
    assert "starter plan" in refused.body["error"]["message"]
    assert (await api.store.get_room(reception.id)).archived is True
