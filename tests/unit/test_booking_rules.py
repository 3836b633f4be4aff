"""Unit tests of rooms.hours (working hours, free slots), rooms.booking (what a
patient may book online) and meeting-type edits (rooms.schedule)."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from rooms.accounts import Plan, StaffAccount, StaffRole, Team
from rooms.booking import book_online, check_bookable_host, offered_types
from rooms.errors import Invalid, KnownPatientsOnly, NotFound, SlotTaken
from rooms.hours import DayRange, WorkingHours, free_slots, make_working_hours
from rooms.meeting import Guest, MeetingKind
from rooms.room import Room, RoomKind
from rooms.schedule import create_meeting, edit_meeting_type, make_meeting_type

BERLIN = ZoneInfo("Europe/Berlin")
#: Monday 2030-03-25, 06:00 UTC (07:00 in Berlin; summer time starts on the 31st)
NOW = datetime(2030, 3, 25, 6, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)

TEAM = Team("t1", "o1", "Harbour", "H1", Plan.CLINIC, "desk@h.example", "", NOW)
HOST = StaffAccount("s1", "o1", "t1", StaffRole.MEMBER, "a@h.example", "Dr Ada", "x")
ROOM = Room("r1", "t1", "dr-ada", "Dr Ada", RoomKind.USER, owner_id="s1")
TYPE = make_meeting_type(
    id="mt1", team_id="t1", label="Consultation", duration=timedelta(minutes=30),
    online_bookable=True, address="1 Quay St", instructions="Bring your notes",
)  # fmt: skip
GUEST = Guest("Pat Example", "Pat@Example.org", "")


_COUNTER = itertools.count(1)


def _new_id() -> str:
    return f"id{next(_COUNTER)}"


def hours(*ranges: tuple[int, int, int], days_off: tuple[str, ...] = ()) -> WorkingHours:
    return make_working_hours(
        staff_id="s1",
        team_id="t1",
        timezone="Europe/Berlin",
        ranges=[DayRange(*r) for r in ranges],
        days_off=days_off,
    )


def test_working_hours_are_checked_and_sorted() -> None:
    made = make_working_hours(
        staff_id="s1", team_id="t1", timezone=" Europe/Berlin ",
        ranges=[DayRange(2, 780, 1020), DayRange(0, 540, 720), DayRange(2, 480, 720)],
        days_off=["2030-12-24", "2030-12-24 "],
    )  # fmt: skip
    assert made.timezone == "Europe/Berlin"
    assert [(r.weekday, r.start) for r in made.ranges] == [(0, 540), (2, 480), (2, 780)]
    assert made.days_off == frozenset({"2030-12-24"})
    bad = [
        [DayRange(7, 0, 60)],
        [DayRange(0, 60, 60)],
        [DayRange(0, 0, 1445)],
        [DayRange(0, 3, 60)],
        [DayRange(1, 540, 720), DayRange(1, 700, 800)],
        [DayRange(3, n * 60, n * 60 + 30) for n in range(7)],
    ]
    for ranges in bad:
        with pytest.raises(Invalid):
            make_working_hours(staff_id="s", team_id="t", timezone="UTC", ranges=ranges)
    for zone in ("", "Europe/ Berlin", "x" * 65):
        with pytest.raises(Invalid):
            make_working_hours(staff_id="s", team_id="t", timezone=zone, ranges=[])
    with pytest.raises(Invalid):
        make_working_hours(
            staff_id="s", team_id="t", timezone="UTC", ranges=[], days_off=["24.12."]
        )


def test_free_slots_follow_local_wall_clock_and_skip_busy_and_days_off() -> None:
    # Monday and Tuesday 09:00-11:00 in Berlin; Tuesday the 26th is a day off
    wh = hours((0, 540, 660), (1, 540, 660), days_off=("2030-03-26",))
    # busy 09:15-09:45 local (winter time, UTC+1)
    busy = [(datetime(2030, 3, 25, 8, 15, tzinfo=UTC), datetime(2030, 3, 25, 8, 45, tzinfo=UTC))]
    until = NOW + timedelta(days=8, hours=12)
    half_hour = timedelta(minutes=30)
    slots = free_slots(wh, BERLIN, half_hour, busy, NOW, until)
    local = [s.astimezone(BERLIN).strftime("%d %H:%M") for s in slots]
    # 09:00 and 09:30 overlap the busy time; from the 31st Berlin is UTC+2
    assert local == [
        "25 10:00", "25 10:30",
        "01 09:00", "01 09:30", "01 10:00", "01 10:30",
        "02 09:00", "02 09:30", "02 10:00", "02 10:30",
    ]  # fmt: skip
    assert slots[2] == datetime(2030, 4, 1, 7, 0, tzinfo=UTC)
    # a slot that would run past its range is not offered: 45 minutes fit twice in 2 hours
    longer = free_slots(wh, BERLIN, timedelta(minutes=45), [], NOW, until)
    assert len(longer) == 3 * 2


def test_free_slots_start_after_now_and_across_the_summer_time_change() -> None:
    # Sunday 2030-03-31 summer time starts at 02:00 local: 01:00-04:00 has two hours
    wh = hours((6, 60, 240))
    now = datetime(2030, 3, 30, 12, 0, tzinfo=UTC)
    slots = free_slots(wh, BERLIN, HOUR, [], now, now + timedelta(days=2))
    assert [s.astimezone(BERLIN).hour for s in slots] == [1, 3]
    later = datetime(2030, 3, 31, 1, 0, tzinfo=UTC)  # 03:00 summer time: its slot has begun
    assert free_slots(wh, BERLIN, HOUR, [], later, later + HOUR * 5) == []


def test_only_online_bookable_types_that_are_not_retired_are_offered() -> None:
    hidden = dataclasses.replace(TYPE, id="mt2", online_bookable=False)
    retired = dataclasses.replace(TYPE, id="mt3", retired=True)
    assert offered_types([retired, hidden, TYPE]) == [TYPE]


def test_a_booking_page_exists_only_for_an_active_members_own_live_room() -> None:
    check_bookable_host(TEAM, HOST, ROOM)
    for team, host, room in (
        (TEAM, dataclasses.replace(HOST, disabled=True), ROOM),
        (TEAM, HOST, dataclasses.replace(ROOM, archived=True)),
        (TEAM, HOST, dataclasses.replace(ROOM, kind=RoomKind.RECEPTION, owner_id=None)),
        (dataclasses.replace(TEAM, disabled=True), HOST, ROOM),
        (TEAM, dataclasses.replace(HOST, id="s2"), ROOM),
    ):
        with pytest.raises(NotFound):
            check_bookable_host(team, host, room)


def test_book_online_checks_type_guest_slot_then_known_email_in_that_order() -> None:
    start = NOW + timedelta(days=1)
    meeting = book_online(TEAM, HOST, ROOM, TYPE, GUEST, start, [start], False, NOW, _new_id)
    assert (meeting.start, meeting.duration, meeting.type_id) == (start, TYPE.duration, "mt1")
    assert meeting.guest.email == "pat@example.org" and meeting.room_id == ROOM.id
    assert meeting.booked_online
    known_only = dataclasses.replace(TYPE, known_patients_only=True)
    with pytest.raises(KnownPatientsOnly):
        book_online(TEAM, HOST, ROOM, known_only, GUEST, start, [start], False, NOW, _new_id)
    assert book_online(TEAM, HOST, ROOM, known_only, GUEST, start, [start], True, NOW, _new_id)
    # a taken slot, or bad details, are answered before the email is judged
    with pytest.raises(SlotTaken):
        book_online(TEAM, HOST, ROOM, known_only, GUEST, start, [], False, NOW, _new_id)
    with pytest.raises(Invalid):
        book_online(
            TEAM, HOST, ROOM, known_only, Guest("", "x"), start, [start], False, NOW, _new_id
        )
    for mtype in (dataclasses.replace(TYPE, retired=True), dataclasses.replace(TYPE, team_id="t2")):
        with pytest.raises(NotFound):
            book_online(TEAM, HOST, ROOM, mtype, GUEST, start, [start], True, NOW, _new_id)


def test_editing_a_type_checks_every_field_again_and_retiring_keeps_it() -> None:
    edited = edit_meeting_type(
        TYPE, label=" Follow-up ", duration=timedelta(minutes=20), colour="#ABCDEF",
        kinds=[MeetingKind.PHONE], address="2 Quay St",
    )  # fmt: skip
    assert (edited.label, edited.colour, edited.kinds) == (
        "Follow-up", "#abcdef", frozenset({MeetingKind.PHONE})
    )  # fmt: skip
    assert edited.instructions == TYPE.instructions and edited.id == TYPE.id
    for change in ({"duration": timedelta(minutes=3)}, {"label": ""}, {"kinds": []}):
        with pytest.raises(Invalid):
            edit_meeting_type(TYPE, **change)
    with pytest.raises(ValueError, match="not editable"):
        edit_meeting_type(TYPE, team_id="t2")
    retired = edit_meeting_type(TYPE, retired=True)
    assert retired.retired and edit_meeting_type(retired, retired=False) == TYPE
    with pytest.raises(Invalid, match="retired"):
        create_meeting(TEAM, HOST, ROOM, retired, GUEST, "", NOW + HOUR, None, (), NOW, _new_id)
