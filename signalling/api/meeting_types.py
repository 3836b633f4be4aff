"""A team's meeting types, changed and removed (listed and created in
signalling.api.team_rooms).

``PATCH /api/meeting-types/{id}`` changes any of its fields (each checked as
on creation) and retires it (``retired: true``) or offers it again.
``DELETE /api/meeting-types/{id}`` deletes a type no meeting uses (204) and
retires one that a meeting uses (200, the retired type): the store decides
in one atomic step, so a meeting booked with the type meanwhile is never left
pointing at nothing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiohttp import web

from rooms.errors import Invalid
from rooms.meeting import MeetingKind
from rooms.schedule import edit_meeting_type
from signalling.api.body import boolean, read_json, seconds, string_list, text
from signalling.api.render import meeting_type_json
from signalling.api.scope import audit_actor, team_actor, type_in_team
from signalling.keys import STORE

_TEXT_FIELDS = ("label", "colour", "address", "instructions", "description")
_FLAGS = ("online_bookable", "known_patients_only", "retired")


def setup(app: web.Application) -> None:
    app.router.add_patch("/api/meeting-types/{id}", update_meeting_type)
    app.router.add_delete("/api/meeting-types/{id}", remove_meeting_type)


def kinds_of(names: list[str]) -> list[MeetingKind]:
    try:
        return [MeetingKind(name) for name in names]
    except ValueError:
        raise Invalid("kinds must be video, phone or in_person") from None


async def update_meeting_type(request: web.Request) -> web.Response:
    """PATCH /api/meeting-types/{id}: the fields given, changed."""
    actor = await team_actor(request)
    mtype = await type_in_team(request, actor, request.match_info["id"])
    body = await read_json(request)
    changes: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        if name in body:
            changes[name] = text(body, name)
    for name in _FLAGS:
        if name in body:
            changes[name] = boolean(body, name)
    if "duration" in body:
        changes["duration"] = seconds(body, "duration")
        if changes["duration"] is None:
            raise Invalid("duration cannot be empty")
    if "kinds" in body:
        changes["kinds"] = kinds_of(string_list(body, "kinds"))
    edited = edit_meeting_type(mtype, **changes)
    await request.app[STORE].update_meeting_type(edited)
    await audit_actor(request, actor, "meeting_type.update", edited.id)
    return web.json_response({"meeting_type": meeting_type_json(edited)})


async def remove_meeting_type(request: web.Request) -> web.Response:
    """DELETE /api/meeting-types/{id}: deleted if unused (204), else retired (200)."""
    actor = await team_actor(request)
    mtype = await type_in_team(request, actor, request.match_info["id"])
    store = request.app[STORE]
    if await store.delete_meeting_type(mtype.id):
        await audit_actor(request, actor, "meeting_type.delete", mtype.id)
        return web.Response(status=204)
    retired = replace(mtype, retired=True)
    await store.update_meeting_type(retired)
    await audit_actor(request, actor, "meeting_type.retire", mtype.id)
    return web.json_response({"meeting_type": meeting_type_json(retired)})
