"""Online booking: what a patient may book on a clinician's public page.

A clinician is bookable online through their own consulting room while the
room is not archived and their account not disabled. They offer the team's
meeting types that are bookable online and not retired, in the free slots of
their working hours (rooms.hours). A booking is an ordinary scheduled meeting
in their room (rooms.schedule.create_meeting), with the type's duration.

Checks come in a fixed order, so that a refusal says no more than it must: the
type, the patient's details, the slot, and only then, for a "known patients
only" type, whether the team knows the email. An address is thus judged only
in a request that would otherwise book a real, free slot. The shell books the
slot with the store's atomic check (Store.book_if_free): of two patients taking
the same time at once, exactly one gets it, the other SlotTaken.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from rooms.accounts import StaffAccount, StaffRole, Team
from rooms.errors import KnownPatientsOnly, NotFound, SlotTaken
from rooms.meeting import Guest, Meeting, MeetingType
from rooms.room import Room, RoomKind
from rooms.schedule import BOOKING_HORIZON, check_guest, create_meeting
from rooms.validate import check_aware

#: how far ahead a patient sees free slots by default: four weeks
ONLINE_HORIZON = timedelta(days=28)
#: the actor an online booking is audited as: the public booking page, since
#: the patient has no account (and their name and email stay out of the audit)
BOOKING_PAGE_ACTOR = "booking-page"
#: the audit action of an online booking; its target is the meeting's id
BOOKED_ONLINE = "meeting.book_online"


def offered(mtype: MeetingType) -> bool:
    """Whether patients may book ``mtype`` online."""
    return mtype.online_bookable and not mtype.retired


def offered_types(types: Iterable[MeetingType]) -> list[MeetingType]:
    """The types a booking page offers, by label."""
    return sorted((t for t in types if offered(t)), key=lambda t: (t.label, t.id))


def check_bookable_host(team: Team, host: StaffAccount, room: Room) -> None:
    """NotFound unless ``room`` is ``host``'s own, live consulting room in
    ``team`` and ``host`` an active member: a booking page exists only then,
    and every other case looks like a page that does not exist."""
    if (
        room.kind is not RoomKind.USER
        or room.archived
        or room.owner_id != host.id
        or room.team_id != team.id
        or host.team_id != team.id
        or host.role is not StaffRole.MEMBER
        or host.disabled
        or team.disabled
    ):
        raise NotFound("no such booking page")


def check_offered_type(team: Team, mtype: MeetingType) -> MeetingType:
    """``mtype`` if the team offers it online; NotFound otherwise."""
    if mtype.team_id != team.id or not offered(mtype):
        raise NotFound("no such appointment type")
    return mtype


def book_online(
    team: Team,
    host: StaffAccount,
    room: Room,
    mtype: MeetingType,
    guest: Guest,
    start: datetime,
    free: Sequence[datetime],
    known: bool,
    now: datetime,
    new_id: Callable[[], str],
    *,
    horizon: timedelta = BOOKING_HORIZON,
) -> Meeting:
    """The meeting a patient books online at ``start``, one of the ``free``
    slot starts of ``mtype`` now, marked ``booked_online``. ``known``: whether
    the team already knows the guest's email (only read for a "known patients
    only" type): from a meeting the practice booked, not one booked online, so
    that booking one type online does not open the types kept for known
    patients.

    NotFound for a page or type that is not offered, Invalid for the guest's
    details, SlotTaken for a time that is not free, KnownPatientsOnly for an
    unknown email on a type that requires a known one."""
    check_aware(now, field="now")
    check_aware(start, field="start")
    check_bookable_host(team, host, room)
    check_offered_type(team, mtype)
    checked = check_guest(guest)
    if start not in free:
        raise SlotTaken()
    if mtype.known_patients_only and not known:
        raise KnownPatientsOnly()
    meeting, _ = create_meeting(
        team, host, room, mtype, checked, "", start, mtype.duration, (), now, new_id,
        horizon=horizon,
    )  # fmt: skip
    return replace(meeting, booked_online=True)
