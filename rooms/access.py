"""Who may be where: the access rules of docs/domain.md, as pure checks.

The server enforces these, never the page. Every refusal is a
:class:`rooms.errors.Forbidden` (or its subclass :class:`NotHost`), with a
message that names no person.

Rules:

- Everything is scoped to a team: a staff account acts only in rooms of its
  own team (:func:`check_same_team`).
- A USER room is hosted only by its owner. Another member of the same team
  joins it as MEMBER only when invited; uninvited, they are refused.
- A shared room (reception, team meeting, custom, waiting area) is hosted by
  any member of the owning team.
- An organisation MANAGER hosts nothing. A manager who "views as" a client
  team acts through that team's member account (the shell passes the member
  account and audits the action as the manager), so this module never grants
  a manager anything on its own.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from rooms.accounts import Group, StaffAccount, StaffRole, Team
from rooms.errors import Forbidden, Invalid, NotHost
from rooms.presence import Role
from rooms.room import Room, RoomKind


class DashboardScope(enum.StrEnum):
    #: the viewer's own meetings
    MY = "my"
    #: meetings of the members of the groups the viewer belongs to, and the viewer's
    EVERYONE = "everyone"


def check_same_team(account: StaffAccount, team_id: str) -> None:
    """Refuse an account acting on anything outside its own team."""
    if account.team_id is None or account.team_id != team_id:
        raise Forbidden("not a member of this team")


def role_in_room(account: StaffAccount, team: Team, room: Room, *, invited: bool = False) -> Role:
    """The role ``account`` has in ``room`` of ``team``, or Forbidden.

    ``invited`` says the owner of a USER room invited this member in; it
    matters only for USER rooms (in a shared room every member hosts).
    """
    if account.role is StaffRole.MANAGER:
        raise Forbidden("an organisation manager acts in a team only as one of its members")
    if room.team_id != team.id:
        raise Forbidden("the room is not one of this team's rooms")
    check_same_team(account, team.id)
    if room.kind is RoomKind.USER:
        if room.owner_id == account.id:
            return Role.HOST
        if invited:
            return Role.MEMBER
        raise Forbidden("only the owner of this room, or a colleague they invite, may join it")
    return Role.HOST


def check_can_host(account: StaffAccount, team: Team, room: Room) -> None:
    """Refuse (NotHost) anyone who may not host ``room``.

    Someone outside the team, or a manager, gets Forbidden from
    :func:`role_in_room` first; a member of the team who is not a host here
    (another member's USER room) gets NotHost.
    """
    if role_in_room(account, team, room, invited=True) is not Role.HOST:
        raise NotHost()


def check_move_target(from_room: Room, to_room: Room) -> None:
    """Refuse moving a guest from ``from_room`` to ``to_room`` unless allowed.

    Allowed: any *other* room of the same team, of any kind. That includes the
    WAITING_AREA, even for a guest who was in a call: handing a patient back
    to the team-wide queue ("the next free clinician will see you") is the
    point of that queue, and the guest waits there like any arrival (the lobby
    never lets a moved guest straight into a call). Moving to the room they
    are already in is Invalid: that is what put-back is for.
    """
    if from_room.team_id != to_room.team_id:
        raise Forbidden("a guest can be moved only to another room of the same team")
    if from_room.id == to_room.id:
        raise Invalid("the guest is already in this room; use put back instead")


def visible_meetings_scope(
    viewer: StaffAccount, groups: Iterable[Group], scope: DashboardScope | str
) -> frozenset[str]:
    """The member ids whose meetings ``viewer`` sees on the dashboard.

    ``"my"`` is the viewer alone. ``"everyone"`` is every member of every group
    of the viewer's team that the viewer belongs to (by the group's
    ``member_ids`` or the account's ``groups``), plus the viewer. Groups of
    other teams are ignored, never an error: scoping is by team first. A
    manager (no team) is Forbidden; they view as a member instead.
    """
    if viewer.team_id is None:
        raise Forbidden("an organisation manager views a team's dashboard as one of its members")
    try:
        wanted = DashboardScope(scope)
    except ValueError:
        raise Invalid("scope must be 'my' or 'everyone'") from None
    if wanted is DashboardScope.MY:
        return frozenset({viewer.id})
    visible = {viewer.id}
    for group in groups:
        if group.team_id != viewer.team_id:
            continue
        if viewer.id in group.member_ids or group.id in viewer.groups:
            visible.update(group.member_ids)
    return frozenset(visible)
