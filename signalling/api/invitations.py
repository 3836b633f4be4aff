"""Accepting an invitation: the invited clinician opens the link from the mail
(/welcome/<token>), sees whose account it is, chooses a password and is
logged in.

The token is looked up by its digest and consumed in one atomic store step
(rooms.invitations): of two tabs or nodes accepting the same link, one wins and
the other gets ``token_invalid``, like a used, expired or unknown link. The
password is checked and hashed before the token is spent, so a refused
password does not use the link up. Only an account still waiting for its
password accepts one: once a member has chosen it, any other invitation link
of theirs (one sent again) opens nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import structlog
from aiohttp import web

from rooms.errors import NotFound, TokenInvalid
from rooms.invitations import check_usable
from rooms.passwords import check_password_rules, hash_password
from rooms.room import RoomKind
from rooms.team_admin import MemberState, state_of
from rooms.tokens import digest_link
from signalling.api.body import read_json, text
from signalling.api.render import room_json, staff_json
from signalling.api.scope import now_of
from signalling.keys import SETTINGS, STORE
from signalling.staff_auth import check_may_act, issue_session, set_session_cookie

log = structlog.get_logger("vestibule.api.invitations")


def setup(app: web.Application) -> None:
    app.router.add_get("/api/invitations/{token}", show)
    app.router.add_post("/api/invitations/{token}", accept)


async def show(request: web.Request) -> web.Response:
    """GET /api/invitations/{token}: whose invitation it is, while it is usable."""
    store = request.app[STORE]
    invitation = check_usable(
        await store.find_invitation(digest_link(request.match_info["token"])), now_of(request)
    )
    try:
        account = await store.get_staff(invitation.staff_id)
        team = await store.get_team(invitation.team_id)
    except NotFound:
        raise TokenInvalid() from None
    return web.json_response({"name": account.name, "email": account.email, "team": team.name})


async def accept(request: web.Request) -> web.Response:
    """POST /api/invitations/{token} {password}: the password set, the link
    spent, and a session cookie; the answer names the member's own room."""
    app = request.app
    body = await read_json(request)
    password = text(body, "password", required=True)
    check_password_rules(password)
    hashed = await asyncio.get_running_loop().run_in_executor(None, hash_password, password)
    store = app[STORE]
    now = now_of(request)
    invitation = await store.consume_invitation(digest_link(request.match_info["token"]), now)
    if invitation is None:
        raise TokenInvalid("this invitation link is not valid; ask for a new one")
    account = await store.get_staff(invitation.staff_id)
    await check_may_act(store, account)  # disabled meanwhile: the link opens nothing
    if state_of(account) is not MemberState.INVITED:
        # another invitation of theirs was accepted first: this one sets nothing
        raise TokenInvalid("this invitation link is not valid; ask for a new one")
    account = replace(account, password_hash=hashed)
    await store.update_staff(account)
    rooms = await store.list_rooms(invitation.team_id)
    own = next((r for r in rooms if r.kind is RoomKind.USER and r.owner_id == account.id), None)
    response = web.json_response(
        {"staff": staff_json(account), "room": None if own is None else room_json(own)}
    )
    settings = app[SETTINGS]
    token = issue_session(settings, account, now)
    set_session_cookie(response, token, secure=settings.base_url.startswith("https://"))
    log.info("invitation accepted", staff=account.id, team=account.team_id)
    return response
