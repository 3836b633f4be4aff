"""Rooms: a member's own consulting room, or a shared room of the team."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class RoomKind(enum.StrEnum):
    #: a member's consulting room; only its owner hosts
    USER = "user"
    #: shared buffer where guests wait until a clinician brings them into a room
    RECEPTION = "reception"
    #: shared staff catch-up room (professional and clinic plans)
    TEAM_MEETING = "team_meeting"
    #: a shared room created by members (clinic plan)
    CUSTOM = "custom"
    #: the team-wide queue any free clinician picks guests from (clinic plan)
    WAITING_AREA = "waiting_area"


@dataclass(frozen=True, slots=True)
class Room:
    id: str
    team_id: str
    slug: str
    name: str
    kind: RoomKind
    #: the owning member for USER rooms, None for shared rooms
    owner_id: str | None = None
    #: whether a waiting guest is told their position in the queue
    show_position: bool = True
    #: most people in the call at once (host(s) and admitted guests)
    capacity: int = 8
    #: whether a patient without an appointment may give their name and wait
    walk_ins: bool = False
    #: an archived room admits nobody and is hidden from the pages; kept, not
    #: deleted, so its meetings and history stay readable
    archived: bool = False

    @property
    def shared(self) -> bool:
        return self.kind is not RoomKind.USER


#: the kinds of room that take walk-ins unless their settings say otherwise
WALK_IN_KINDS = frozenset({RoomKind.USER, RoomKind.RECEPTION, RoomKind.WAITING_AREA})
