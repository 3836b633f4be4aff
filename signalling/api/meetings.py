"""Meetings: list (scoped, filtered, sorted), read one, book one or a series,
its communication history and its calendar file.

Booking issues each dated meeting's guest credential at once (the store keeps
its digests for look-up and its clear values sealed under the data key, so
staff see them again in every view) and schedules the messages the booking
sends (signalling.outbox). A meeting booked with proposed slots sends the
guest the link to pick one (signalling.api.slot_choice); it gets its
credential and its confirmation when a slot is picked or confirmed.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from rooms.access import DashboardScope, visible_meetings_scope
from rooms.accounts import StaffAccount
from rooms.errors import Conflict, Invalid
from rooms.meeting import Frequency, Guest, Meeting
from rooms.presence import MeetingChange
from rooms.room import Room, RoomKind
from rooms.schedule import create_meeting, create_series
from rooms.status import MeetingStatus
from rooms.tokens import IssuedCredential, issue_credential
from signalling.api.body import (
    Body,
    instant,
    instants,
    integer,
    obj,
    optional_text,
    query_bound,
    read_json,
    seconds,
    text,
)
from signalling.api.render import MeetingRenderer, message_json
from signalling.api.scope import (
    Actor,
    audit_actor,
    meeting_in_team,
    member_in_team,
    new_id,
    now_of,
    room_in_team,
    team_actor,
    type_in_team,
)
from signalling.keys import CLOCK, OUTBOX, PRESENCE, SEALER, SETTINGS, STORE
from signalling.mail import calendar


def setup(app: web.Application) -> None:
    app.router.add_get("/api/meetings", list_meetings)
    app.router.add_post("/api/meetings", create_meetings)
    app.router.add_get("/api/meetings/{id}", get_meeting)
    app.router.add_get("/api/meetings/{id}/messages", meeting_messages)
    app.router.add_get("/api/meetings/{id}/calendar.ics", meeting_calendar)


def issue(request: web.Request, meeting: Meeting, now: datetime) -> IssuedCredential:
    """The meeting's credential under this server's validity margins, its clear
    values sealed for the store."""
    settings = request.app[SETTINGS]
    issued = issue_credential(
        meeting, now, new_id=new_id, before=settings.link_before, grace=settings.link_grace
    )
    return request.app[SEALER].seal_issued(issued)


def _statuses(raw: str | None) -> frozenset[str] | None:
    """``status=live,starting_soon`` as a set of status names (None: no filter)."""
    if not raw:
        return None
    names = frozenset(part.strip() for part in raw.split(",") if part.strip())
    known = {str(status) for status in MeetingStatus}
    if not names <= known:
        raise Invalid("status must be one or more of: " + ", ".join(sorted(known)))
    return names


async def list_meetings(request: web.Request) -> web.Response:
    """GET /api/meetings?scope=&sort=&status=&from=&to=

    ``scope=my`` (default) is the viewer's own meetings, ``everyone`` those of
    the members of the viewer's groups. An API key or a manager viewing as is
    no member: it sees the whole team whatever the scope.
    """
    actor = await team_actor(request)
    query = request.query
    scope = query.get("scope", str(DashboardScope.MY))
    sort = query.get("sort", "start")
    if sort not in ("start", "-start"):
        raise Invalid("sort must be start or -start")
    wanted = _statuses(query.get("status"))
    start_from = query_bound(request, "from", end=False)
    start_to = query_bound(request, "to", end=True)
    if start_from is not None and start_to is not None and start_to <= start_from:
        raise Invalid("to must be after from")
    store = request.app[STORE]
    person = actor.person
    host_ids = None
    if person is not None:
        groups = await store.list_groups(actor.team.id)
        host_ids = visible_meetings_scope(person, groups, scope)
    elif scope not in {str(s) for s in DashboardScope}:
        raise Invalid("scope must be 'my' or 'everyone'")
    meetings = await store.list_meetings(
        actor.team.id, host_ids=host_ids, start_from=start_from, start_to=start_to
    )
    now = now_of(request)
    renderer = await MeetingRenderer.for_team(request.app, actor.team.id, now)
    await renderer.prime(meetings)
    if wanted is not None:
        meetings = [m for m in meetings if renderer.status(m) in wanted]
    if sort == "-start":
        # newest first; meetings still in planning (no start) stay at the end
        dated = [m for m in meetings if m.start is not None]
        undated = [m for m in meetings if m.start is None]
        meetings = [*reversed(dated), *undated]
    return web.json_response({"meetings": renderer.views(meetings)})


async def get_meeting(request: web.Request) -> web.Response:
    actor = await team_actor(request)
    meeting = await meeting_in_team(request, actor, request.match_info["id"])
    renderer = await MeetingRenderer.for_team(request.app, actor.team.id, now_of(request))
    await renderer.prime([meeting])
    return web.json_response({"meeting": renderer.view(meeting)})


def _guest(body: Body) -> Guest:
    guest = obj(body, "guest")
    if guest is None:
        raise Invalid("guest is required")
    return Guest(
        name=text(guest, "name", required=True),
        email=text(guest, "email", required=True),
        phone=text(guest, "phone"),
    )


async def _host_and_room(
    request: web.Request, actor: Actor, body: Body
) -> tuple[StaffAccount, Room]:
    """The meeting's host (default: the caller) and room (default: the host's own)."""
    host_id = optional_text(body, "host")
    if host_id is not None:
        host = await member_in_team(request, actor, host_id)
    elif actor.person is not None:
        host = actor.person
    else:
        raise Invalid("host is required: name the member who hosts the meeting")
    room_ref = optional_text(body, "room")
    if room_ref is not None:
        return host, await room_in_team(request, actor, room_ref)
    for room in await request.app[STORE].list_rooms(actor.team.id):
        if room.kind is RoomKind.USER and room.owner_id == host.id:
            return host, room
    raise Invalid("room is required: the host has no room of their own")


async def create_meetings(request: web.Request) -> web.Response:
    """POST /api/meetings: one meeting, a meeting in planning (``slots``), or a
    recurring series (``repeat``). ``host`` defaults to the caller (an API key
    or a manager must name one); ``room`` to the host's own room."""
    actor = await team_actor(request)
    body = await read_json(request)
    store = request.app[STORE]
    host, room = await _host_and_room(request, actor, body)
    type_id = optional_text(body, "type")
    mtype = None if type_id is None else await type_in_team(request, actor, type_id)
    guest = _guest(body)
    description = text(body, "description")
    start = instant(body, "start")
    duration = seconds(body, "duration")
    slots = instants(body, "slots")
    repeat = obj(body, "repeat")
    now = now_of(request)
    meetings: list[Meeting]
    if repeat is not None:
        if start is None or slots:
            raise Invalid("a recurring series needs a start and no proposed slots")
        try:
            frequency = Frequency(text(repeat, "frequency", required=True))
        except ValueError:
            raise Invalid("frequency must be daily, weekly, fortnightly or monthly") from None
        _, meetings = create_series(
            actor.team, host, room, mtype, guest, description, start, duration, frequency,
            instant(repeat, "until"), integer(repeat, "count"), now, new_id,
            horizon=request.app[SETTINGS].booking_horizon,
        )  # fmt: skip
    else:
        meeting, _ = create_meeting(
            actor.team, host, room, mtype, guest, description, start, duration, slots, now,
            new_id, horizon=request.app[SETTINGS].booking_horizon,
        )  # fmt: skip
        meetings = [meeting]
    issued = {m.id: issue(request, m, now) for m in meetings if m.start is not None}
    await store.add_meetings(meetings, [i.credential for i in issued.values()])
    presence = request.app[PRESENCE]
    for meeting in meetings:
        await presence.meeting_changed(meeting, MeetingChange.CREATED, now)
        await audit_actor(request, actor, "meeting.create", meeting.id)
    await request.app[OUTBOX].booked(meetings, now)
    renderer = await MeetingRenderer.for_team(request.app, actor.team.id, now)
    out = [renderer.view(meeting, issued.get(meeting.id)) for meeting in meetings]
    return web.json_response({"meetings": out}, status=201)


async def meeting_messages(request: web.Request) -> web.Response:
    """GET /api/meetings/{id}/messages: every message to the guest, scheduled,
    sent, failed or cancelled, by due time."""
    actor = await team_actor(request)
    meeting = await meeting_in_team(request, actor, request.match_info["id"])
    messages = await request.app[STORE].list_messages(meeting.id)
    return web.json_response({"messages": [message_json(m) for m in messages]})


async def meeting_calendar(request: web.Request) -> web.Response:
    """GET /api/meetings/{id}/calendar.ics: the meeting as an iCalendar event
    with its current join link (what the guest's confirmation carries)."""
    actor = await team_actor(request)
    meeting = await meeting_in_team(request, actor, request.match_info["id"])
    if meeting.start is None or meeting.cancelled:
        raise Conflict("the meeting has no time to put in a calendar")
    store = request.app[STORE]
    host = await store.get_staff(meeting.host_id)
    revealed = request.app[SEALER].reveal(await store.get_credential_for_meeting(meeting.id))
    link = None
    if revealed is not None:
        link = f"{request.app[SETTINGS].base_url}/join/{revealed.link_token}"
    body = calendar(
        [(meeting, link)],
        team_name=actor.team.name,
        host_name=host.name,
        stamp=request.app[CLOCK].now(),
    )
    return web.Response(
        body=body,
        headers={
            "Content-Type": "text/calendar; charset=utf-8",
            "Content-Disposition": f'attachment; filename="meeting-{meeting.id}.ics"',
            "Cache-Control": "no-store",
        },
    )
