"""Online booking: a clinician's public booking page and its API (no login).

- ``GET /api/book/{slug}``: who the clinician is, their practice, the legal
  line, and the meeting types they offer online (rooms.booking);
- ``GET /api/book/{slug}/slots?type=``: the free slots of one type, from now
  to ``online_booking_days`` ahead (rooms.hours.free_slots);
- ``POST /api/book/{slug}``: a patient books one of them with their name,
  email and optional phone. The meeting is stored only if the time is still
  free, in one atomic step of the store (Store.book_if_free), and the booking
  confirmation with the join link and the calendar file is queued in the
  outbox: the link goes to the email given, never into the response. The
  booking is audited as the booking page (rooms.booking.BOOKING_PAGE_ACTOR,
  action ``meeting.book_online``, the meeting's id), and the meeting is
  marked ``booked_online``, which the overview shows.

``{slug}`` is the clinician's consulting room. Every way a page can be absent
(no such room, a shared room, an archived room, a disabled account or team)
answers the same 404 ``not_found``.

Booking tries are throttled per client address and per patient email
(``online_bookings_per_hour`` each, counted on this node): a "known patients
only" type answers an unknown email with ``known_patients_only``, and the
limit bounds how many addresses one client can test that way. Log lines name
ids only, never the patient's name or email.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog
from aiohttp import web

from rooms.accounts import StaffAccount, Team
from rooms.booking import (
    BOOKED_ONLINE,
    BOOKING_PAGE_ACTOR,
    book_online,
    check_bookable_host,
    check_offered_type,
    offered_types,
)
from rooms.errors import NotFound, SlotTaken
from rooms.hours import WorkingHours, free_slots
from rooms.meeting import Guest, MeetingType
from rooms.presence import MeetingChange
from rooms.room import Room
from rooms.schedule import DURATION_MAX
from rooms.validate import email_key
from signalling.api.body import Body, obj, read_json, required_instant, text
from signalling.api.meetings import issue
from signalling.api.render import Json
from signalling.api.scope import audit_as, new_id, now_of
from signalling.api.working_hours import zone_of
from signalling.keys import OUTBOX, PRESENCE, SETTINGS, STORE
from signalling.throttle import WindowLimiter
from signalling.views import iso

log = structlog.get_logger("vestibule.booking")

#: the throttle's window: an hour
WINDOW = 3600.0


@dataclass(slots=True)
class BookingLimits:
    """The throttles of booking tries (one per node)."""

    by_address: WindowLimiter
    by_email: WindowLimiter


LIMITS = web.AppKey("booking_limits", BookingLimits)


def setup(app: web.Application) -> None:
    per_hour = app[SETTINGS].online_bookings_per_hour
    app[LIMITS] = BookingLimits(WindowLimiter(per_hour, WINDOW), WindowLimiter(per_hour, WINDOW))
    app.router.add_get("/api/book/{slug}", booking_page)
    app.router.add_get("/api/book/{slug}/slots", booking_slots)
    app.router.add_post("/api/book/{slug}", book)


@dataclass(frozen=True, slots=True)
class Page:
    team: Team
    host: StaffAccount
    room: Room


async def _page(request: web.Request) -> Page:
    store = request.app[STORE]
    room = await store.find_room_by_slug(request.match_info["slug"].strip().lower())
    if room is None or room.owner_id is None:
        raise NotFound("no such booking page")
    page = Page(await store.get_team(room.team_id), await store.get_staff(room.owner_id), room)
    check_bookable_host(page.team, page.host, page.room)
    return page


async def _hours(request: web.Request, page: Page) -> WorkingHours:
    found = await request.app[STORE].get_working_hours(page.host.id)
    return found if found is not None else WorkingHours(page.host.id, page.team.id)


async def _type(request: web.Request, page: Page, type_id: str) -> MeetingType:
    try:
        mtype = await request.app[STORE].get_meeting_type(type_id)
    except NotFound:
        raise NotFound("no such appointment type") from None
    return check_offered_type(page.team, mtype)


async def _free(
    request: web.Request, page: Page, hours: WorkingHours, mtype: MeetingType, now: datetime
) -> list[datetime]:
    """The type's free slots on the page now: working hours minus the
    clinician's meetings that are not cancelled."""
    until = now + request.app[SETTINGS].online_booking_horizon
    meetings = await request.app[STORE].list_meetings(
        page.team.id, host_ids=[page.host.id], start_from=now - DURATION_MAX, start_to=until
    )
    busy = [
        (m.start, m.end)
        for m in meetings
        if not m.cancelled and m.start is not None and m.end is not None
    ]
    return free_slots(hours, zone_of(hours.timezone), mtype.duration, busy, now, until)


def _type_json(mtype: MeetingType) -> Json:
    return {
        "id": mtype.id,
        "label": mtype.label,
        "duration": int(mtype.duration.total_seconds()),
        "colour": mtype.colour,
        "kinds": sorted(str(kind) for kind in mtype.kinds),
        "description": mtype.description,
        "address": mtype.address,
        "known_patients_only": mtype.known_patients_only,
    }


async def booking_page(request: web.Request) -> web.Response:
    """GET /api/book/{slug}: the page's clinician, practice, legal line and types."""
    page = await _page(request)
    settings = request.app[SETTINGS]
    hours = await _hours(request, page)
    types = offered_types(await request.app[STORE].list_meeting_types(page.team.id))
    body = {
        "clinician": {
            "name": page.host.name,
            "title": page.host.title,
            "speciality": page.host.speciality,
            "contact": page.host.contact,
        },
        "practice": {"name": page.team.name, "email": page.team.email, "phone": page.team.phone},
        "legal": settings.booking_legal_notice,
        "timezone": hours.timezone,
        "horizon_days": settings.online_booking_days,
        "types": [_type_json(t) for t in types],
    }
    return web.json_response(body)


async def booking_slots(request: web.Request) -> web.Response:
    """GET /api/book/{slug}/slots?type=: the type's free slot starts, ascending."""
    page = await _page(request)
    mtype = await _type(request, page, request.query.get("type", ""))
    hours = await _hours(request, page)
    slots = await _free(request, page, hours, mtype, now_of(request))
    return web.json_response(
        {"type": mtype.id, "timezone": hours.timezone, "slots": [iso(s) for s in slots]}
    )


def _guest(body: Body) -> Guest:
    guest = obj(body, "guest")
    if guest is None:
        return Guest("", "")
    return Guest(name=text(guest, "name"), email=text(guest, "email"), phone=text(guest, "phone"))


async def book(request: web.Request) -> web.Response:
    """POST /api/book/{slug} {type, start, guest: {name, email, phone}}."""
    limits = request.app[LIMITS]
    limits.by_address.hit(request.remote or "unknown")
    page = await _page(request)
    body = await read_json(request)
    mtype = await _type(request, page, text(body, "type", required=True))
    start = required_instant(body, "start")
    guest = _guest(body)
    if guest.email.strip():
        limits.by_email.hit(email_key(guest.email))
    store = request.app[STORE]
    now = now_of(request)
    hours = await _hours(request, page)
    free = await _free(request, page, hours, mtype, now)
    known = mtype.known_patients_only and await store.knows_guest(page.team.id, guest.email)
    meeting = book_online(
        page.team, page.host, page.room, mtype, guest, start, free, known, now, new_id,
        horizon=request.app[SETTINGS].booking_horizon,
    )  # fmt: skip
    issued = issue(request, meeting, now)
    if not await store.book_if_free(meeting, issued.credential):
        log.info("online booking lost its slot", team=page.team.id, host=page.host.id)
        raise SlotTaken()
    await request.app[PRESENCE].meeting_changed(meeting, MeetingChange.CREATED, now)
    await request.app[OUTBOX].booked([meeting], now)
    # audited as the page: ids only, never the patient's name or email
    await audit_as(
        request, BOOKING_PAGE_ACTOR, page.team.org_id, page.team.id, BOOKED_ONLINE, meeting.id
    )
    log.info("meeting booked online", meeting=meeting.id, team=page.team.id, host=page.host.id)
    booking = {
        "meeting": meeting.id,
        "start": iso(start),
        "duration": int(meeting.duration.total_seconds()),
        "type": mtype.label,
        "clinician": page.host.name,
        "address": mtype.address,
        "instructions": mtype.instructions,
    }
    return web.json_response({"booking": booking}, status=201)
