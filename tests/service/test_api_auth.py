"""REST sessions: login, logout, /api/me, view-as, staff JWTs, and their audit."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from signalling.bootstrap import create_app
from signalling.staff_auth import COOKIE
from tests.service.api_support import (
    ADA,
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


def _session_cookie(reply_headers: Any) -> str:
    return str(reply_headers.get("Set-Cookie", ""))


async def test_login_sets_an_httponly_session_cookie_that_authenticates(api: Api) -> None:
    reply = await api.call("POST", "/api/login", json={"email": EMAILS[ADA], "password": PASSWORD})
    assert reply.status == 200
    assert reply.body["staff"]["id"] == ADA
    assert "password_hash" not in reply.body["staff"]
    cookie = _session_cookie(reply.headers)
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # the test client's jar now holds the cookie: /api/me works with no header
    me = await api.call("GET", "/api/me")
    assert me.status == 200
    assert me.body["staff"]["id"] == ADA
    assert me.body["team"]["id"] == TEAM_A
    assert me.body["acting_as"] is None
    # her own room and the shared ones, not a colleague's own room
    kinds = sorted(room["kind"] for room in me.body["rooms"])
    assert kinds == ["reception", "team_meeting", "user", "waiting_area"]
    assert api.own_room(ADA).slug in {room["slug"] for room in me.body["rooms"]}


async def test_login_email_is_case_insensitive(api: Api) -> None:
    reply = await api.call(
        "POST", "/api/login", json={"email": EMAILS[ADA].upper(), "password": PASSWORD}
    )
    assert reply.status == 200


@pytest.mark.parametrize(
    "body",
    [
        {"email": EMAILS[ADA], "password": "wrong password"},
        {"email": "nobody@nowhere.example.org", "password": PASSWORD},
        {"email": EMAILS[ADA]},
        {"password": PASSWORD},
        {"email": 5, "password": PASSWORD},
        {"email": "", "password": ""},
    ],
    ids=["wrong-password", "unknown-email", "no-password", "no-email", "wrong-type", "empty"],
)
async def test_every_login_failure_is_the_same_401(api: Api, body: dict[str, Any]) -> None:
    reply = await api.call("POST", "/api/login", json=body)
    assert reply.status == 401
    assert reply.body == {"error": {"code": "unauthorized", "message": "wrong email or password"}}
    assert "Set-Cookie" not in reply.headers


async def test_login_with_a_malformed_body_is_bad_message(api: Api) -> None:
    reply = await api.call(
        "POST", "/api/login", data="not json", headers={"Content-Type": "application/json"}
    )
    assert (reply.status, reply.code) == (400, "bad_message")


async def test_login_is_throttled_per_address(api: Api) -> None:
    # every attempt counts, whatever its outcome (these fail before any hashing)
    wrong = {"email": EMAILS[ADA], "password": 12345678}
    for _ in range(10):
        assert (await api.call("POST", "/api/login", json=wrong)).status == 401
    reply = await api.call("POST", "/api/login", json=wrong)
    assert (reply.status, reply.code) == (429, "rate_limited")
    assert int(reply.headers["Retry-After"]) >= 1
    # even the right password is refused until the window passes
    right = {"email": EMAILS[ADA], "password": PASSWORD}
    assert (await api.call("POST", "/api/login", json=right)).status == 429


async def test_logout_clears_the_cookie_even_without_a_session(api: Api) -> None:
    await api.call("POST", "/api/login", json={"email": EMAILS[ADA], "password": PASSWORD})
    reply = await api.call("POST", "/api/logout")
    assert reply.status == 204
    cookie = _session_cookie(reply.headers)
    assert cookie.startswith(f'{COOKIE}=""') or cookie.startswith(f"{COOKIE}=;")
    assert "Max-Age=0" in cookie or "expires=Thu, 01 Jan 1970" in cookie
    assert (await api.call("GET", "/api/me")).status == 401
    assert (await api.call("POST", "/api/logout", role="anonymous")).status == 204


async def test_me_without_credentials_or_with_a_forged_cookie(api: Api) -> None:
    assert (await api.call("GET", "/api/me")).code == "unauthorized"
    forged = {"Cookie": f"{COOKIE}=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEifQ.AAAA"}
    assert (await api.call("GET", "/api/me", headers=forged)).code == "token_invalid"


async def test_me_for_an_api_key_and_a_manager(api: Api) -> None:
    keyed = await api.call("GET", "/api/me", role="api_key")
    assert keyed.status == 200
    assert keyed.body["staff"]["id"].startswith("key:")
    assert keyed.body["team"]["id"] == TEAM_A
    assert len(keyed.body["rooms"]) == 6  # every room of the team
    manager = await api.call("GET", "/api/me", role="manager")
    assert manager.body["staff"]["role"] == "manager"
    assert (manager.body["team"], manager.body["acting_as"], manager.body["rooms"]) == (
        None,
        None,
        [],
    )


async def test_staff_jwt_from_an_integrating_system(api: Api) -> None:
    reply = await api.call("GET", "/api/me", headers=api.jwt(ADA))
    assert (reply.status, reply.body["staff"]["id"]) == (200, ADA)
    bad = {"Authorization": "Bearer not-a-jwt"}
    assert (await api.call("GET", "/api/me", headers=bad)).code == "token_invalid"


async def test_view_as_round_trip_is_audited_and_scopes_the_manager(api: Api) -> None:
    before = await api.call("GET", "/api/members", role="manager")
    assert (before.status, before.code) == (403, "forbidden")
    # log in as the manager so the cookie jar follows view-as
    login = {"email": EMAILS[MANAGER], "password": PASSWORD}
    assert (await api.call("POST", "/api/login", json=login)).status == 200
    start = await api.call("POST", "/api/view-as", json={"team": TEAM_A})
    assert start.status == 200
    assert start.body["acting_as"] == TEAM_A
    assert start.body["team"]["id"] == TEAM_A
    me = await api.call("GET", "/api/me")
    assert (me.body["acting_as"], me.body["team"]["id"]) == (TEAM_A, TEAM_A)
    members = await api.call("GET", "/api/members")
    assert {m["id"] for m in members.body["members"]} == {"ada", "sam", "zed"}
    end = await api.call("DELETE", "/api/view-as")
    assert end.body == {"acting_as": None, "team": None}
    assert (await api.call("GET", "/api/members")).code == "forbidden"
    audit = await api.store.list_audit("org-a")
    actions = sorted((e.action, e.actor_id, e.team_id) for e in audit)
    assert actions == [
        ("view_as.end", MANAGER, TEAM_A),
        ("view_as.start", MANAGER, TEAM_A),
    ]
    assert all(entry.at == NOW for entry in audit)


async def test_actions_while_viewing_as_are_audited_as_the_manager(api: Api) -> None:
    reply = await api.call(
        "POST", "/api/groups", role="manager_as_team", json={"name": "Front desk"}
    )
    assert reply.status == 201
    entries = await api.store.list_audit("org-a", team_id=TEAM_A)
    assert [(e.action, e.actor_id) for e in entries] == [("group.create", MANAGER)]


async def test_view_as_refuses_teams_outside_the_organisation(api: Api) -> None:
    for team in (TEAM_C, "no-such-team"):
        reply = await api.call("POST", "/api/view-as", role="manager", json={"team": team})
        assert (reply.status, reply.code) == (404, "not_found")
    missing = await api.call("POST", "/api/view-as", role="manager", json={})
    assert (missing.status, missing.code) == (422, "invalid")


@pytest.mark.parametrize("role", ["member", "api_key", "other_member"])
async def test_view_as_is_for_managers_only(api: Api, role: str) -> None:
    reply = await api.call("POST", "/api/view-as", role=role, json={"team": TEAM_B})
    assert (reply.status, reply.code) == (403, "forbidden")
    ended = await api.call("DELETE", "/api/view-as", role=role)
    assert (ended.status, ended.code) == (403, "forbidden")


async def test_ending_view_as_when_not_viewing_is_harmless_and_unaudited(api: Api) -> None:
    reply = await api.call("DELETE", "/api/view-as", role="manager")
    assert reply.status == 200
    assert await api.store.list_audit("org-a") == []


async def test_no_email_or_password_reaches_the_logs(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    await api.call("POST", "/api/login", json={"email": EMAILS[ADA], "password": PASSWORD})
    await api.call("POST", "/api/login", json={"email": EMAILS[ADA], "password": "nope-nope"})
    await api.call("POST", "/api/view-as", role="manager", json={"team": TEAM_B})
    out = capsys.readouterr()
    logged = out.out + out.err
    assert "login" in logged  # the log lines were captured at all
    for secret in (EMAILS[ADA], PASSWORD, "nope-nope"):
        assert secret not in logged


async def test_cookie_is_not_secure_over_http_but_is_over_https(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    api = await make_api(aiohttp_client, tmp_path)
    reply = await api.call("POST", "/api/login", json={"email": EMAILS[ADA], "password": PASSWORD})
    assert "Secure" not in _session_cookie(reply.headers)
    https = replace(api.settings, public_url="https://vestibule.example.org")
    other = await aiohttp_client(create_app(https))
    raw = await other.post("/api/login", json={"email": EMAILS[ADA], "password": PASSWORD})
    assert raw.status == 200
    assert "Secure" in raw.headers["Set-Cookie"]
