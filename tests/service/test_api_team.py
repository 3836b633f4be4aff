"""REST team records: members, groups, rooms (plan-checked), meeting types, API keys,
and a manager's client accounts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from rooms.passwords import verify_password
from tests.service.api_support import (
    ADA,
    BOB,
    EMAILS,
    MANAGER,
    NOW,
    PASSWORD,
    SAM,
    TEAM_A,
    TEAM_B,
    ZED,
    Api,
    make_api,
)


@pytest.fixture
async def api(aiohttp_client: Any, tmp_path: Path) -> Api:
    return await make_api(aiohttp_client, tmp_path)


# -- members and groups ---------------------------------------------------------------


async def test_members_of_the_team_with_their_rooms(api: Api) -> None:
    reply = await api.call("GET", "/api/members", role="member")
    assert reply.status == 200
    members = {m["id"]: m for m in reply.body["members"]}
    assert set(members) == {ADA, SAM, ZED}  # no manager, nobody of team B
    assert members[ADA]["room"] == api.own_room(ADA).slug
    assert members[ADA]["email"] == EMAILS[ADA]
    other = await api.call("GET", "/api/members", role="other_api_key")
    assert [m["id"] for m in other.body["members"]] == [BOB]


async def test_create_and_list_groups(api: Api) -> None:
    reply = await api.call(
        "POST", "/api/groups", role="host", json={"name": "Physios", "members": [SAM, ZED]}
    )
    assert reply.status == 201
    group = reply.body["group"]
    assert (group["name"], group["members"]) == ("Physios", [SAM, ZED])
    listed = await api.call("GET", "/api/groups", role="member")
    assert [g["name"] for g in listed.body["groups"]] == ["Clinicians", "Physios"]
    # Zed now shares a group with Sam: Zed's "everyone" includes Sam's meetings
    sams, _ = await api.add_meeting(SAM)
    zed_view = await api.call("GET", "/api/meetings?scope=everyone", headers=api.cookie(ZED))
    assert [m["id"] for m in zed_view.body["meetings"]] == [sams.id]
    others = await api.call("GET", "/api/groups", role="other_member")
    assert others.body["groups"] == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "Team B too", "members": [BOB]}, 422, "invalid"),
        ({"name": "Ghosts", "members": ["nobody"]}, 422, "invalid"),
        ({"name": "clinicians"}, 409, "conflict"),
        ({"name": ""}, 422, "invalid"),
        ({"members": [SAM]}, 422, "invalid"),
        ({"name": "X", "members": SAM}, 400, "bad_message"),
    ],
)
async def test_group_errors(api: Api, body: dict[str, Any], status: int, code: str) -> None:
    reply = await api.call("POST", "/api/groups", role="host", json=body)
    assert (reply.status, reply.code) == (status, code)
    assert len(await api.store.list_groups(TEAM_A)) == 1


# -- rooms ----------------------------------------------------------------------------


async def test_rooms_of_the_team(api: Api) -> None:
    reply = await api.call("GET", "/api/rooms", role="member")
    kinds = sorted(room["kind"] for room in reply.body["rooms"])
    assert kinds == ["reception", "team_meeting", "user", "user", "user", "waiting_area"]
    assert all(room["slug"] in api.rooms for room in reply.body["rooms"])
    starter = await api.call("GET", "/api/rooms", role="other_member")
    assert sorted(room["kind"] for room in starter.body["rooms"]) == ["reception", "user"]


async def test_clinic_plan_creates_custom_rooms_with_unique_slugs(api: Api) -> None:
    first = await api.call("POST", "/api/rooms", role="member", json={"name": "Physio Room"})
    assert first.status == 201
    assert first.body["room"]["kind"] == "custom"
    assert first.body["room"]["shared"] is True
    second = await api.call("POST", "/api/rooms", role="api_key", json={"name": "Physio room"})
    assert second.status == 201
    assert first.body["room"]["slug"] != second.body["room"]["slug"]
    assert second.body["room"]["slug"].startswith(first.body["room"]["slug"])
    reserved = await api.call("POST", "/api/rooms", role="host", json={"name": "Dashboard"})
    assert reserved.status == 201 and reserved.body["room"]["slug"] != "dashboard"


@pytest.mark.parametrize(
    ("role", "kind", "status", "code"),
    [
        ("other_member", "custom", 403, "plan_limit"),  # starter: Reception only
        ("other_member", "team_meeting", 403, "plan_limit"),
        ("other_member", "reception", 403, "plan_limit"),  # one is all it gets
        ("member", "waiting_area", 403, "plan_limit"),  # clinic: one queue
        ("member", "user", 422, "invalid"),
        ("member", "lounge", 422, "invalid"),
    ],
)
async def test_rooms_the_plan_does_not_allow(
    api: Api, role: str, kind: str, status: int, code: str
) -> None:
    reply = await api.call("POST", "/api/rooms", role=role, json={"name": "More", "kind": kind})
    assert (reply.status, reply.code) == (status, code)


async def test_room_needs_a_name(api: Api) -> None:
    reply = await api.call("POST", "/api/rooms", role="host", json={"kind": "custom"})
    assert (reply.status, reply.code) == (422, "invalid")


# -- meeting types --------------------------------------------------------------------


async def test_create_and_list_meeting_types(api: Api) -> None:
    body = {
        "label": "Physio session",
        "duration": 2700,
        "colour": "#16A34A",
        "online_bookable": True,
        "known_patients_only": True,
        "kinds": ["video", "in_person"],
        "address": "1 Harbour Road",
        "instructions": "Wear loose clothing.",
        "description": "45 minutes",
    }
    reply = await api.call("POST", "/api/meeting-types", role="member", json=body)
    assert reply.status == 201
    created = reply.body["meeting_type"]
    assert created == {
        **body,
        "id": created["id"],
        "colour": "#16a34a",
        "kinds": ["in_person", "video"],
        "retired": False,
    }
    listed = await api.call("GET", "/api/meeting-types", role="host")
    assert [t["label"] for t in listed.body["meeting_types"]] == ["Consultation", "Physio session"]
    other = await api.call("GET", "/api/meeting-types", role="other_member")
    assert [t["label"] for t in other.body["meeting_types"]] == ["B visit"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"label": "X"}, 422, "invalid"),
        ({"label": "X", "duration": 60}, 422, "invalid"),
        ({"label": "X", "duration": 1800, "colour": "blue"}, 422, "invalid"),
        ({"label": "X", "duration": 1800, "kinds": []}, 422, "invalid"),
        ({"label": "X", "duration": 1800, "kinds": ["telepathy"]}, 422, "invalid"),
        ({"label": "", "duration": 1800}, 422, "invalid"),
        ({"label": "X", "duration": True}, 400, "bad_message"),
        ({"label": "X", "duration": 1800, "online_bookable": "yes"}, 400, "bad_message"),
    ],
)
async def test_meeting_type_errors(api: Api, body: dict[str, Any], status: int, code: str) -> None:
    reply = await api.call("POST", "/api/meeting-types", role="host", json=body)
    assert (reply.status, reply.code) == (status, code)


# -- API keys ---------------------------------------------------------------------------


async def test_an_api_key_is_shown_once_and_acts_as_its_team(api: Api) -> None:
    reply = await api.call("POST", "/api/api-keys", role="host", json={"label": "Booking site"})
    assert reply.status == 201
    key = reply.body["key"]
    assert key.startswith("vk_") and len(key) > 40
    me = await api.call("GET", "/api/me", headers={"Authorization": f"Bearer {key}"})
    assert (me.body["team"]["id"], me.body["staff"]["name"]) == (TEAM_A, "Booking site")
    audit = await api.store.list_audit("org-a", team_id=TEAM_A)
    assert [(e.action, e.actor_id) for e in audit] == [("api_key.create", ADA)]
    forged = await api.call("GET", "/api/me", headers={"Authorization": f"Bearer {key}x"})
    assert (forged.status, forged.code) == (401, "token_invalid")


async def test_api_key_errors(api: Api) -> None:
    keyed = await api.call("POST", "/api/api-keys", role="api_key", json={"label": "Spawn"})
    assert (keyed.status, keyed.code) == (403, "forbidden")
    empty = await api.call("POST", "/api/api-keys", role="host", json={"label": " "})
    assert (empty.status, empty.code) == (422, "invalid")


# -- clients (a manager's view) ------------------------------------------------------


async def test_clients_list_counts_this_months_appointments(api: Api) -> None:
    await api.add_meeting(ADA, start=NOW + timedelta(hours=2))
    await api.add_meeting(SAM, start=NOW + timedelta(days=3))
    await api.add_meeting(ADA, start=NOW + timedelta(days=40))  # next month
    gone, _ = await api.add_meeting(ADA, start=NOW + timedelta(days=2))
    await api.call("POST", f"/api/meetings/{gone.id}/cancel", role="host")
    await api.add_meeting(BOB, start=NOW + timedelta(days=1))
    reply = await api.call("GET", "/api/clients", role="manager")
    assert reply.status == 200
    clients = {c["id"]: c for c in reply.body["clients"]}
    assert set(clients) == {TEAM_A, TEAM_B}  # not org C's team
    assert clients[TEAM_A]["appointments_this_month"] == 2
    assert clients[TEAM_B]["appointments_this_month"] == 1
    assert clients[TEAM_A]["signup_date"] == (NOW - timedelta(days=90)).date().isoformat()
    assert clients[TEAM_A]["reference"] == "HC-1"
    viewing = await api.call("GET", "/api/clients", role="manager_as_team")
    assert viewing.body == reply.body


async def test_create_a_client_account(api: Api) -> None:
    body = {
        "name": "Dr Priya Shah",
        "email": "Priya@Shah.example.org",
        "password": "long enough password",
        "title": "Dr",
        "speciality": "Dermatology",
        "contact": "2 Quay Street\nHarbour Town",
        "phone": "+44 20 7946 0999",
        "reference": "PS-9",
        "plan": "professional",
    }
    reply = await api.call("POST", "/api/clients", role="manager", json=body)
    assert reply.status == 201, reply.body
    client = reply.body["client"]
    assert (client["name"], client["email"], client["plan"]) == (
        "Dr Priya Shah",
        "priya@shah.example.org",
        "professional",
    )
    assert client["signup_date"] == NOW.date().isoformat()
    team_id = client["id"]
    rooms = await api.store.list_rooms(team_id)
    assert sorted(str(r.kind) for r in rooms) == ["reception", "team_meeting", "user"]
    account = await api.store.find_staff_by_email("priya@shah.example.org")
    assert account is not None and account.team_id == team_id
    assert verify_password("long enough password", account.password_hash)
    assert "long enough password" not in account.password_hash
    listed = await api.call("GET", "/api/clients", role="manager")
    assert team_id in {c["id"] for c in listed.body["clients"]}
    audit = await api.store.list_audit("org-a", team_id=team_id)
    assert [(e.action, e.actor_id) for e in audit] == [("client.create", MANAGER)]
    # the new clinician can log in and sees their own team
    login = {"email": "priya@shah.example.org", "password": "long enough password"}
    assert (await api.call("POST", "/api/login", json=login)).status == 200
    me = await api.call("GET", "/api/me")
    assert me.body["team"]["id"] == team_id


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"email": EMAILS[ADA].upper()}, 409, "conflict"),
        ({"email": EMAILS[MANAGER]}, 409, "conflict"),
        ({"password": "short"}, 422, "invalid"),
        ({"email": "not an email"}, 422, "invalid"),
        ({"name": ""}, 422, "invalid"),
        ({"plan": "enterprise"}, 422, "invalid"),
        ({"phone": "call me"}, 422, "invalid"),
        ({"password": 12345678}, 400, "bad_message"),
    ],
)
async def test_client_errors(api: Api, change: dict[str, Any], status: int, code: str) -> None:
    body = {"name": "Dr New", "email": "new@new.example.org", "password": PASSWORD, **change}
    reply = await api.call("POST", "/api/clients", role="manager", json=body)
    assert (reply.status, reply.code) == (status, code), reply.body
    assert [t.id for t in await api.store.list_teams("org-a")] == [TEAM_B, TEAM_A]


async def test_client_room_slugs_avoid_taken_ones(api: Api) -> None:
    # team A is "Harbour Clinic": its reception's slug is already taken
    body = {
        "name": "Dr Other",
        "email": "other@harbour.example.org",
        "password": PASSWORD,
        "team_name": "Harbour Clinic",
    }
    reply = await api.call("POST", "/api/clients", role="manager", json=body)
    assert reply.status == 201, reply.body
    rooms = await api.store.list_rooms(reply.body["client"]["id"])
    assert not {r.slug for r in rooms} & set(api.rooms)
