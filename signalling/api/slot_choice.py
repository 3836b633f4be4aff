"""The patient picks one of a meeting's proposed slots, from the link in the
"proposed slots" message (rooms.patient_links, signalling.patient_links).

``GET /api/pick`` shows what the link offers; ``POST /api/pick {slot}`` picks
one, once: the meeting is scheduled at that start, its credential issued and
the booking confirmation (with the .ics and the join link) queued; the other
slots are released. The token comes in the ``X-Vestibule-Link`` header. Two
picks at once: the store keeps the first (Store.store_chosen_slot) and the
other is answered ``slot_already_chosen``, as is any pick after the time was
set. Every request counts against the client address's attempts
(``key_attempts_per_address`` a minute, as guest keys do).
"""

from __future__ import annotations

import structlog
from aiohttp import web

from rooms.errors import TokenInvalid
from rooms.outbox import Trigger
from rooms.patient_links import Purpose, check_pick_link, pick_slot
from signalling.api.body import read_json, required_instant
from signalling.api.meetings import issue
from signalling.api.patient_access import appointment, linked_meeting
from signalling.api.scope import now_of
from signalling.keys import OUTBOX, PRESENCE, STORE

log = structlog.get_logger("vestibule.patient")


def setup(app: web.Application) -> None:
    app.router.add_get("/api/pick", show)
    app.router.add_post("/api/pick", pick)


async def show(request: web.Request) -> web.Response:
    """GET /api/pick: the slots still offered, or the start once one was picked."""
    meeting = await linked_meeting(request, Purpose.PICK)
    if meeting.cancelled:
        raise TokenInvalid()
    now = now_of(request)
    return web.json_response({"appointment": await appointment(request, meeting, now)})


async def pick(request: web.Request) -> web.Response:
    """POST /api/pick {slot}: planning -> scheduled at ``slot``, once."""
    meeting = await linked_meeting(request, Purpose.PICK)
    body = await read_json(request)
    slot = required_instant(body, "slot")
    now = now_of(request)
    chosen, change = pick_slot(meeting, slot, now)
    issued = issue(request, chosen, now)
    store = request.app[STORE]
    if not await store.store_chosen_slot(chosen, issued.credential, now):
        # another pick (or the clinic) set the time first: say which answer applies
        check_pick_link(await store.get_meeting(meeting.id))
        raise TokenInvalid()  # pragma: no cover - the meeting left planning
    await request.app[PRESENCE].meeting_changed(chosen, change, now)
    await request.app[OUTBOX].changed(chosen, Trigger.CONFIRMATION, now)
    log.info("slot picked by the guest", meeting=chosen.id, team=chosen.team_id)
    return web.json_response({"appointment": await appointment(request, chosen, now)})
