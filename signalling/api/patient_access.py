"""What the patient pages' API shares: the meeting a patient link names
(signalling.patient_links; throttled per client address), and what a patient
sees of it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from rooms.errors import NotFound, TokenInvalid
from rooms.meeting import Meeting
from rooms.patient_links import Purpose, offered_slots
from signalling.keys import PATIENT_LINK_LIMITER, SETTINGS, STORE
from signalling.patient_links import LINK_HEADER, patient_links_for


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


async def linked_meeting(request: web.Request, purpose: Purpose) -> Meeting:
    """The meeting the request's patient link names; counts one attempt of the
    client address first. TokenInvalid for a token that names nothing."""
    request.app[PATIENT_LINK_LIMITER].hit(request.remote or "unknown")
    token = request.headers.get(LINK_HEADER, "")
    meeting_id = patient_links_for(request.app[SETTINGS].data_key).meeting_of(purpose, token)
    if meeting_id is None:
        raise TokenInvalid()
    try:
        return await request.app[STORE].get_meeting(meeting_id)
    except NotFound:
        raise TokenInvalid() from None


async def appointment(request: web.Request, meeting: Meeting, now: datetime) -> dict[str, Any]:
    """What the patient's page shows of their meeting (no other patient's data,
    no link or key: those come in the confirmation)."""
    store = request.app[STORE]
    team = await store.get_team(meeting.team_id)
    host = await store.get_staff(meeting.host_id)
    label = None
    if meeting.type_id is not None:
        try:
            label = (await store.get_meeting_type(meeting.type_id)).label
        except NotFound:
            label = None
    return {
        "team": team.name,
        "host": host.name,
        "type": label,
        "duration": int(meeting.duration.total_seconds()),
        "start": iso(meeting.start),
        "slots": [iso(slot) for slot in offered_slots(meeting, now)]
        if meeting.start is None
        else [],
    }
