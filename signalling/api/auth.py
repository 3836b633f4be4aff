"""Staff sessions: login, logout, who am I, and a manager's "view as".

Login answers every failure (unknown email, wrong password, malformed
credentials) with the same 401 ``unauthorized`` after the same work: an
unknown email is verified against a dummy hash (rooms.passwords), so timing
does not tell which emails have accounts. Attempts are throttled per client
address. scrypt runs in a worker thread: it costs tens of milliseconds of CPU
that must not stall every websocket on this node.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import structlog
from aiohttp import web

from rooms.accounts import StaffAccount, StaffRole
from rooms.errors import Forbidden, NotFound, TokenInvalid, Unauthorized
from rooms.passwords import hash_password, needs_rehash, verify_password
from rooms.room import Room
from signalling.api.body import read_json, text
from signalling.api.render import room_json, staff_json, team_json
from signalling.api.scope import audit, manager, now_of, staff
from signalling.keys import LOGIN_LIMITER, SETTINGS, STORE
from signalling.staff_auth import (
    COOKIE,
    check_may_act,
    end_session,
    issue_session,
    set_session_cookie,
)

log = structlog.get_logger("vestibule.api.auth")

#: Login attempts per client address per minute: a person mistyping a password
#: needs a handful; 10 stops online guessing at 14,400/day.
LOGIN_ATTEMPTS_PER_MINUTE = 10


def setup(app: web.Application) -> None:
    app.router.add_post("/api/login", login)
    app.router.add_post("/api/logout", logout)
    app.router.add_get("/api/me", me)
    app.router.add_post("/api/view-as", view_as_start)
    app.router.add_delete("/api/view-as", view_as_end)


def _secure(app: web.Application) -> bool:
    return app[SETTINGS].base_url.startswith("https://")


async def login(request: web.Request) -> web.Response:
    """POST /api/login {email, password} -> {"staff": Staff} and the session cookie."""
    app = request.app
    app[LOGIN_LIMITER].hit(request.remote or "unknown")
    body = await read_json(request)
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not isinstance(password, str):
        raise Unauthorized("wrong email or password")
    account = await app[STORE].find_staff_by_email(email) if email.strip() else None
    encoded = account.password_hash if account is not None else None
    loop = asyncio.get_running_loop()
    ok = await loop.run_in_executor(None, verify_password, password, encoded)
    if account is None or not ok:
        log.info("login refused")
        raise Unauthorized("wrong email or password")
    try:
        await check_may_act(app[STORE], account)
    except TokenInvalid:
        # told only to whoever knows the password
        log.info("login refused", staff=account.id, reason="disabled")
        raise Forbidden("this account is disabled") from None
    if needs_rehash(account.password_hash):
        # The clear password is in hand only now: store it under today's parameters.
        fresh = await loop.run_in_executor(None, hash_password, password)
        account = replace(account, password_hash=fresh)
        await app[STORE].update_staff(account)
    now = now_of(request)
    response = web.json_response({"staff": staff_json(account)})
    set_session_cookie(response, issue_session(app[SETTINGS], account, now), secure=_secure(app))
    log.info("login", staff=account.id, team=account.team_id)
    return response


async def logout(request: web.Request) -> web.Response:
    """POST /api/logout: 204 and the cookie cleared, whether or not it was valid
    (a stale cookie must be clearable too). A valid session is recorded as ended
    in the store, so its cookie is refused on every node from now on."""
    cookie = request.cookies.get(COOKIE)
    if cookie:
        app = request.app
        if await end_session(app[STORE], app[SETTINGS], cookie, now_of(request)):
            log.info("logout")
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path="/")
    return response


async def _replace_session(request: web.Request, response: web.StreamResponse, token: str) -> None:
    """Give the caller a new session cookie, ending the one it came with (so the
    old cookie, copied elsewhere, does not outlive the switch)."""
    app = request.app
    old = request.cookies.get(COOKIE)
    if old:
        await end_session(app[STORE], app[SETTINGS], old, now_of(request))
    set_session_cookie(response, token, secure=_secure(app))


async def me(request: web.Request) -> web.Response:
    """GET /api/me: the principal, its team (if any), view-as state, and the rooms
    it works in (a member: their own room and the shared rooms)."""
    principal = await staff(request)
    store = request.app[STORE]
    team = None
    rooms: list[dict[str, object]] = []
    if principal.team_id is not None:
        try:
            found = await store.get_team(principal.team_id)
        except NotFound:
            found = None
        if found is not None and (
            principal.account.role is StaffRole.MEMBER or found.org_id == principal.account.org_id
        ):
            team = team_json(found)
            rooms = [
                room_json(room)
                for room in await store.list_rooms(found.id)
                if _hosts(principal.account, principal.via, room) and not room.archived
            ]
    return web.json_response(
        {
            "staff": staff_json(principal.account),
            "team": team,
            "acting_as": principal.acting_as,
            "rooms": rooms,
        }
    )


def _hosts(account: StaffAccount, via: str, room: Room) -> bool:
    """Whether ``room`` belongs in the caller's own list: a member's own room and
    the shared rooms; everything for a key or a manager (who book for anyone)."""
    if via == "api_key" or account.role is not StaffRole.MEMBER:
        return True
    return room.shared or room.owner_id == account.id


async def view_as_start(request: web.Request) -> web.Response:
    """POST /api/view-as {team}: a manager starts acting inside one of the
    organisation's client teams (a new session cookie carries the claim)."""
    principal = await manager(request)
    body = await read_json(request)
    team_id = text(body, "team", required=True)
    account = principal.account
    try:
        team = await request.app[STORE].get_team(team_id)
    except NotFound:
        team = None
    if team is None or team.org_id != account.org_id:
        raise NotFound("no such client team")
    now = now_of(request)
    response = web.json_response({"acting_as": team.id, "team": team_json(team)})
    token = issue_session(request.app[SETTINGS], account, now, acting_as=team.id)
    await _replace_session(request, response, token)
    await audit(request, account, account.org_id, team.id, "view_as.start", team.id)
    return response


async def view_as_end(request: web.Request) -> web.Response:
    """DELETE /api/view-as: back to the organisation's own view (audited when
    a view-as was in progress; ending none is harmless)."""
    principal = await manager(request)
    account = principal.account
    now = now_of(request)
    response = web.json_response({"acting_as": None, "team": None})
    token = issue_session(request.app[SETTINGS], account, now)
    await _replace_session(request, response, token)
    if principal.acting_as is not None:
        team_id = principal.acting_as
        await audit(request, account, account.org_id, team_id, "view_as.end", team_id)
    return response
