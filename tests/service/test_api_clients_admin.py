"""The managing account over REST: creating a client account by first and
last name (its first member administers it), editing and disabling one (its
members' credentials and open websockets end), changing its plan (a downgrade
names the rooms to archive first), and the audit of what managers did."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType

from rooms.accounts import Plan
from rooms.room import RoomKind
from tests.service.api_support import (
    ADA,
    BOB,
    EMAILS,
    MANAGER,
    NOW,
    PASSWORD,
    TEAM_A,
    TEAM_B,
    TEAM_C,
    Api,
    make_api,
)


@pytest.fixture
async def api(aiohttp_client: Any, tmp_path: Path) -> Api:
    return await make_api(aiohttp_client, tmp_path)


async def test_a_new_client_is_named_by_first_and_last_name_and_its_first_member_administers_it(
    api: Api,
) -> None:
    body = {
        "title": "Dr",
        "first_name": "Rosa",
        "last_name": "Lind",
        "email": "rosa@lind.example",
        "phone": "+44 7700 900123",
        "password": "long enough",
        "speciality": "Psychotherapy",
        "contact": "Lind Practice, 2 Mill Lane",
        "plan": "professional",
    }
    reply = await api.call("POST", "/api/clients", role="manager", json=body)
    assert reply.status == 201
    client = reply.body["client"]
    assert (client["name"], client["plan"], client["disabled"]) == (
        "Rosa Lind",
        "professional",
        False,
    )
    account = await api.store.find_staff_by_email("rosa@lind.example")
    assert account is not None
    assert (account.name, account.title, account.admin) == ("Rosa Lind", "Dr", True)
    listed = await api.call("GET", "/api/clients", role="manager")
    plans = {c["name"]: c["plan"] for c in listed.body["clients"]}
    assert plans == {
        "Rosa Lind": "professional",
        "Harbour Clinic": "clinic",
        "Bay Physio": "starter",
    }


async def test_a_disabled_client_account_ends_its_members_sessions(api: Api) -> None:
    cookie = api.cookie(BOB)
    key = {"Authorization": f"Bearer {api.keys[TEAM_B]}"}
    board = await api.client.ws_connect("/ws/dashboard", headers=cookie)
    await board.send_json({"type": "subscribe", "scope": "my"})
    assert (await board.receive_json())["type"] == "snapshot"

    reply = await api.call(
        "PATCH", f"/api/clients/{TEAM_B}", role="manager", json={"disabled": True}
    )
    assert reply.body["client"]["disabled"] is True
    closed = await board.receive()
    assert closed.type is WSMsgType.CLOSE and closed.data == 1008
    for headers in (cookie, key):
        me = await api.call("GET", "/api/me", headers=headers)
        assert (me.status, me.code) == (401, "token_invalid")
    login = {"email": EMAILS[BOB], "password": PASSWORD}
    refused = await api.call("POST", "/api/login", json=login)
    assert (refused.status, refused.code) == (403, "forbidden")
    assert (await api.call("GET", "/api/me", role="host")).status == 200  # team A untouched

    await api.call("PATCH", f"/api/clients/{TEAM_B}", role="manager", json={"disabled": False})
    assert (await api.call("POST", "/api/login", json=login)).status == 200
    assert (await api.store.get_staff(BOB)).password_hash  # nothing was deleted


@pytest.mark.parametrize(
    ("team", "body", "outcome"),
    [
        (TEAM_A, {"disabled": "yes"}, (400, "bad_message")),
        (TEAM_A, {"email": "nope"}, (422, "invalid")),
        (TEAM_A, {"name": ""}, (422, "invalid")),
        (TEAM_C, {"reference": "X"}, (404, "not_found")),  # another organisation's
    ],
)
async def test_a_bad_edit_is_refused(
    api: Api, team: str, body: dict[str, Any], outcome: tuple[int, str]
) -> None:
    reply = await api.call("PATCH", f"/api/clients/{team}", role="manager", json=body)
    assert (reply.status, reply.code) == outcome
    assert not (await api.store.get_team(TEAM_A)).disabled


async def test_a_downgrade_names_the_rooms_to_archive_and_waits_for_them(api: Api) -> None:
    refused = await api.call(
        "PUT", f"/api/clients/{TEAM_A}/plan", role="manager", json={"plan": "starter"}
    )
    assert (refused.status, refused.code) == (403, "plan_limit")
    message = refused.body["error"]["message"]
    assert "Team Meeting (" in message and "Waiting Area (" in message
    assert (await api.store.get_team(TEAM_A)).plan is Plan.CLINIC
    for kind in (RoomKind.TEAM_MEETING, RoomKind.WAITING_AREA):
        room = api.shared_room(TEAM_A, kind)
        await api.store.update_room(replace(room, archived=True))
    done = await api.call(
        "PUT", f"/api/clients/{TEAM_A}/plan", role="manager", json={"plan": "starter"}
    )
    assert (done.body["client"]["plan"], done.body["added_rooms"]) == ("starter", [])

    upgraded = await api.call(
        "PUT", f"/api/clients/{TEAM_B}/plan", role="manager", json={"plan": "professional"}
    )
    assert [r["kind"] for r in upgraded.body["added_rooms"]] == ["team_meeting"]
    kinds = {r.kind for r in await api.store.list_rooms(TEAM_B)}
    assert RoomKind.TEAM_MEETING in kinds
    bad = await api.call("PUT", f"/api/clients/{TEAM_B}/plan", role="manager", json={"plan": "x"})
    assert (bad.status, bad.code) == (422, "invalid")


async def test_the_audit_lists_what_managers_did_while_viewing_as(api: Api) -> None:
    theirs, _ = await api.add_meeting(ADA)
    own, _ = await api.add_meeting(ADA)
    await api.call("POST", f"/api/meetings/{own.id}/cancel", role="host")  # a member's own act
    # a second apart each: the audit is ordered by time
    api.clock.set(NOW + timedelta(seconds=1))
    await api.call("POST", "/api/view-as", role="manager", json={"team": TEAM_A})
    api.clock.set(NOW + timedelta(seconds=2))
    cancelled = await api.call("POST", f"/api/meetings/{theirs.id}/cancel", role="manager_as_team")
    assert cancelled.status == 200
    api.clock.set(NOW + timedelta(seconds=3))
    await api.call("DELETE", "/api/view-as", role="manager_as_team")

    reply = await api.call("GET", "/api/audit", role="manager")
    got = [
        (e["action"], e["target"], e["actor_name"], e["team_name"]) for e in reply.body["entries"]
    ]
    assert got == [
        ("view_as.end", TEAM_A, "Practice Office", "Harbour Clinic"),
        ("meeting.cancel", theirs.id, "Practice Office", "Harbour Clinic"),
        ("view_as.start", TEAM_A, "Practice Office", "Harbour Clinic"),
    ]
    assert all(e["actor"] == MANAGER for e in reply.body["entries"])
    other = await api.call("GET", f"/api/audit?team={TEAM_B}", role="manager")
    assert other.body["entries"] == []
