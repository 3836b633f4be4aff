"""Administering a team's rooms: rename, archive, and per-room settings.

Creating a room is a plan matter (rooms.plans.check_can_create_room). Changing
one is decided here, as pure rules:

- Who: whoever hosts the room (rooms.access.role_in_room): any member of the
  team for a shared room, only its owner for a consulting room. Anyone else
  of the team gets NotHost; nobody outside the team learns the room exists.
- Rename: a new display name (rooms.validate.check_name). The slug stays, so
  links and bookmarks already given to patients keep working.
- Archive: only shared rooms. A consulting room belongs to its member and
  goes with their account. An archived room admits nobody
  (:func:`check_open`), is left out of the pages' room lists, and keeps its
  meetings and log. It takes no place in the plan's allowance (a downgrade
  waits for rooms to be archived, rooms.plans.check_plan_change), so
  restoring one is checked as creating one of its kind.
- Settings: ``show_position`` (a waiting guest sees their place in the queue)
  and ``walk_ins`` (patients without an appointment may give their name and
  wait). A Team Meeting room is for staff: it takes no walk-ins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from rooms import access
from rooms.accounts import StaffAccount, Team
from rooms.errors import Invalid, RoomArchived
from rooms.plans import check_can_create_room
from rooms.room import Room, RoomKind
from rooms.validate import check_name

#: the kinds of room that can never take walk-ins
NO_WALK_IN_KINDS = frozenset({RoomKind.TEAM_MEETING})


@dataclass(frozen=True, slots=True)
class RoomChange:
    """What a request changes; None leaves a field as it is."""

    name: str | None = None
    show_position: bool | None = None
    walk_ins: bool | None = None
    archived: bool | None = None

    @property
    def empty(self) -> bool:
        return all(
            value is None for value in (self.name, self.show_position, self.walk_ins, self.archived)
        )


def change_room(
    account: StaffAccount,
    team: Team,
    room: Room,
    change: RoomChange,
    existing: Sequence[Room] = (),
) -> Room:
    """``room`` with ``change`` applied, or the typed refusal (NotHost,
    Forbidden, Invalid, PlanLimit when restoring a room the plan has no place
    for among the team's ``existing`` rooms). Nothing is stored here."""
    access.check_can_host(account, team, room)
    if change.empty:
        raise Invalid("nothing to change: give name, show_position, walk_ins or archived")
    changed = room
    if change.name is not None:
        changed = replace(changed, name=check_name(change.name, field="room name"))
    if change.show_position is not None:
        changed = replace(changed, show_position=change.show_position)
    if change.walk_ins is not None:
        if change.walk_ins and room.kind in NO_WALK_IN_KINDS:
            raise Invalid("a team meeting room is for staff and takes no walk-ins")
        changed = replace(changed, walk_ins=change.walk_ins)
    if change.archived is not None:
        if change.archived and not room.shared:
            raise Invalid("a consulting room goes with its member's account; it is not archived")
        if room.archived and not change.archived:
            others = [r for r in existing if r.id != room.id]
            check_can_create_room(team, others, room.kind)
        changed = replace(changed, archived=change.archived)
    return changed


def check_open(room: Room) -> None:
    """RoomArchived unless ``room`` admits people."""
    if room.archived:
        raise RoomArchived()


def takes_walk_ins(room: Room | None) -> bool:
    """Whether a patient without an appointment may wait in ``room`` (an
    unknown room takes none: the caller answers all three alike)."""
    return room is not None and room.walk_ins and not room.archived
