"""A team's people: members, groups, and the team's API keys."""

from __future__ import annotations

from dataclasses import replace

from aiohttp import web

from rooms.accounts import ApiKey, Group, StaffRole
from rooms.errors import Conflict, Forbidden, Invalid, NotFound
from rooms.room import RoomKind
from rooms.validate import check_name, check_text
from signalling.api.body import optional_text, read_json, string_list, text
from signalling.api.render import group_json, member_json
from signalling.api.scope import audit_actor, new_id, now_of, team_actor
from signalling.keys import STORE
from signalling.staff_auth import new_api_key

LABEL_MAX = 100


def setup(app: web.Application) -> None:
    app.router.add_get("/api/members", list_members)
    app.router.add_get("/api/groups", list_groups)
    app.router.add_post("/api/groups", create_group)
    app.router.add_patch("/api/groups/{id}", edit_group)
    app.router.add_post("/api/api-keys", create_api_key)


async def list_members(request: web.Request) -> web.Response:
    """GET /api/members: the team's members, each with their own room's slug."""
    actor = await team_actor(request)
    store = request.app[STORE]
    rooms = {
        room.owner_id: room
        for room in await store.list_rooms(actor.team.id)
        if room.kind is RoomKind.USER
    }
    members = [
        member_json(account, rooms.get(account.id))
        for account in await store.list_staff(actor.team.id)
        if account.role is StaffRole.MEMBER
    ]
    return web.json_response({"members": members})


async def list_groups(request: web.Request) -> web.Response:
    actor = await team_actor(request)
    groups = await request.app[STORE].list_groups(actor.team.id)
    return web.json_response({"groups": [group_json(group) for group in groups]})


async def create_group(request: web.Request) -> web.Response:
    """POST /api/groups {name, members}: members are ids of this team's members."""
    actor = await team_actor(request)
    body = await read_json(request)
    name = check_name(text(body, "name", required=True), field="group name")
    wanted = set(string_list(body, "members"))
    store = request.app[STORE]
    team_members = {
        account.id
        for account in await store.list_staff(actor.team.id)
        if account.role is StaffRole.MEMBER
    }
    if not wanted <= team_members:
        # other teams' ids and unknown ids get the same answer
        raise Invalid("members must be members of this team")
    existing = await store.list_groups(actor.team.id)
    if any(group.name.casefold() == name.casefold() for group in existing):
        raise Conflict("the team already has a group with this name")
    group = Group(id=new_id(), team_id=actor.team.id, name=name, member_ids=frozenset(wanted))
    await store.add_group(group)
    await audit_actor(request, actor, "group.create", group.id)
    return web.json_response({"group": group_json(group)}, status=201)


async def edit_group(request: web.Request) -> web.Response:
    """PATCH /api/groups/{id} {name?, members?}: rename it or replace its
    members (ids of this team's members), under the same rules as creating one."""
    actor = await team_actor(request)
    store = request.app[STORE]
    groups = await store.list_groups(actor.team.id)
    group = next((g for g in groups if g.id == request.match_info["id"]), None)
    if group is None:
        raise NotFound("no such group in this team")
    body = await read_json(request)
    changed = group
    raw_name = optional_text(body, "name")
    if raw_name is not None:
        name = check_name(raw_name, field="group name")
        if any(g.id != group.id and g.name.casefold() == name.casefold() for g in groups):
            raise Conflict("the team already has a group with this name")
        changed = replace(changed, name=name)
    if "members" in body:
        wanted = set(string_list(body, "members"))
        team_members = {
            account.id
            for account in await store.list_staff(actor.team.id)
            if account.role is StaffRole.MEMBER
        }
        if not wanted <= team_members:
            raise Invalid("members must be members of this team")
        changed = replace(changed, member_ids=frozenset(wanted))
    if changed != group:
        await store.update_group(changed)
        await audit_actor(request, actor, "group.edit", group.id)
    return web.json_response({"group": group_json(changed)})


async def create_api_key(request: web.Request) -> web.Response:
    """POST /api/api-keys {label}: a new key, shown once (only its digest is kept).

    A key cannot mint keys: a leaked key must not be able to spread itself."""
    actor = await team_actor(request)
    if actor.via_api_key:
        raise Forbidden("API keys are created by a person, not by another key")
    body = await read_json(request)
    label = check_text(text(body, "label", required=True), field="label", max_length=LABEL_MAX)
    if not label:
        raise Invalid("label is required")
    key, digest = new_api_key()
    record = ApiKey(
        id=new_id(), team_id=actor.team.id, label=label, digest=digest, created_at=now_of(request)
    )
    await request.app[STORE].add_api_key(record)
    await audit_actor(request, actor, "api_key.create", record.id)
    return web.json_response({"id": record.id, "label": label, "key": key}, status=201)
