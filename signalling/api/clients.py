"""A managing organisation's client accounts: list them, create one."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

from aiohttp import web

from rooms.accounts import Plan, Team
from rooms.errors import Conflict, Invalid
from rooms.passwords import hash_password
from rooms.plans import ClientAccountRequest, NewClient, new_client_team
from signalling.api.body import read_json, text
from signalling.api.render import client_json
from signalling.api.scope import audit, manager, new_id, now_of
from signalling.keys import STORE
from signalling.store.base import Store

#: Room slugs are global; a new client's default slugs rarely collide, and each
#: retry adds the colliding slugs to the taken set, so a few rounds always do.
_SLUG_ROUNDS = 5


def setup(app: web.Application) -> None:
    app.router.add_get("/api/clients", list_clients)
    app.router.add_post("/api/clients", create_client)


def _month(now: datetime) -> tuple[datetime, datetime]:
    """[first instant of this UTC month, first instant of the next)."""
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if start.month == 12:
        return start, start.replace(year=start.year + 1, month=1)
    return start, start.replace(month=start.month + 1)


async def _appointments_this_month(store: Store, team: Team, now: datetime) -> int:
    start, end = _month(now)
    meetings = await store.list_meetings(team.id, start_from=start, start_to=end)
    return sum(not meeting.cancelled for meeting in meetings)


async def list_clients(request: web.Request) -> web.Response:
    """GET /api/clients: the organisation's client teams, with this month's appointments."""
    principal = await manager(request)
    store = request.app[STORE]
    now = now_of(request)
    clients = [
        client_json(team, await _appointments_this_month(store, team, now))
        for team in await store.list_teams(principal.account.org_id)
    ]
    return web.json_response({"clients": clients})


async def create_client(request: web.Request) -> web.Response:
    """POST /api/clients: a new client team with its first member and rooms."""
    principal = await manager(request)
    body = await read_json(request)
    plan_name = text(body, "plan", default=str(Plan.STARTER))
    try:
        plan = Plan(plan_name)
    except ValueError:
        raise Invalid("plan must be starter, professional or clinic") from None
    password = text(body, "password", required=True)
    client = ClientAccountRequest(
        name=text(body, "name", required=True),
        email=text(body, "email", required=True),
        password=password,
        plan=plan,
        title=text(body, "title"),
        speciality=text(body, "speciality"),
        contact=text(body, "contact"),
        phone=text(body, "phone"),
        reference=text(body, "reference"),
        team_name=text(body, "team_name"),
    )
    store = request.app[STORE]
    existing = await store.find_staff_by_email(client.email) if client.email.strip() else None
    taken_emails = [existing.email] if existing is not None else []
    now = now_of(request)
    org_id = principal.account.org_id
    taken_slugs: set[str] = set()
    built: NewClient | None = None
    for _ in range(_SLUG_ROUNDS):
        candidate = new_client_team(
            client,
            org_id=org_id,
            existing_emails=taken_emails,
            now=now,
            new_id=new_id,
            taken_slugs=taken_slugs,
            # validate everything first; the costly hash is made once, below
            password_hasher=lambda _clear: "",
        )
        clashes = {r.slug for r in candidate.rooms if await store.find_room_by_slug(r.slug)}
        if not clashes:
            built = candidate
            break
        taken_slugs |= clashes
    if built is None:
        raise Conflict("could not find free room addresses; try another name")
    hashed = await asyncio.get_running_loop().run_in_executor(None, hash_password, password)
    await store.add_team(built.team)
    await store.add_staff(replace(built.account, password_hash=hashed))
    for room in built.rooms:
        await store.add_room(room)
    await audit(request, principal.account, org_id, built.team.id, "client.create", built.team.id)
    return web.json_response({"client": client_json(built.team, 0)}, status=201)
