"""Administering one room: PATCH /api/rooms/{room} (rename, settings, archive).

The rules are rooms.room_admin's; this module reads the request, applies the
change, refuses archiving a room that still has meetings to come, stores the
room and tells the live room on this node (signalling.room_commands)."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from rooms.errors import BadMessage, Conflict, Forbidden
from rooms.room import Room
from rooms.room_admin import RoomChange, change_room
from signalling.api.body import optional_boolean, read_json, text
from signalling.api.render import room_json
from signalling.api.scope import Actor, audit_actor, now_of, room_by_id_in_team, team_actor
from signalling.keys import ROOM_CHANGES, SETTINGS, STORE

#: the fields a PATCH may carry
_FIELDS = frozenset({"name", "show_position", "walk_ins", "archived"})
#: the longest a meeting can last (rooms.schedule bounds durations well below)
_LONGEST_MEETING = timedelta(hours=24)


def setup(app: web.Application) -> None:
    app.router.add_patch("/api/rooms/{room}", update_room)


async def update_room(request: web.Request) -> web.Response:
    """PATCH /api/rooms/{room} {name?, show_position?, walk_ins?, archived?}."""
    actor = await team_actor(request)
    body = await read_json(request)
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise BadMessage(f"unknown field {unknown[0]}")
    change = RoomChange(
        name=text(body, "name") if "name" in body else None,
        show_position=optional_boolean(body, "show_position"),
        walk_ins=optional_boolean(body, "walk_ins"),
        archived=optional_boolean(body, "archived"),
    )
    room = await room_by_id_in_team(request, actor, request.match_info["room"])
    if actor.person is None:
        raise Forbidden("rooms are administered by the members of the team")
    existing = (
        await request.app[STORE].list_rooms(actor.team.id) if change.archived is False else ()
    )
    changed = change_room(actor.person, actor.team, room, change, existing)
    if changed.archived and not room.archived:
        await _check_no_meetings_to_come(request, actor, room)
    store = request.app[STORE]
    await store.update_room(changed)
    await request.app[ROOM_CHANGES].changed(changed)
    action = "room.archive" if changed.archived and not room.archived else "room.update"
    await audit_actor(request, actor, action, room.id)
    return web.json_response({"room": room_json(changed)})


async def _check_no_meetings_to_come(request: web.Request, actor: Actor, room: Room) -> None:
    """Conflict while the room has a meeting whose guest link is still usable:
    archived, the room would refuse its guest."""
    now = now_of(request)
    grace = request.app[SETTINGS].link_grace
    meetings = await request.app[STORE].list_meetings(
        actor.team.id, start_from=now - grace - _LONGEST_MEETING
    )
    for meeting in meetings:
        if meeting.room_id != room.id or meeting.cancelled:
            continue
        if meeting.start is None or meeting.start + meeting.duration + grace > now:
            raise Conflict(
                "this room has meetings still to come; move or cancel them before archiving it"
            )
