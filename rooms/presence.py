"""Presence: what happened to whom, as facts appended to a team's ordered log.

Presence events are the only input, with the schedule and the clock, from
which meeting status and the guest indicator are computed (rooms.status).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any


class Role(enum.StrEnum):
    """Role of a participant in a room, as the server decided it at hello."""

    GUEST = "guest"
    #: a team member who is not hosting (e.g. invited to a colleague's user room)
    MEMBER = "member"
    HOST = "host"


class PresenceKind(enum.StrEnum):
    ENTERED = "entered"
    #: media check finished; detail: {"verdict": "passed"|"failed", "reasons": [...]}
    CHECKED = "checked"
    WAITING = "waiting"
    ADMITTED = "admitted"
    DENIED = "denied"
    IN_CALL = "in_call"
    #: put back into the waiting queue (by a host, or because the last host left)
    PUT_BACK = "put_back"
    #: moved to another room of the team; detail: {"to_room": slug}
    MOVED = "moved"
    LEFT = "left"
    #: peer reported its call connected (ICE + DTLS up)
    CALL_CONNECTED = "call_connected"
    #: peer reported its call failed (ICE failure)
    CALL_FAILED = "call_failed"


class MeetingChange(enum.StrEnum):
    CREATED = "created"
    RESCHEDULED = "rescheduled"
    CANCELLED = "cancelled"
    REASSIGNED = "reassigned"
    SLOT_CHOSEN = "slot_chosen"
    STATUS_CHANGED = "status_changed"
    UPDATED = "updated"


_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PresenceEvent:
    """Something that happened to one participant, at ``at``."""

    kind: PresenceKind
    team_id: str
    room_id: str
    participant_id: str
    role: Role
    at: datetime
    meeting_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One entry of a team's ordered log.

    ``seq`` is per team, strictly increasing, never reused. ``topic`` is
    "presence" or "meeting"; ``kind`` a PresenceKind or MeetingChange value;
    ``data`` is JSON-able (ids, states; never a token).
    """

    seq: int
    team_id: str
    at: datetime
    topic: str
    kind: str
    meeting_id: str | None
    data: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
