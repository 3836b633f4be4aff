"""Team administration over REST: inviting a clinician (the invitation mail
through a real SMTP server, the one-time link, choosing a password), the
admin flag and the last administrator, disabling a member (meetings handed
over or cancelled, room archived, every credential and open websocket ended,
on a second node too), enabling again, renaming a room's address, editing
groups."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import WSMsgType

from rooms.room import RoomKind
from rooms.tokens import digest_link
from signalling.bootstrap import create_app
from signalling.clock import FixedClock
from signalling.keys import STAFF_SOCKETS
from signalling.staff_auth import COOKIE
from tests.service.api_support import (
    ADA,
    BASE_URL,
    BOB,
    EMAILS,
    JWT_SECRET,
    NOW,
    PASSWORD,
    SAM,
    TEAM_A,
    ZED,
    Api,
    make_api,
)
from tests.service.mail_support import Inbox, mail_api, mail_settings, serving_inbox

WELCOME = re.compile(re.escape(BASE_URL) + r"/welcome/([A-Za-z0-9_-]{20,})")
NEW = {"name": "Dr Lin Park", "email": "lin.park@a.example.org", "speciality": "Dermatology"}


@pytest.fixture
async def api(aiohttp_client: Any, tmp_path: Path) -> Api:
    return await make_api(aiohttp_client, tmp_path)


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with serving_inbox() as box:
        yield box


def staff_jwt(staff_id: str, now: datetime = NOW) -> str:
    exp = int((now + timedelta(minutes=10)).timestamp())
    return jwt.encode({"sub": staff_id, "exp": exp}, JWT_SECRET, algorithm="HS256")


async def members(api: Api) -> dict[str, dict[str, Any]]:
    reply = await api.call("GET", "/api/members", role="host")
    return {m["id"]: m for m in reply.body["members"]}


# -- inviting -----------------------------------------------------------------------------


async def test_an_invited_clinician_sets_a_password_from_the_mail_and_is_logged_in(
    aiohttp_client: Any, tmp_path: Path, inbox: Inbox
) -> None:
    api = await mail_api(aiohttp_client, mail_settings(tmp_path, inbox))
    reply = await api.call("POST", "/api/members", role="host", json={**NEW, "title": "Dr"})
    assert reply.status == 201
    member = reply.body["member"]
    assert (member["state"], member["admin"], member["room"]) == ("invited", False, "dr-lin-park")

    await inbox.until(received=1)
    mail = inbox.received[0]
    assert mail.envelope_to == [NEW["email"]]
    assert mail.subject == "You are invited to Harbour Clinic on Vestibule"
    (token,) = WELCOME.findall(mail.text)
    assert f"{BASE_URL}/r/dr-lin-park" in mail.text
    assert f'href="{BASE_URL}/welcome/{token}"' in mail.html
    # only the digest and a sealed copy are stored
    invitation = await api.store.find_invitation(digest_link(token))
    assert invitation is not None and token not in repr(invitation)

    # an invited account has no password: no login yet
    refused = await api.call(
        "POST", "/api/login", json={"email": NEW["email"], "password": "anything at all"}
    )
    assert refused.status == 401
    shown = await api.call("GET", f"/api/invitations/{token}")
    assert shown.body == {"name": "Dr Lin Park", "email": NEW["email"], "team": "Harbour Clinic"}
    short = await api.call("POST", f"/api/invitations/{token}", json={"password": "short"})
    assert (short.status, short.code) == (422, "invalid")  # and the link is not spent
    accepted = await api.call(
        "POST", f"/api/invitations/{token}", json={"password": "a long password"}
    )
    assert accepted.status == 200
    assert accepted.body["room"]["slug"] == "dr-lin-park"
    cookie = accepted.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    api.client.session.cookie_jar.clear()
    session = {"Cookie": cookie.split(";", 1)[0]}
    me = await api.call("GET", "/api/me", headers=session)
    assert me.body["staff"]["email"] == NEW["email"]
    assert "dr-lin-park" in [r["slug"] for r in me.body["rooms"]]

    # single use: the link is spent; the password logs in from now on
    again = await api.call("POST", f"/api/invitations/{token}", json={"password": "another one!"})
    assert (again.status, again.code) == (401, "token_invalid")
    assert (await api.call("GET", f"/api/invitations/{token}")).code == "token_invalid"
    login = await api.call(
        "POST", "/api/login", json={"email": NEW["email"], "password": "a long password"}
    )
    assert login.status == 200
    assert (await members(api))[member["id"]]["state"] == "active"


async def test_an_invitation_expires_after_a_week(
    aiohttp_client: Any, tmp_path: Path, inbox: Inbox
) -> None:
    api = await mail_api(aiohttp_client, mail_settings(tmp_path, inbox))
    assert (await api.call("POST", "/api/members", role="host", json=NEW)).status == 201
    await inbox.until(received=1)
    (token,) = WELCOME.findall(inbox.received[0].text)
    api.clock.set(NOW + timedelta(days=7))
    late = await api.call("POST", f"/api/invitations/{token}", json={"password": "long enough"})
    assert (late.status, late.code) == (401, "token_invalid")
    assert (await api.call("GET", f"/api/invitations/{token}")).code == "token_invalid"


@pytest.mark.parametrize(
    ("role", "outcome"),
    [
        ("member", (403, "forbidden")),  # Sam is no administrator
        ("api_key", (403, "forbidden")),
        ("manager", (403, "forbidden")),  # not viewing as the team
        ("manager_as_team", 201),
        ("host", 201),
    ],
)
async def test_who_may_invite(api: Api, role: str, outcome: Any) -> None:
    reply = await api.call("POST", "/api/members", role=role, json=NEW)
    assert (reply.status if reply.status < 300 else (reply.status, reply.code)) == outcome


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        ({**NEW, "email": EMAILS[BOB].upper()}, (409, "conflict")),  # any team's account
        ({**NEW, "email": "not an email"}, (422, "invalid")),
        ({**NEW, "name": ""}, (422, "invalid")),
        ({"email": NEW["email"]}, (422, "invalid")),
        ({**NEW, "admin": "yes"}, (400, "bad_message")),
    ],
)
async def test_a_bad_invitation_is_refused_and_creates_nothing(
    api: Api, body: dict[str, Any], outcome: tuple[int, str]
) -> None:
    reply = await api.call("POST", "/api/members", role="host", json=body)
    assert (reply.status, reply.code) == outcome
    assert set(await members(api)) == {ADA, SAM, ZED}


# -- administrators -------------------------------------------------------------------------


async def test_the_last_administrator_keeps_the_flag(api: Api) -> None:
    alone = await api.call("PATCH", f"/api/members/{ADA}", role="host", json={"admin": False})
    assert (alone.status, alone.code) == (409, "conflict")
    not_admin = await api.call("PATCH", f"/api/members/{ZED}", role="member", json={"admin": True})
    assert (not_admin.status, not_admin.code) == (403, "forbidden")
    granted = await api.call("PATCH", f"/api/members/{SAM}", role="host", json={"admin": True})
    assert granted.body["member"]["admin"] is True
    # now Sam administers too, and Ada may step down
    revoked = await api.call("PATCH", f"/api/members/{ADA}", role="member", json={"admin": False})
    assert revoked.body["member"]["admin"] is False
    last = await api.call("POST", f"/api/members/{SAM}/disable", role="member",
                          json={"meetings": "cancel"})  # fmt: skip
    assert (last.status, last.code) == (409, "conflict")
    other_team = await api.call("PATCH", f"/api/members/{BOB}", role="member", json={})
    assert (other_team.status, other_team.code) == (404, "not_found")


# -- disabling --------------------------------------------------------------------------------


async def test_disabling_hands_meetings_over_archives_the_room_and_ends_every_session(
    aiohttp_client: Any, api: Api
) -> None:
    own = api.own_room(SAM)
    reception = api.shared_room(TEAM_A, RoomKind.RECEPTION)
    coming, _ = await api.add_meeting(SAM)
    shared, _ = await api.add_meeting(SAM, room=reception)
    past, _ = await api.add_meeting(SAM, start=NOW + timedelta(minutes=5))
    slots = (NOW + timedelta(days=2), NOW + timedelta(days=3))
    planning, _ = await api.add_meeting(SAM, start=None, slots=slots)
    api.clock.set(NOW + timedelta(hours=1))  # `past` is over now
    cookie = api.cookie(SAM)
    second = await aiohttp_client(create_app(api.settings, clock=FixedClock(NOW)))
    # Sam is in his room on /ws and on the overview's feed, here and on a second node
    hub = await api.client.ws_connect("/ws")
    await hub.send_json({"type": "hello", "jwt": staff_jwt(SAM, api.clock.now()), "room": own.slug})
    assert (await hub.receive_json())["type"] == "welcome"
    board = await second.ws_connect("/ws/dashboard")
    await board.send_json({"type": "hello", "jwt": staff_jwt(SAM)})
    await board.send_json({"type": "subscribe", "scope": "my"})
    assert (await board.receive_json())["type"] == "snapshot"

    no_one = await api.call("POST", f"/api/members/{SAM}/disable", role="host",
                            json={"meetings": "reassign"})  # fmt: skip
    assert (no_one.status, no_one.code) == (422, "invalid")
    reply = await api.call("POST", f"/api/members/{SAM}/disable", role="host",
                           json={"meetings": "reassign", "to": ADA})  # fmt: skip
    assert reply.status == 200
    assert reply.body["member"]["state"] == "disabled"
    assert sorted(reply.body["reassigned"]) == sorted([coming.id, shared.id, planning.id])
    assert reply.body["cancelled"] == []

    moved = await api.store.get_meeting(coming.id)
    assert (moved.host_id, moved.room_id) == (ADA, api.own_room(ADA).id)
    assert (await api.store.get_meeting(shared.id)).room_id == reception.id
    assert (await api.store.get_meeting(past.id)).host_id == SAM  # history stays
    assert (await api.store.get_room(own.id)).archived
    assert (await api.store.get_staff(SAM)).disabled  # kept, not deleted

    # this node closed the open websocket at once; the second node at its sweep
    closed = await hub.receive()
    assert closed.type is WSMsgType.CLOSE and closed.data == 1008
    assert await second.app[STAFF_SOCKETS].sweep() == 1
    closed = await board.receive()
    assert closed.type is WSMsgType.CLOSE and closed.data == 1008
    for client in (api.client, second):
        me = await client.get("/api/me", headers=cookie)
        assert me.status == 401
    login = {"email": EMAILS[SAM], "password": PASSWORD}
    refused = await api.call("POST", "/api/login", json=login)
    assert (refused.status, refused.code) == (403, "forbidden")

    enabled = await api.call("POST", f"/api/members/{SAM}/enable", role="host")
    assert enabled.body["member"]["state"] == "active"
    assert not (await api.store.get_room(own.id)).archived
    again = await api.call("POST", "/api/login", json=login)
    assert again.status == 200


async def test_disabling_with_cancel_sends_each_guest_the_cancellation(
    aiohttp_client: Any, tmp_path: Path, inbox: Inbox
) -> None:
    api = await mail_api(aiohttp_client, mail_settings(tmp_path, inbox))
    first, _ = await api.add_meeting(SAM, guest="Pat One")
    second, _ = await api.add_meeting(SAM, start=NOW + timedelta(days=1), guest="Pat Two")
    reply = await api.call("POST", f"/api/members/{SAM}/disable", role="host",
                           json={"meetings": "cancel"})  # fmt: skip
    assert sorted(reply.body["cancelled"]) == sorted([first.id, second.id])
    await inbox.until(received=2)
    assert all("cancelled" in m.subject for m in inbox.received[:2])
    for meeting in (first, second):
        stored = await api.store.get_meeting(meeting.id)
        assert stored.cancelled_by == ADA
        assert await api.store.get_credential_for_meeting(meeting.id) is None


# -- addresses and groups ---------------------------------------------------------------------


async def test_renaming_a_room_address(api: Api) -> None:
    ada_room = api.own_room(ADA)
    reply = await api.call("PUT", f"/api/members/{ADA}/room", role="host", json={"slug": "Dr-Ada"})
    assert reply.body["room"]["slug"] == "dr-ada"
    assert (await api.store.find_room_by_slug("dr-ada")) is not None
    assert await api.store.find_room_by_slug(ada_room.slug) is None
    own = await api.call("PUT", f"/api/members/{SAM}/room", role="member", json={"slug": "sam-s"})
    assert own.status == 200
    cases = [
        ("member", ADA, {"slug": "mine-now"}, (403, "forbidden")),
        ("host", SAM, {"slug": "dr-ada"}, (409, "conflict")),
        ("host", SAM, {"slug": "two--hyphens"}, (422, "invalid")),
        ("host", SAM, {"slug": "api"}, (422, "invalid")),
        ("host", BOB, {"slug": "bobs"}, (404, "not_found")),
        ("api_key", ADA, {"slug": "by-key"}, (403, "forbidden")),
    ]
    for role, who, body, outcome in cases:
        refused = await api.call("PUT", f"/api/members/{who}/room", role=role, json=body)
        assert (refused.status, refused.code) == outcome, (role, who, body)


async def test_editing_a_group(api: Api) -> None:
    reply = await api.call("PATCH", "/api/groups/clinicians", role="host",
                           json={"name": "Doctors", "members": [ADA, ZED]})  # fmt: skip
    assert reply.body["group"] == {"id": "clinicians", "name": "Doctors", "members": [ADA, ZED]}
    bad = await api.call("PATCH", "/api/groups/clinicians", role="host", json={"members": [BOB]})
    assert (bad.status, bad.code) == (422, "invalid")
    hidden = await api.call("PATCH", "/api/groups/clinicians", role="other_member", json={})
    assert (hidden.status, hidden.code) == (404, "not_found")
    (group,) = await api.store.list_groups(TEAM_A)
    assert (group.name, group.member_ids) == ("Doctors", frozenset({ADA, ZED}))


async def test_a_new_invitation_and_the_first_link_accepted_wins(
    aiohttp_client: Any, tmp_path: Path, inbox: Inbox
) -> None:
    api = await mail_api(aiohttp_client, mail_settings(tmp_path, inbox))
    member = (await api.call("POST", "/api/members", role="host", json=NEW)).body["member"]
    await inbox.until(received=1)
    again = await api.call("POST", f"/api/members/{member['id']}/invitation", role="host")
    assert again.status == 201
    await inbox.until(received=2)
    first, second = (WELCOME.findall(m.text)[0] for m in inbox.received[:2])
    assert first != second
    accepted = await api.call("POST", f"/api/invitations/{second}", json={"password": "secret two"})
    assert accepted.status == 200
    # the earlier link is unused and unexpired, yet it can no longer set a password
    late = await api.call("POST", f"/api/invitations/{first}", json={"password": "secret one"})
    assert (late.status, late.code) == (401, "token_invalid")
    login = await api.call(
        "POST", "/api/login", json={"email": NEW["email"], "password": "secret two"}
    )
    assert login.status == 200
    api.client.session.cookie_jar.clear()  # Lin's session: the calls below are Ada's and Sam's
    done = await api.call("POST", f"/api/members/{member['id']}/invitation", role="host")
    assert (done.status, done.code) == (409, "conflict")
    not_admin = await api.call("POST", f"/api/members/{member['id']}/invitation", role="member")
    assert (not_admin.status, not_admin.code) == (403, "forbidden")
