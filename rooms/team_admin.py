"""Team administration: who administers a team, inviting, disabling and
re-enabling members, a member's departure, and renaming a user room's address.

A *team administrator* is a member with the ``admin`` flag (the first member of
a client account is one, rooms.plans.new_client_team). Administrators, and an
organisation's manager viewing as the team, invite members, disable and enable
them, grant and revoke the flag, edit groups and rename user rooms' slugs. An
API key does none of it: it acts for the team, not for a person who answers for
the change. The rule that always holds: a team keeps at least one active
administrator, so nobody can lock a team out of its own administration.

A member who leaves is *disabled*, never deleted: their account, meetings and
history stay. Their meetings still to come are either handed to a colleague or
cancelled (the administrator chooses, :func:`plan_departure`), and their own
room is archived.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from rooms.accounts import StaffAccount, StaffRole, Team
from rooms.errors import Conflict, Forbidden, Invalid
from rooms.meeting import Meeting
from rooms.plans import (
    CONTACT_MAX,
    SPECIALITY_MAX,
    TITLE_MAX,
    check_unique_email,
    user_room_for,
)
from rooms.room import Room, RoomKind
from rooms.schedule import cancel, reassign
from rooms.validate import check_aware, check_name, check_phone, check_slug, check_text


class MemberState(enum.StrEnum):
    #: invited, no password chosen yet: cannot log in
    INVITED = "invited"
    ACTIVE = "active"
    #: disabled by an administrator: cannot log in, sessions ended
    DISABLED = "disabled"


def state_of(account: StaffAccount) -> MemberState:
    if account.disabled:
        return MemberState.DISABLED
    if not account.password_hash:
        return MemberState.INVITED
    return MemberState.ACTIVE


def is_active_admin(account: StaffAccount) -> bool:
    """An administrator who can act now (a member, flagged, not disabled)."""
    return account.role is StaffRole.MEMBER and account.admin and not account.disabled


def check_administrator(account: StaffAccount, *, via_api_key: bool) -> None:
    """Forbidden unless ``account`` may administer its team: an active team
    administrator, or a manager (who reaches a team only by viewing as it)."""
    if via_api_key:
        raise Forbidden("team administration is done by a person, not an API key")
    if account.role is StaffRole.MANAGER:
        return
    if not is_active_admin(account):
        raise Forbidden("only a team administrator may do that")


def check_admins_remain(members: Iterable[StaffAccount], changed: StaffAccount) -> None:
    """Conflict unless the team, with ``changed`` in place of its current
    record, still has an active administrator."""
    after = [changed if m.id == changed.id else m for m in members]
    if not any(is_active_admin(m) for m in after):
        raise Conflict("the team's last administrator cannot be removed; make another one first")


def set_admin(members: Sequence[StaffAccount], target: StaffAccount, admin: bool) -> StaffAccount:
    """``target`` with the admin flag set to ``admin`` (the last active
    administrator cannot lose it)."""
    if target.role is not StaffRole.MEMBER:
        raise Invalid("only a member of the team can be an administrator")
    if admin and target.disabled:
        raise Conflict("a disabled member cannot be an administrator; enable them first")
    changed = replace(target, admin=admin)
    check_admins_remain(members, changed)
    return changed


def disable_member(members: Sequence[StaffAccount], target: StaffAccount) -> StaffAccount:
    """``target`` disabled. Conflict if already so, or if it would leave the
    team without an active administrator."""
    if target.disabled:
        raise Conflict("this member is already disabled")
    changed = replace(target, disabled=True)
    check_admins_remain(members, changed)
    return changed


def enable_member(target: StaffAccount) -> StaffAccount:
    if not target.disabled:
        raise Conflict("this member is not disabled")
    return replace(target, disabled=False)


# -- inviting ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberInvite:
    """What an administrator fills in to invite a clinician."""

    name: str
    email: str
    title: str = ""
    speciality: str = ""
    contact: str = ""
    phone: str = ""
    admin: bool = False


@dataclass(frozen=True, slots=True)
class NewMember:
    """An invited member's account (no password yet) and their own room."""

    account: StaffAccount
    room: Room


def new_member(
    invite: MemberInvite,
    team: Team,
    *,
    existing_emails: Iterable[str],
    now: datetime,
    new_id: Callable[[], str],
    taken_slugs: Collection[str] = (),
) -> NewMember:
    """Validate an invitation and build the account (without a password, so it
    cannot log in until the invitation is accepted) and the member's user room."""
    check_aware(now, field="now")
    if team.disabled:
        raise Conflict("this client account is disabled")
    account = StaffAccount(
        id=new_id(),
        org_id=team.org_id,
        team_id=team.id,
        role=StaffRole.MEMBER,
        email=check_unique_email(invite.email, existing_emails),
        name=check_name(invite.name),
        password_hash="",
        title=check_text(invite.title, field="title", max_length=TITLE_MAX),
        speciality=check_text(invite.speciality, field="speciality", max_length=SPECIALITY_MAX),
        contact=check_text(
            invite.contact, field="contact details", max_length=CONTACT_MAX, multiline=True
        ),
        phone=check_phone(invite.phone),
        created_at=now,
        admin=invite.admin,
    )
    return NewMember(account, user_room_for(account, team, new_id, taken_slugs=taken_slugs))


# -- a member's departure -----------------------------------------------------------


class Handover(enum.StrEnum):
    """What becomes of a departing member's meetings still to come."""

    REASSIGN = "reassign"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class Departure:
    """What disabling a member changes besides their account."""

    #: (meeting as it was, meeting handed to the successor)
    reassigned: tuple[tuple[Meeting, Meeting], ...]
    cancelled: tuple[Meeting, ...]
    #: the member's own room, archived (None if they had none)
    archived_room: Room | None


def still_to_come(meeting: Meeting, now: datetime) -> bool:
    """Not cancelled and not over (planning meetings included)."""
    return not meeting.cancelled and (meeting.end is None or meeting.end > now)


def plan_departure(
    member: StaffAccount,
    team: Team,
    meetings: Sequence[Meeting],
    rooms: Sequence[Room],
    now: datetime,
    *,
    handover: Handover,
    by: str,
    successor: StaffAccount | None = None,
) -> Departure:
    """The changes that go with disabling ``member``: each of their meetings
    still to come reassigned to ``successor`` (moving from the member's room to
    the successor's own) or cancelled by ``by``, and their room archived.

    The successor must be another active member of the team."""
    check_aware(now, field="now")
    own = next((r for r in rooms if r.kind is RoomKind.USER and r.owner_id == member.id), None)
    mine = [m for m in meetings if m.host_id == member.id and still_to_come(m, now)]
    reassigned: list[tuple[Meeting, Meeting]] = []
    cancelled: list[Meeting] = []
    if handover is Handover.REASSIGN:
        if successor is None:
            raise Invalid("choose the colleague who takes over the meetings")
        if successor.id == member.id or state_of(successor) is not MemberState.ACTIVE:
            raise Invalid("the meetings go to another active member of the team")
        theirs = next(
            (r for r in rooms if r.kind is RoomKind.USER and r.owner_id == successor.id), None
        )
        by_id = {r.id: r for r in rooms}
        for meeting in mine:
            room = by_id.get(meeting.room_id)
            if room is None:
                raise Invalid("a meeting's room no longer exists")
            moved, _ = reassign(meeting, successor, room, team, new_host_room=theirs)
            reassigned.append((meeting, moved))
    else:
        cancelled = [cancel(m, by, now)[0] for m in mine]
    archived = None if own is None or own.archived else replace(own, archived=True)
    return Departure(tuple(reassigned), tuple(cancelled), archived)


# -- a user room's address ------------------------------------------------------------


def rename_slug(room: Room, slug: str, holder: Room | None) -> Room:
    """``room`` at the new ``slug`` (validated; ``holder`` is the room that
    already has it, if any). Only a member's own room is renamed here."""
    if room.kind is not RoomKind.USER:
        raise Invalid("only a member's own room is renamed here")
    new = check_slug(slug)
    if new == room.slug:
        return room
    if holder is not None and holder.id != room.id:
        raise Conflict("this address is taken")
    return replace(room, slug=new)


def edit_profile(
    account: StaffAccount,
    *,
    name: str | None = None,
    title: str | None = None,
    speciality: str | None = None,
    contact: str | None = None,
    phone: str | None = None,
) -> StaffAccount:
    """``account`` with the given profile fields (validated as on invitation);
    None leaves a field as it is."""
    out = account
    if name is not None:
        out = replace(out, name=check_name(name))
    if title is not None:
        out = replace(out, title=check_text(title, field="title", max_length=TITLE_MAX))
    if speciality is not None:
        out = replace(
            out,
            speciality=check_text(speciality, field="speciality", max_length=SPECIALITY_MAX),
        )
    if contact is not None:
        out = replace(
            out,
            contact=check_text(
                contact, field="contact details", max_length=CONTACT_MAX, multiline=True
            ),
        )
    if phone is not None:
        out = replace(out, phone=check_phone(phone))
    return out
