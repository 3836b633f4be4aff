"""The REST API's edges as a stranger finds them: another site's pages acting
with a clinician's cookie, bodies that are not JSON, dates past any horizon,
logged-out cookies and JWTs that never expire."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from signalling.bootstrap import create_app
from signalling.clock import FixedClock
from signalling.staff_auth import COOKIE
from tests.service.api_support import (
    ADA,
    BASE_URL,
    EMAILS,
    JWT_SECRET,
    NOW,
    PASSWORD,
    TEAM_A,
    Api,
    make_api,
)

EVIL = "https://evil.example"
START = NOW + timedelta(hours=3)


@pytest.fixture
async def api(aiohttp_client: Any, tmp_path: Path) -> Api:
    return await make_api(aiohttp_client, tmp_path)


def iso(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


def booking(start: str = iso(START), **extra: Any) -> dict[str, Any]:
    guest = {"name": "Alex Morgan", "email": "alex@example.org"}
    return {"guest": guest, "start": start, "duration": 1800, **extra}


async def _meetings(api: Api) -> int:
    listed = await api.call("GET", "/api/meetings?from=2000-01-01", role="host")
    assert listed.status == 200
    return len(listed.body["meetings"])


# -- cross-site requests -------------------------------------------------------------


async def test_a_plain_form_on_another_site_cannot_book(api: Api) -> None:
    before = await _meetings(api)
    # what an HTML form with enctype=text/plain sends: JSON-looking text, the cookie
    form = '{"guest": {"name": "Alex Morgan"}, "start": "2025-01-14T12:00:00Z", "x": "="}'
    for origin in (EVIL, None, BASE_URL):
        headers = {"Content-Type": "text/plain"} | ({"Origin": origin} if origin else {})
        reply = await api.client.post("/api/meetings", data=form, headers=api.cookie(ADA) | headers)
        assert reply.status in (403, 415)
        assert (await reply.json())["error"]["code"] in ("foreign_origin", "unsupported_media_type")
    # form-encoded, from the server's own origin: still not JSON
    reply = await api.client.post(
        "/api/meetings",
        data={"guest": "x"},
        headers=api.cookie(ADA) | {"Origin": BASE_URL},
    )
    assert reply.status == 415
    assert (await reply.json())["error"]["code"] == "unsupported_media_type"
    assert await _meetings(api) == before


async def test_a_cancel_from_another_site_is_refused_and_cancels_nothing(api: Api) -> None:
    meeting, _ = await api.add_meeting()
    for origin in (EVIL, "null", "http://vestibule.test.evil.example", "http://vestibule.test:81"):
        reply = await api.call(
            "POST", f"/api/meetings/{meeting.id}/cancel", role="host", headers={"Origin": origin}
        )
        assert (reply.status, reply.code) == (403, "foreign_origin"), origin
    assert (await api.store.get_meeting(meeting.id)).cancelled_at is None
    # the server's own page may
    reply = await api.call(
        "POST", f"/api/meetings/{meeting.id}/cancel", role="host", headers={"Origin": BASE_URL}
    )
    assert reply.status == 200
    assert reply.body["meeting"]["status"] == "cancelled"


async def test_requests_without_origin_or_with_a_bearer_credential_are_not_browser_pages(
    api: Api,
) -> None:
    # no Origin header: a script holding the cookie itself, not another site's page
    first, _ = await api.add_meeting()
    reply = await api.call("POST", f"/api/meetings/{first.id}/cancel", role="host")
    assert reply.status == 200
    # a Bearer credential cannot be attached by another site: Origin is not checked
    second, _ = await api.add_meeting()
    reply = await api.call(
        "POST", f"/api/meetings/{second.id}/cancel", role="api_key", headers={"Origin": EVIL}
    )
    assert reply.status == 200
    # safe methods are never refused for their Origin
    reply = await api.call("GET", "/api/me", role="host", headers={"Origin": EVIL})
    assert reply.status == 200


async def test_login_from_another_site_is_refused(api: Api) -> None:
    body = {"email": EMAILS[ADA], "password": PASSWORD}
    reply = await api.call("POST", "/api/login", json=body, headers={"Origin": EVIL})
    assert (reply.status, reply.code) == (403, "foreign_origin")
    assert COOKIE not in reply.headers.get("Set-Cookie", "")
    reply = await api.call("POST", "/api/login", json=body, headers={"Origin": BASE_URL})
    assert reply.status == 200


async def test_allowed_origins_extend_the_servers_own(aiohttp_client: Any, tmp_path: Path) -> None:
    api = await make_api(aiohttp_client, tmp_path)
    portal = "https://portal.clinic.example"
    settings = replace(api.settings, allowed_origins=(portal + "/",))
    app = create_app(settings, clock=FixedClock(NOW))
    client = await aiohttp_client(app)
    meeting, _ = await api.add_meeting()
    headers = api.cookie(ADA)
    refused = await client.post(
        f"/api/meetings/{meeting.id}/cancel", headers=headers | {"Origin": EVIL}
    )
    assert refused.status == 403
    allowed = await client.post(
        f"/api/meetings/{meeting.id}/cancel", headers=headers | {"Origin": portal}
    )
    assert allowed.status == 200


# -- dates ---------------------------------------------------------------------------


async def test_dates_beyond_the_horizon_are_invalid_never_a_server_error(api: Api) -> None:
    before = await _meetings(api)
    far = ("9999-12-31T23:59:59Z", "9999-12-31T23:00:00-05:00", "2200-01-01T09:00:00Z")
    assert (await api.call("POST", "/api/meetings", role="host", json=booking())).status == 201
    before += 1
    for start in far:
        reply = await api.call("POST", "/api/meetings", role="host", json=booking(start))
        assert (reply.status, reply.code) == (422, "invalid"), start
        assert "start" in reply.body["error"]["message"]
        slots = {"slots": [start, "9999-01-01T09:00:00Z"], "start": None}
        body = {k: v for k, v in booking(**slots).items() if v is not None}
        reply = await api.call("POST", "/api/meetings", role="host", json=body)
        assert (reply.status, reply.code) == (422, "invalid"), start
        assert "slot" in reply.body["error"]["message"]
        series = booking(start, repeat={"frequency": "weekly", "until": "9999-12-31T00:00:00Z"})
        reply = await api.call("POST", "/api/meetings", role="host", json=series)
        assert (reply.status, reply.code) == (422, "invalid"), start
    assert await _meetings(api) == before
    meeting, _ = await api.add_meeting()
    planning, _ = await api.add_meeting(start=None, slots=(START, START + timedelta(days=1)))
    for start in far:
        reply = await api.call(
            "POST", f"/api/meetings/{meeting.id}/reschedule", role="host", json={"start": start}
        )
        assert (reply.status, reply.code) == (422, "invalid"), start
        reply = await api.call(
            "POST", f"/api/meetings/{planning.id}/confirm", role="host", json={"slot": start}
        )
        assert (reply.status, reply.code) == (422, "invalid"), start
    assert (await api.store.get_meeting(meeting.id)).start == meeting.start
    # the list's bounds reach the end of the calendar without failing
    reply = await api.call("GET", "/api/meetings?from=9999-12-31&to=9999-12-31", role="host")
    assert (reply.status, reply.body["meetings"]) == (200, [])


async def test_the_horizon_is_a_setting_and_its_edge_is_bookable(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    api = await make_api(aiohttp_client, tmp_path)
    app = create_app(replace(api.settings, booking_horizon_days=30), clock=FixedClock(NOW))
    client = await aiohttp_client(app)
    headers = api.cookie(ADA)
    inside = await client.post(
        "/api/meetings", json=booking(iso(NOW + timedelta(days=30))), headers=headers
    )
    assert inside.status == 201, await inside.text()
    beyond = await client.post(
        "/api/meetings", json=booking(iso(NOW + timedelta(days=30, minutes=1))), headers=headers
    )
    assert beyond.status == 422
    assert "30 days" in (await beyond.json())["error"]["message"]


# -- sessions and JWTs ----------------------------------------------------------------


async def _login(api: Api) -> dict[str, str]:
    body = {"email": EMAILS[ADA], "password": PASSWORD}
    reply = await api.client.post("/api/login", json=body)
    assert reply.status == 200
    api.client.session.cookie_jar.clear()  # callers send exactly the cookie returned
    return {"Cookie": f"{COOKIE}={reply.cookies[COOKIE].value}"}


async def test_logout_ends_the_session_on_every_node(aiohttp_client: Any, tmp_path: Path) -> None:
    api = await make_api(aiohttp_client, tmp_path)
    # a second node on the same store (the same SQLite file) with the same secret
    other = await aiohttp_client(create_app(api.settings, clock=FixedClock(NOW)))
    cookie = await _login(api)
    assert (await other.get("/api/me", headers=cookie)).status == 200
    assert (await api.client.post("/api/logout", headers=cookie)).status == 204
    for client in (api.client, other):
        reply = await client.get("/api/me", headers=cookie)
        assert reply.status == 401
        assert (await reply.json())["error"]["code"] == "token_invalid"
    # the dashboard feed refuses it too: the cookie no longer makes a staff member
    ws = await other.ws_connect("/ws/dashboard", headers=cookie)
    message = await ws.receive_json()
    assert message["type"] == "error"
    assert message["code"] in ("unauthorized", "token_invalid")
    await ws.close()
    # another session of the same person is untouched
    fresh = await _login(api)
    assert (await other.get("/api/me", headers=fresh)).status == 200


async def test_logout_with_no_or_a_stale_cookie_still_succeeds(api: Api) -> None:
    assert (await api.client.post("/api/logout")).status == 204
    stale = {"Cookie": f"{COOKIE}=not-a-session"}
    assert (await api.client.post("/api/logout", headers=stale)).status == 204


async def test_a_view_as_switch_ends_the_cookie_it_replaces(api: Api) -> None:
    old = api.cookie("manager")
    reply = await api.client.post("/api/view-as", json={"team": TEAM_A}, headers=old)
    assert reply.status == 200
    api.client.session.cookie_jar.clear()  # send exactly the cookie named below
    assert (await api.client.get("/api/me", headers=old)).status == 401
    new = {"Cookie": f"{COOKIE}={reply.cookies[COOKIE].value}"}
    me = await api.client.get("/api/me", headers=new)
    assert (await me.json())["acting_as"] == TEAM_A


def _bearer(exp: timedelta, iat: timedelta | None = None) -> dict[str, str]:
    claims: dict[str, Any] = {"sub": ADA, "exp": int((NOW + exp).timestamp())}
    if iat is not None:
        claims["iat"] = int((NOW + iat).timestamp())
    token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


async def test_jwts_have_a_maximum_lifetime(api: Api) -> None:
    limit = timedelta(seconds=api.settings.jwt_max_lifetime)
    assert (await api.call("GET", "/api/me", headers=_bearer(limit))).status == 200
    for headers in (
        _bearer(timedelta(days=3650)),
        _bearer(limit + timedelta(seconds=1)),
        # issued long ago with a far expiry: lives longer than allowed even if it
        # has only minutes left
        _bearer(timedelta(minutes=5), iat=-limit),
    ):
        reply = await api.call("GET", "/api/me", headers=headers)
        assert (reply.status, reply.code) == (401, "token_invalid")
