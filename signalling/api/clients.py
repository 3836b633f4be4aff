"""A managing organisation's client accounts: list, create, edit and disable
them, change their plan, and read what its managers did while viewing as one.

Disabling a client account ends its members' sessions: every credential of a
member of a disabled team is refused on every node (signalling.staff_auth),
and their open websockets are closed (signalling.staff_sockets). A plan change
that would leave shared rooms beyond the new plan is refused, naming the rooms
to archive first (rooms.plans.check_plan_change); an upgrade adds the shared
rooms the new plan starts with."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

from aiohttp import web

from rooms.accounts import Plan, StaffAccount, StaffRole, Team
from rooms.clients import ClientChanges, edit_client
from rooms.errors import BadMessage, Conflict, Invalid, NotFound
from rooms.passwords import hash_password
from rooms.plans import ClientAccountRequest, NewClient, change_plan, new_client_team
from signalling.api.body import optional_text, read_json, text
from signalling.api.render import client_json, room_json
from signalling.api.scope import audit, manager, new_id, now_of
from signalling.keys import STAFF_SOCKETS, STORE
from signalling.staff_auth import StaffPrincipal
from signalling.store.base import Store
from signalling.views import iso

#: Room slugs are global; a new client's default slugs rarely collide, and each
#: retry adds the colliding slugs to the taken set, so a few rounds always do.
_SLUG_ROUNDS = 5
#: the audit page shows this many entries, the newest
AUDIT_LIMIT = 500


def setup(app: web.Application) -> None:
    app.router.add_get("/api/clients", list_clients)
    app.router.add_post("/api/clients", create_client)
    app.router.add_patch("/api/clients/{id}", edit)
    app.router.add_put("/api/clients/{id}/plan", change)
    app.router.add_get("/api/audit", list_audit)


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
    first, last = text(body, "first_name"), text(body, "last_name")
    name = " ".join(part for part in (first.strip(), last.strip()) if part)
    client = ClientAccountRequest(
        name=name or text(body, "name", required=True),
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


async def _client(request: web.Request, principal: StaffPrincipal) -> Team:
    """A client team of the manager's organisation; another's is 404 like an unknown id."""
    try:
        team = await request.app[STORE].get_team(request.match_info["id"])
    except NotFound:
        team = None
    if team is None or team.org_id != principal.account.org_id:
        raise NotFound("no such client account")
    return team


async def edit(request: web.Request) -> web.Response:
    """PATCH /api/clients/{id} {name?, reference?, email?, phone?, disabled?}"""
    principal = await manager(request)
    team = await _client(request, principal)
    body = await read_json(request)
    disabled = body.get("disabled")
    if disabled is not None and not isinstance(disabled, bool):
        raise BadMessage("disabled must be true or false")
    changed = edit_client(
        team,
        ClientChanges(
            name=optional_text(body, "name"),
            reference=optional_text(body, "reference"),
            email=optional_text(body, "email"),
            phone=optional_text(body, "phone"),
            disabled=disabled,
        ),
    )
    store = request.app[STORE]
    if changed != team:
        await store.update_team(changed)
        action = "client.edit"
        if changed.disabled != team.disabled:
            action = "client.disable" if changed.disabled else "client.enable"
        await audit(request, principal.account, team.org_id, team.id, action, team.id)
    if changed.disabled and not team.disabled:
        sockets = request.app[STAFF_SOCKETS]
        for account in await store.list_staff(team.id):
            await sockets.end_staff(account.id)
    now = now_of(request)
    return web.json_response(
        {"client": client_json(changed, await _appointments_this_month(store, changed, now))}
    )


async def change(request: web.Request) -> web.Response:
    """PUT /api/clients/{id}/plan {plan}: refused (plan_limit, naming the rooms)
    while shared rooms exceed the new plan; an upgrade adds its default rooms."""
    principal = await manager(request)
    team = await _client(request, principal)
    body = await read_json(request)
    try:
        plan = Plan(text(body, "plan", required=True))
    except ValueError:
        raise Invalid("plan must be starter, professional or clinic") from None
    store = request.app[STORE]
    existing = await store.list_rooms(team.id)
    taken: set[str] = set()
    for _ in range(_SLUG_ROUNDS):
        changed, gained = change_plan(team, plan, existing, new_id, taken_slugs=taken)
        clashes = {r.slug for r in gained if await store.find_room_by_slug(r.slug)}
        if not clashes:
            break
        taken |= clashes
    else:
        raise Conflict("could not find free room addresses; try again")
    if changed != team:
        for room in gained:
            await store.add_room(room)
        await store.update_team(changed)
        await audit(request, principal.account, team.org_id, team.id, "client.plan", str(plan))
    now = now_of(request)
    return web.json_response(
        {
            "client": client_json(changed, await _appointments_this_month(store, changed, now)),
            "added_rooms": [room_json(room) for room in gained if changed != team],
        }
    )


async def list_audit(request: web.Request) -> web.Response:
    """GET /api/audit?team=: what the organisation's managing accounts did,
    newest first: their client administration and everything done while
    viewing as a client (recorded as the manager, with that client's team)."""
    principal = await manager(request)
    org_id = principal.account.org_id
    team_id = request.query.get("team") or None
    store = request.app[STORE]
    entries = await store.list_audit(org_id, team_id=team_id)
    teams = {t.id: t for t in await store.list_teams(org_id)}
    actors: dict[str, StaffAccount | None] = {}
    out = []
    for entry in reversed(entries):
        if entry.actor_id not in actors:
            try:
                actors[entry.actor_id] = await store.get_staff(entry.actor_id)
            except NotFound:
                actors[entry.actor_id] = None
        actor = actors[entry.actor_id]
        if actor is None or actor.role is not StaffRole.MANAGER:
            continue
        team = teams.get(entry.team_id or "")
        out.append(
            {
                "id": entry.id,
                "at": iso(entry.at),
                "actor": entry.actor_id,
                "actor_name": actor.name,
                "team": entry.team_id,
                "team_name": None if team is None else team.name,
                "action": entry.action,
                "target": entry.target,
            }
        )
        if len(out) == AUDIT_LIMIT:
            break
    return web.json_response({"entries": out})
