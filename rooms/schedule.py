"""Scheduling: meeting types, meetings, recurring series, and changes to them.

Every operation is a pure function of the current value(s) and ``now``; it
returns a new frozen Meeting and the MeetingChange it implies, which the shell
stores and appends to the team's log. Credentials are not touched here: the
docstrings say when the caller must revoke or issue one (rooms.tokens).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from rooms.accounts import StaffAccount, StaffRole, Team
from rooms.errors import Conflict, Forbidden, Invalid, NotFound, NotHost
from rooms.meeting import Frequency, Guest, Meeting, MeetingKind, MeetingType, Series
from rooms.presence import MeetingChange
from rooms.room import Room, RoomKind
from rooms.validate import check_aware, check_name, check_phone, check_text, normalise_email

#: A meeting lasts 5 minutes (a quick check-in) to 8 hours (a working day);
#: anything outside is a typo in the minutes field.
DURATION_MIN = timedelta(minutes=5)
DURATION_MAX = timedelta(minutes=480)
#: Proposed slots: "several" to choose from, and few enough to read on a phone.
MIN_PROPOSED_SLOTS = 2
MAX_PROPOSED_SLOTS = 10
#: How far ahead a meeting may be booked, moved or proposed, unless the caller
#: sets another bound: two years covers any follow-up a clinic plans, and a
#: start beyond it is a typo (a year 2205 for 2025), never a wish.
BOOKING_HORIZON = timedelta(days=731)
#: A series holds at most a year of weekly meetings; every occurrence is a
#: meeting with its own credential, so the bound also caps one request's writes.
SERIES_LIMIT = 52
LABEL_MAX = 100
DESCRIPTION_MAX = 2000
ADDRESS_MAX = 500
REVIEW_MAX = 2000
SUMMARY_MAX = 10000
#: ``cancelled_by`` when the guest cancels (staff cancellations record the staff id).
GUEST_CANCELLER = "guest"

_COLOUR_RE = re.compile(r"#[0-9a-f]{6}")
_STEP: dict[Frequency, timedelta] = {
    Frequency.DAILY: timedelta(days=1),
    Frequency.WEEKLY: timedelta(weeks=1),
    Frequency.FORTNIGHTLY: timedelta(weeks=2),
}

MeetingResult = tuple[Meeting, MeetingChange]


def make_meeting_type(
    *,
    id: str,
    team_id: str,
    label: str,
    duration: timedelta,
    colour: str = "#3b82f6",
    online_bookable: bool = False,
    known_patients_only: bool = False,
    kinds: Iterable[MeetingKind] = (MeetingKind.VIDEO,),
    address: str = "",
    instructions: str = "",
    description: str = "",
) -> MeetingType:
    """A validated MeetingType: label 1..100 characters, duration of whole
    minutes in 5..480, colour ``#rrggbb`` (stored lower-case), at least one kind."""
    colour_value = colour.strip().lower()
    if not _COLOUR_RE.fullmatch(colour_value):
        raise Invalid("colour must look like #1a2b3c")
    kind_set = frozenset(kinds)
    if not kind_set:
        raise Invalid("a meeting type needs at least one kind")
    return MeetingType(
        id=id,
        team_id=team_id,
        label=check_text(label, field="label", max_length=LABEL_MAX, min_length=1),
        duration=check_duration(duration),
        colour=colour_value,
        online_bookable=online_bookable,
        known_patients_only=known_patients_only,
        kinds=kind_set,
        address=check_text(address, field="address", max_length=ADDRESS_MAX, multiline=True),
        instructions=_long_text(instructions, "instructions"),
        description=_long_text(description, "description"),
    )


#: the fields of a meeting type that staff edit (id and team never change)
EDITABLE_TYPE_FIELDS = frozenset(
    {
        "label",
        "duration",
        "colour",
        "online_bookable",
        "known_patients_only",
        "kinds",
        "address",
        "instructions",
        "description",
        "retired",
    }
)


def edit_meeting_type(mtype: MeetingType, **changes: Any) -> MeetingType:
    """``mtype`` with ``changes`` (names from EDITABLE_TYPE_FIELDS) applied and
    every field checked again as make_meeting_type does.

    Meetings already booked keep their own duration; the type's address and
    instructions, read when a message is sent or a guest enters, are the
    current ones. ``retired=True`` takes the type off every offer (new
    meetings, booking pages) and keeps it for the meetings that use it;
    ``retired=False`` offers it again."""
    unknown = set(changes) - EDITABLE_TYPE_FIELDS
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    values: dict[str, Any] = {name: getattr(mtype, name) for name in EDITABLE_TYPE_FIELDS}
    values.update(changes)
    retired = bool(values.pop("retired"))
    edited = make_meeting_type(id=mtype.id, team_id=mtype.team_id, **values)
    return replace(edited, retired=retired)


def check_duration(duration: timedelta) -> timedelta:
    """Raise Invalid unless ``duration`` is whole minutes within DURATION_MIN..MAX."""
    if duration % timedelta(minutes=1):
        raise Invalid("duration must be whole minutes")
    if not DURATION_MIN <= duration <= DURATION_MAX:
        raise Invalid("duration must be between 5 and 480 minutes")
    return duration


def check_guest(guest: Guest) -> Guest:
    """The guest with name, email (required) and phone (optional) checked and normalised."""
    return Guest(
        name=check_name(guest.name, field="guest name"),
        email=normalise_email(guest.email, field="guest email"),
        phone=check_phone(guest.phone, field="guest phone"),
    )


def create_meeting(
    team: Team,
    host: StaffAccount,
    room: Room,
    meeting_type: MeetingType | None,
    guest: Guest,
    description: str,
    start: datetime | None,
    duration: timedelta | None,
    proposed_slots: Sequence[datetime],
    now: datetime,
    new_id: Callable[[], str],
    *,
    series_id: str | None = None,
    horizon: timedelta = BOOKING_HORIZON,
) -> MeetingResult:
    """A new meeting: either at ``start`` (not in the past, nor further than
    ``horizon`` ahead) or, with no start, in planning with ``proposed_slots``
    (2..10 distinct future times within the horizon) for the guest to choose
    from. ``duration`` defaults to the meeting type's.

    The host must be a member of ``team``; ``room`` and ``meeting_type`` must
    be the team's (NotFound otherwise: other teams' things are invisible) and
    the type not retired (Invalid); a
    user room only ever hosts its owner's meetings (NotHost). The caller
    issues the credential (rooms.tokens.issue_credential) once a start is set.
    """
    check_aware(now, field="now")
    _check_host(team, host)
    _check_room(team, host, room)
    if meeting_type is not None and meeting_type.team_id != team.id:
        raise NotFound("no such meeting type in this team")
    if meeting_type is not None and meeting_type.retired:
        raise Invalid("this meeting type is retired: choose another")
    if duration is None:
        if meeting_type is None:
            raise Invalid("a duration or a meeting type is required")
        duration = meeting_type.duration
    slots: tuple[datetime, ...] = ()
    if (start is None) == (not proposed_slots):
        raise Invalid("give either a start or proposed slots, not both")
    if start is not None:
        _check_bookable(start, now, "start", horizon)
    else:
        slots = _check_slots(proposed_slots, now, horizon)
    meeting = Meeting(
        id=new_id(),
        team_id=team.id,
        host_id=host.id,
        room_id=room.id,
        type_id=None if meeting_type is None else meeting_type.id,
        guest=check_guest(guest),
        duration=check_duration(duration),
        created_at=now,
        start=start,
        proposed_slots=slots,
        description=_long_text(description, "description"),
        series_id=series_id,
    )
    return meeting, MeetingChange.CREATED


def choose_slot(meeting: Meeting, slot: datetime, now: datetime) -> MeetingResult:
    """The guest's choice among the proposed slots: planning -> scheduled.

    The chosen slot becomes the start and the proposals are dropped. The
    caller then issues the meeting's credential."""
    check_aware(now, field="now")
    _check_not_cancelled(meeting)
    if meeting.start is not None:
        raise Conflict("a slot has already been chosen")
    if slot not in meeting.proposed_slots:
        raise Invalid("that slot was not proposed")
    if slot <= now:
        raise Invalid("that slot has passed")
    return replace(meeting, start=slot, proposed_slots=()), MeetingChange.SLOT_CHOSEN


def expand_series(
    start: datetime,
    frequency: Frequency,
    until: datetime | None,
    count: int | None,
    limit: int = SERIES_LIMIT,
) -> list[datetime]:
    """The starts of a recurring series: ``start`` and every step after it,
    either ``count`` of them or all up to and including ``until`` (exactly one
    of the two). More than ``limit`` occurrences is Invalid, never truncated.

    Steps keep the wall-clock time in ``start``'s zone. Monthly keeps the day
    of the month, clamped to the month's last day (31 Jan -> 29 Feb -> 31 Mar).
    """
    check_aware(start, field="start")
    if (until is None) == (count is None):
        raise Invalid("give either an end date or a number of occurrences")
    if count is not None and (isinstance(count, bool) or not 1 <= count <= limit):
        raise Invalid(f"a series has 1 to {limit} occurrences")
    if until is not None:
        check_aware(until, field="until")
        if until < start:
            raise Invalid("the series ends before it starts")
    starts: list[datetime] = []
    index = 0
    while True:
        occurrence = _nth(start, frequency, index)
        if until is not None and occurrence > until:
            return starts
        if len(starts) == limit:
            raise Invalid(f"a series has at most {limit} occurrences")
        starts.append(occurrence)
        index += 1
        if count is not None and index == count:
            return starts


def create_series(
    team: Team,
    host: StaffAccount,
    room: Room,
    meeting_type: MeetingType | None,
    guest: Guest,
    description: str,
    start: datetime,
    duration: timedelta | None,
    frequency: Frequency,
    until: datetime | None,
    count: int | None,
    now: datetime,
    new_id: Callable[[], str],
    *,
    horizon: timedelta = BOOKING_HORIZON,
) -> tuple[Series, list[Meeting]]:
    """A recurring series and its occurrences, each its own meeting (checked as
    create_meeting, so every occurrence lies within ``horizon``) sharing the
    series id. The caller issues one credential per occurrence and stores them
    all in one transaction."""
    starts = expand_series(start, frequency, until, count)
    series_id = new_id()
    meetings = [
        create_meeting(
            team, host, room, meeting_type, guest, description, occurrence, duration, (), now,
            new_id, series_id=series_id, horizon=horizon,
        )[0]
        for occurrence in starts
    ]  # fmt: skip
    series = Series(
        id=series_id,
        frequency=frequency,
        until=until,
        count=count,
        occurrence_ids=tuple(m.id for m in meetings),
    )
    return series, meetings


def reschedule(
    meeting: Meeting,
    new_start: datetime,
    now: datetime,
    *,
    duration: timedelta | None = None,
    horizon: timedelta = BOOKING_HORIZON,
) -> MeetingResult:
    """The meeting moved to ``new_start`` (not in the past, nor further than
    ``horizon`` ahead), optionally with a new duration; a meeting in planning
    gets a fixed time this way.

    Refused for a cancelled meeting or one that is already over. The caller
    then revokes the old credential and issues a new one in one step
    (Store.replace_credential): the old link must not open the moved meeting.
    """
    check_aware(now, field="now")
    _check_not_cancelled(meeting)
    _check_not_over(meeting, now)
    _check_bookable(new_start, now, "the new start", horizon)
    moved = replace(
        meeting,
        start=new_start,
        proposed_slots=(),
        duration=meeting.duration if duration is None else check_duration(duration),
    )
    return moved, MeetingChange.RESCHEDULED


def cancel(meeting: Meeting, by: str, now: datetime) -> MeetingResult:
    """The meeting cancelled by ``by`` (a staff id, or GUEST_CANCELLER).

    Only before it is over; cancelling twice is a Conflict. The caller revokes
    the credential (Store.replace_credential with no new one)."""
    check_aware(now, field="now")
    _check_not_cancelled(meeting)
    _check_not_over(meeting, now)
    if not by:
        raise Invalid("who cancels must be recorded")
    return replace(meeting, cancelled_at=now, cancelled_by=by), MeetingChange.CANCELLED


def reassign(
    meeting: Meeting,
    new_host: StaffAccount,
    room: Room,
    team: Team,
    *,
    new_host_room: Room | None = None,
) -> MeetingResult:
    """The meeting handed to ``new_host``, a member of ``team``.

    ``room`` is the meeting's current room. A shared room stays; a user room
    (the old host's) is swapped for ``new_host_room``, the new host's own,
    which is then required. When the room changes the caller must re-issue
    the credential: the guest key is bound to its room (rooms.tokens.digest_key).
    """
    _check_not_cancelled(meeting)
    if meeting.team_id != team.id or room.id != meeting.room_id:
        raise Invalid("the room given is not the meeting's room")
    _check_host(team, new_host)
    if new_host.id == meeting.host_id:
        raise Conflict("the meeting already has this host")
    room_id = meeting.room_id
    if room.kind is RoomKind.USER:
        if new_host_room is None:
            raise Invalid("the new host's own room is required")
        _check_room(team, new_host, new_host_room)
        if new_host_room.kind is not RoomKind.USER:
            raise Invalid("the meeting moves to the new host's own room")
        room_id = new_host_room.id
    return replace(meeting, host_id=new_host.id, room_id=room_id), MeetingChange.REASSIGNED


def leave_review(meeting: Meeting, rating: int, text: str, now: datetime) -> MeetingResult:
    """The guest's review: a rating of 1..5 and optional text, once, and only
    once the meeting has started."""
    check_aware(now, field="now")
    _check_not_cancelled(meeting)
    if meeting.start is None or now < meeting.start:
        raise Conflict("a meeting can be reviewed only once it has started")
    if meeting.review_rating is not None:
        raise Conflict("this meeting has already been reviewed")
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise Invalid("the rating must be a whole number from 1 to 5")
    review = check_text(text, field="review", max_length=REVIEW_MAX, multiline=True)
    return replace(meeting, review=review, review_rating=rating), MeetingChange.UPDATED


def write_summary(meeting: Meeting, by: str, text: str) -> MeetingResult:
    """The host's summary for the guest (replacing any earlier one); only the
    meeting's host writes it."""
    _check_not_cancelled(meeting)
    if by != meeting.host_id:
        raise NotHost("only the meeting's host writes its summary")
    summary = check_text(
        text, field="summary", max_length=SUMMARY_MAX, min_length=1, multiline=True
    )
    return replace(meeting, summary=summary), MeetingChange.UPDATED


# -- rules shared by the operations above -------------------------------------


def _check_host(team: Team, host: StaffAccount) -> None:
    if host.role is not StaffRole.MEMBER or host.team_id != team.id:
        raise Forbidden("the host must be a member of the team")
    if host.disabled:
        # a member who left hosts nothing new (rooms.team_admin)
        raise Invalid("this member is disabled")


def _check_room(team: Team, host: StaffAccount, room: Room) -> None:
    if room.team_id != team.id:
        raise NotFound("no such room in this team")
    if room.kind is RoomKind.USER and room.owner_id != host.id:
        raise NotHost("a user room hosts only its owner's meetings")


def _check_not_cancelled(meeting: Meeting) -> None:
    if meeting.cancelled:
        raise Conflict("the meeting is cancelled")


def _check_not_over(meeting: Meeting, now: datetime) -> None:
    end = meeting.end
    if end is not None and now >= end:
        raise Conflict("the meeting is over")


def _check_bookable(when: datetime, now: datetime, field: str, horizon: timedelta) -> None:
    """The one rule for a time a meeting may start at: not past, within the horizon."""
    check_aware(when, field=field)
    if when < now:
        raise Invalid(f"{field} is in the past")
    if when - now > horizon:
        raise Invalid(f"{field} is more than {horizon.days} days ahead")


def _check_slots(
    proposed: Sequence[datetime], now: datetime, horizon: timedelta
) -> tuple[datetime, ...]:
    for slot in proposed:
        _check_bookable(slot, now, "proposed slot", horizon)
    slots = tuple(sorted(set(proposed)))
    if len(slots) != len(proposed):
        raise Invalid("proposed slots must differ")
    if not MIN_PROPOSED_SLOTS <= len(slots) <= MAX_PROPOSED_SLOTS:
        raise Invalid(f"propose {MIN_PROPOSED_SLOTS} to {MAX_PROPOSED_SLOTS} slots")
    if slots[0] <= now:
        raise Invalid("proposed slots must be in the future")
    return slots


def _long_text(value: str, field: str) -> str:
    return check_text(value, field=field, max_length=DESCRIPTION_MAX, multiline=True)


def _nth(start: datetime, frequency: Frequency, index: int) -> datetime:
    # Computed from ``start`` every time, never from the previous occurrence,
    # so that a clamped month (31 -> 30) does not drag the later ones with it.
    try:
        if frequency is Frequency.MONTHLY:
            months = start.month - 1 + index
            year, month = start.year + months // 12, months % 12 + 1
            day = min(start.day, calendar.monthrange(year, month)[1])
            return start.replace(year=year, month=month, day=day)
        return start + _STEP[frequency] * index
    except (OverflowError, ValueError):
        raise Invalid("the series runs past the end of the calendar") from None
