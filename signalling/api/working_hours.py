"""A member's working hours for online booking: read and replace them.

``GET`` / ``PUT /api/members/{id}/working-hours``. A member sets their own; a
team administrator, an API key of the team or a manager viewing as it sets
anyone's in the team. Times are ``HH:MM`` of the wall clock in the hours' time
zone (an IANA name, checked against the server's time-zone database).
"""

from __future__ import annotations

import re
from datetime import tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from rooms.accounts import StaffAccount
from rooms.errors import BadMessage, Forbidden, Invalid
from rooms.hours import DAY_MINUTES, DayRange, WorkingHours, make_working_hours
from rooms.room import Room, RoomKind
from signalling.api.body import Body, read_json, string_list, text
from signalling.api.render import Json
from signalling.api.scope import Actor, audit_actor, member_in_team, team_actor
from signalling.keys import SETTINGS, STORE

_CLOCK_RE = re.compile(r"([01][0-9]|2[0-4]):([0-5][0-9])")
#: ranges one request may carry: six a day, every day
_RANGES_MAX = 7 * 6


def setup(app: web.Application) -> None:
    app.router.add_get("/api/members/{id}/working-hours", get_hours)
    app.router.add_put("/api/members/{id}/working-hours", put_hours)


def zone_of(name: str) -> tzinfo:
    """The time zone named ``name``, or Invalid."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid("timezone is not a known time zone (such as Europe/Berlin)") from None


def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(value: object, name: str) -> int:
    if not isinstance(value, str):
        raise BadMessage(f"{name} must be a string")
    match = _CLOCK_RE.fullmatch(value)
    minutes = int(match.group(1)) * 60 + int(match.group(2)) if match else -1
    if not 0 <= minutes <= DAY_MINUTES:
        raise Invalid(f"{name} must be a time from 00:00 to 24:00")
    return minutes


def _ranges(body: Body) -> list[DayRange]:
    raw = body.get("ranges")
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise BadMessage("ranges must be a list of objects")
    if len(raw) > _RANGES_MAX:
        raise Invalid(f"at most {_RANGES_MAX} ranges")
    out = []
    for item in raw:
        weekday = item.get("weekday")
        if isinstance(weekday, bool) or not isinstance(weekday, int):
            raise BadMessage("weekday must be a whole number")
        out.append(
            DayRange(
                weekday, _minutes(item.get("start"), "start"), _minutes(item.get("end"), "end")
            )
        )
    return out


async def own_room(request: web.Request, member: StaffAccount) -> Room | None:
    """The member's consulting room (their booking page's address)."""
    for room in await request.app[STORE].list_rooms(member.team_id or ""):
        if room.kind is RoomKind.USER and room.owner_id == member.id:
            return room
    return None


def hours_json(hours: WorkingHours, room: Room | None, base_url: str) -> Json:
    return {
        "member": hours.staff_id,
        "timezone": hours.timezone,
        "ranges": [
            {"weekday": r.weekday, "start": clock(r.start), "end": clock(r.end)}
            for r in hours.ranges
        ],
        "days_off": sorted(hours.days_off),
        "booking_url": None if room is None else f"{base_url}/book/{room.slug}",
    }


def _check_may_set(actor: Actor, member: StaffAccount) -> None:
    person = actor.person
    if person is not None and person.id != member.id and not person.admin:
        raise Forbidden("members set their own working hours; a team administrator sets anyone's")


async def get_hours(request: web.Request) -> web.Response:
    """GET: the member's working hours (none set: no ranges, in UTC)."""
    actor = await team_actor(request)
    member = await member_in_team(request, actor, request.match_info["id"])
    hours = await request.app[STORE].get_working_hours(member.id)
    if hours is None:
        hours = WorkingHours(member.id, actor.team.id)
    room = await own_room(request, member)
    return web.json_response(
        {"working_hours": hours_json(hours, room, request.app[SETTINGS].base_url)}
    )


async def put_hours(request: web.Request) -> web.Response:
    """PUT {timezone, ranges: [{weekday, start, end}], days_off: [date]}: replaced."""
    actor = await team_actor(request)
    member = await member_in_team(request, actor, request.match_info["id"])
    _check_may_set(actor, member)
    body = await read_json(request)
    hours = make_working_hours(
        staff_id=member.id,
        team_id=actor.team.id,
        timezone=text(body, "timezone", required=True),
        ranges=_ranges(body),
        days_off=string_list(body, "days_off"),
    )
    zone_of(hours.timezone)
    await request.app[STORE].put_working_hours(hours)
    await audit_actor(request, actor, "working_hours.update", member.id)
    room = await own_room(request, member)
    return web.json_response(
        {"working_hours": hours_json(hours, room, request.app[SETTINGS].base_url)}
    )
