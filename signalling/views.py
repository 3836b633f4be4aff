"""How a meeting looks to staff: one shape for REST lists and dashboard snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rooms.meeting import Meeting, MeetingType
from rooms.room import Room


def iso(value: Any) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def meeting_view(
    meeting: Meeting,
    *,
    status: str,
    indicator: str,
    rooms: Mapping[str, Room],
    types: Mapping[str, MeetingType],
) -> dict[str, Any]:
    """The staff view of a meeting. ``guest_key`` is null here: it is opened
    from its sealed copy by whoever has the data key (signalling.sealing's
    show_guest_keys for the dashboard, the REST renderer)."""
    mtype = types.get(meeting.type_id) if meeting.type_id else None
    room = rooms.get(meeting.room_id)
    return {
        "id": meeting.id,
        "status": status,
        "indicator": indicator,
        "guest": {
            "name": meeting.guest.name,
            "email": meeting.guest.email,
            "phone": meeting.guest.phone,
        },
        "guest_key": None,
        "type": None
        if mtype is None
        else {"id": mtype.id, "label": mtype.label, "colour": mtype.colour},
        "host": meeting.host_id,
        "room": room.slug if room is not None else None,
        "start": iso(meeting.start),
        "duration": int(meeting.duration.total_seconds()),
        "proposed_slots": [iso(s) for s in meeting.proposed_slots],
        "description": meeting.description,
        "series": meeting.series_id,
        "cancelled_at": iso(meeting.cancelled_at),
        "review": None
        if meeting.review is None
        else {"rating": meeting.review_rating, "text": meeting.review},
        "summary": meeting.summary,
        "booked_online": meeting.booked_online,
    }
