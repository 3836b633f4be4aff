"""Supervising the team's shared queues from one's own room.

A clinician hosting a room of their team watches the queues of the team's
Reception and Waiting Area without being in those rooms' calls, and picks a
waiting patient into their own room ("any free clinician picks"). The rules:

- Watched rooms are the team's rooms of a supervised kind (RECEPTION,
  WAITING_AREA) that are not archived, other than the watcher's own room.
- Only a host may watch or pick, from the room they host; the lobby's own
  host rule (rooms.lobby.require_host) says they are in its call when they
  pick, so the patient can be admitted at once.
- A pick goes from a supervised room to another room of the same team;
  anything else is Forbidden (a consulting room's queue is its owner's).
"""

from __future__ import annotations

from collections.abc import Iterable

from rooms.errors import Forbidden, Invalid
from rooms.room import Room, RoomKind

#: the kinds of room whose queue colleagues watch and pick from
SUPERVISED_KINDS = frozenset({RoomKind.RECEPTION, RoomKind.WAITING_AREA})


def watched_rooms(team_rooms: Iterable[Room], own: Room) -> list[Room]:
    """The rooms whose queues a host of ``own`` sees, in the given order."""
    return [
        room
        for room in team_rooms
        if room.team_id == own.team_id
        and room.kind in SUPERVISED_KINDS
        and not room.archived
        and room.id != own.id
    ]


def check_pick(from_room: Room, to_room: Room) -> None:
    """Refuse a pick from ``from_room`` into ``to_room`` unless the rules allow it."""
    if from_room.team_id != to_room.team_id:
        raise Forbidden("patients can be picked only from a queue of your own team")
    if from_room.kind not in SUPERVISED_KINDS or from_room.archived:
        raise Forbidden("patients can be picked only from Reception or the Waiting Area")
    if from_room.id == to_room.id:
        raise Invalid("the patient is already waiting in this room")
