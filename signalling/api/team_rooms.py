"""A team's rooms and meeting types: list them, create one (plan-checked)."""

from __future__ import annotations

from aiohttp import web

from rooms.errors import Conflict, Invalid
from rooms.meeting import MeetingKind
from rooms.plans import check_can_create_room
from rooms.room import WALK_IN_KINDS, Room, RoomKind
from rooms.schedule import make_meeting_type
from rooms.validate import check_name, slugify, unique_slug
from signalling.api.body import boolean, read_json, seconds, string_list, text
from signalling.api.render import meeting_type_json, room_json
from signalling.api.scope import audit_actor, new_id, team_actor
from signalling.keys import STORE

#: Attempts at a free slug when another request takes ours between the check
#: and the insert (slugs are unique server-wide; the store has the last word).
_SLUG_ATTEMPTS = 5


def setup(app: web.Application) -> None:
    app.router.add_get("/api/rooms", list_rooms)
    app.router.add_post("/api/rooms", create_room)
    app.router.add_get("/api/meeting-types", list_meeting_types)
    app.router.add_post("/api/meeting-types", create_meeting_type)


async def list_rooms(request: web.Request) -> web.Response:
    actor = await team_actor(request)
    rooms = await request.app[STORE].list_rooms(actor.team.id)
    return web.json_response({"rooms": [room_json(room) for room in rooms]})


async def create_room(request: web.Request) -> web.Response:
    """POST /api/rooms {name, kind}: a shared room, if the team's plan allows it.

    ``kind`` defaults to ``custom`` ("+ Create Room"); user rooms come with a
    member and are never created here."""
    actor = await team_actor(request)
    body = await read_json(request)
    name = check_name(text(body, "name", required=True), field="room name")
    try:
        kind = RoomKind(text(body, "kind", default=str(RoomKind.CUSTOM)))
    except ValueError:
        raise Invalid("kind must be reception, team_meeting, custom or waiting_area") from None
    if kind is RoomKind.USER:
        raise Invalid("user rooms come with their member; create a shared room")
    store = request.app[STORE]
    check_can_create_room(actor.team, await store.list_rooms(actor.team.id), kind)
    base = slugify(name)
    taken: set[str] = set()
    for _ in range(_SLUG_ATTEMPTS):
        slug = unique_slug(base, taken)
        if await store.find_room_by_slug(slug) is not None:
            taken.add(slug)
            continue
        room = Room(
            id=new_id(),
            team_id=actor.team.id,
            slug=slug,
            name=name,
            kind=kind,
            walk_ins=kind in WALK_IN_KINDS,
        )
        try:
            await store.add_room(room)
        except Conflict:
            taken.add(slug)
            continue
        await audit_actor(request, actor, "room.create", room.id)
        return web.json_response({"room": room_json(room)}, status=201)
    raise Conflict("could not find a free address for this room; try another name")


async def list_meeting_types(request: web.Request) -> web.Response:
    actor = await team_actor(request)
    types = await request.app[STORE].list_meeting_types(actor.team.id)
    return web.json_response({"meeting_types": [meeting_type_json(t) for t in types]})


async def create_meeting_type(request: web.Request) -> web.Response:
    """POST /api/meeting-types: label, duration (seconds, whole minutes) and options."""
    actor = await team_actor(request)
    body = await read_json(request)
    duration = seconds(body, "duration")
    if duration is None:
        raise Invalid("duration is required")
    kind_names = string_list(body, "kinds") if "kinds" in body else [str(MeetingKind.VIDEO)]
    try:
        kinds = [MeetingKind(name) for name in kind_names]
    except ValueError:
        raise Invalid("kinds must be video, phone or in_person") from None
    mtype = make_meeting_type(
        id=new_id(),
        team_id=actor.team.id,
        label=text(body, "label", required=True),
        duration=duration,
        colour=text(body, "colour", default="#3b82f6"),
        online_bookable=boolean(body, "online_bookable"),
        known_patients_only=boolean(body, "known_patients_only"),
        kinds=kinds,
        address=text(body, "address"),
        instructions=text(body, "instructions"),
        description=text(body, "description"),
    )
    await request.app[STORE].add_meeting_type(mtype)
    await audit_actor(request, actor, "meeting_type.create", mtype.id)
    return web.json_response({"meeting_type": meeting_type_json(mtype)}, status=201)
