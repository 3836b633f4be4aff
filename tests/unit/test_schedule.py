"""Unit tests of rooms.schedule: meeting types, meetings, series and changes."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rooms.accounts import Plan, StaffAccount, StaffRole, Team
from rooms.errors import Conflict, Forbidden, Invalid, NotFound, NotHost
from rooms.meeting import Frequency, Guest, Meeting, MeetingKind, MeetingType
from rooms.presence import MeetingChange
from rooms.room import Room, RoomKind
from rooms.schedule import (
    GUEST_CANCELLER,
    SERIES_LIMIT,
    cancel,
    choose_slot,
    create_meeting,
    create_series,
    expand_series,
    leave_review,
    make_meeting_type,
    reassign,
    reschedule,
    write_summary,
)

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
START = NOW + timedelta(days=1)
MINUTE = timedelta(minutes=1)
TICK = timedelta(microseconds=1)

TEAM = Team(
    id="t1",
    org_id="o1",
    name="Harbour Clinic",
    reference="",
    plan=Plan.CLINIC,
    email="desk@harbour.example",
    phone="",
    created_at=NOW,
)
JANE = StaffAccount(
    id="s1", org_id="o1", team_id="t1", role=StaffRole.MEMBER, email="j@h.example",
    name="Jane", password_hash="x",
)  # fmt: skip
OMAR = dataclasses.replace(JANE, id="s2", email="o@h.example", name="Omar")
OUTSIDER = dataclasses.replace(JANE, id="s9", team_id="t2")
MANAGER = dataclasses.replace(JANE, id="s8", team_id=None, role=StaffRole.MANAGER)
RECEPTION = Room(id="r1", team_id="t1", slug="hc-reception", name="Reception",
                 kind=RoomKind.RECEPTION)  # fmt: skip
JANES_ROOM = Room(id="r2", team_id="t1", slug="jane", name="Jane", kind=RoomKind.USER,
                  owner_id="s1")  # fmt: skip
OMARS_ROOM = Room(id="r3", team_id="t1", slug="omar", name="Omar", kind=RoomKind.USER,
                  owner_id="s2")  # fmt: skip
OTHER_TEAMS_ROOM = dataclasses.replace(RECEPTION, id="r9", team_id="t2", slug="x-reception")
CONSULT = MeetingType(id="mt1", team_id="t1", label="Consultation", duration=45 * MINUTE)
GUEST = Guest(name=" Pat Guest ", email=" Pat@Example.ORG ", phone="")


def ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"id{next(counter)}"


def book(
    *,
    host: StaffAccount = JANE,
    room: Room = RECEPTION,
    meeting_type: MeetingType | None = CONSULT,
    guest: Guest = GUEST,
    start: datetime | None = START,
    duration: timedelta | None = None,
    slots: Sequence[datetime] = (),
    now: datetime = NOW,
) -> Meeting:
    meeting, change = create_meeting(
        TEAM, host, room, meeting_type, guest, "first visit", start, duration, slots, now, ids()
    )
    assert change is MeetingChange.CREATED
    return meeting


# -- meeting types ----------------------------------------------------------------


def make_type(**changes: object) -> MeetingType:
    fields: dict[str, object] = {"id": "mt", "team_id": "t1", "label": "Consultation"}
    fields["duration"] = 30 * MINUTE
    fields.update(changes)
    return make_meeting_type(**fields)  # type: ignore[arg-type]


def test_make_meeting_type_normalises() -> None:
    made = make_type(label="  Follow-up ", colour=" #A1B2C3", kinds=[MeetingKind.PHONE])
    assert (made.label, made.colour, made.kinds) == (
        "Follow-up",
        "#a1b2c3",
        frozenset({MeetingKind.PHONE}),
    )
    assert make_type().kinds == {MeetingKind.VIDEO}


@pytest.mark.parametrize("minutes", [5, 480])
def test_meeting_type_duration_bounds_accepted(minutes: int) -> None:
    assert make_type(duration=minutes * MINUTE).duration == minutes * MINUTE


@pytest.mark.parametrize(
    "changes",
    [
        {"label": "  "},
        {"label": "x" * 101},
        {"duration": 4 * MINUTE},
        {"duration": 481 * MINUTE},
        {"duration": 30 * MINUTE + timedelta(seconds=30)},
        {"colour": "red"},
        {"colour": "#abc"},
        {"colour": "#abcdeg"},
        {"colour": "#abcdef0"},
        {"kinds": []},
    ],
)
def test_make_meeting_type_refuses(changes: dict[str, object]) -> None:
    with pytest.raises(Invalid):
        make_type(**changes)


def test_label_of_exactly_100_characters() -> None:
    assert make_type(label="x" * 100).label == "x" * 100


# -- creating meetings ----------------------------------------------------------


def test_create_meeting_at_a_start() -> None:
    meeting = book()
    assert (meeting.team_id, meeting.host_id, meeting.room_id, meeting.type_id) == (
        "t1",
        "s1",
        "r1",
        "mt1",
    )
    assert meeting.duration == 45 * MINUTE  # the type's
    assert meeting.guest == Guest(name="Pat Guest", email="pat@example.org")
    assert (meeting.start, meeting.proposed_slots, meeting.created_at) == (START, (), NOW)
    assert book(duration=20 * MINUTE).duration == 20 * MINUTE


def test_start_may_be_now_but_not_before() -> None:
    assert book(start=NOW).start == NOW
    with pytest.raises(Invalid, match="past"):
        book(start=NOW - TICK)


def test_create_meeting_with_proposed_slots() -> None:
    later, sooner = START + timedelta(hours=2), START
    meeting = book(start=None, slots=[later, sooner])
    assert meeting.start is None
    assert meeting.proposed_slots == (sooner, later)


@pytest.mark.parametrize(
    "slots",
    [
        [START],
        [START, START],
        [START + n * timedelta(hours=1) for n in range(11)],
        [NOW, START],
        [NOW - MINUTE, START],
    ],
)
def test_proposed_slots_refused(slots: list[datetime]) -> None:
    with pytest.raises(Invalid):
        book(start=None, slots=slots)


def test_exactly_one_of_start_or_slots() -> None:
    with pytest.raises(Invalid, match="either"):
        book(start=None)
    with pytest.raises(Invalid, match="either"):
        book(start=START, slots=[START, START + MINUTE])


def test_duration_needs_a_type_or_a_value() -> None:
    with pytest.raises(Invalid, match="duration"):
        book(meeting_type=None)
    assert book(meeting_type=None, duration=15 * MINUTE).type_id is None
    with pytest.raises(Invalid, match="duration"):
        book(duration=481 * MINUTE)


def test_who_and_where_a_meeting_may_be_booked() -> None:
    assert book(room=JANES_ROOM).room_id == "r2"
    with pytest.raises(NotHost):
        book(room=OMARS_ROOM)
    with pytest.raises(Forbidden, match="member of the team"):
        book(host=OUTSIDER)
    with pytest.raises(Forbidden, match="member of the team"):
        book(host=MANAGER)
    with pytest.raises(NotFound):
        book(room=OTHER_TEAMS_ROOM)
    with pytest.raises(NotFound):
        book(meeting_type=dataclasses.replace(CONSULT, team_id="t2"))


def test_guest_is_validated() -> None:
    with pytest.raises(Invalid, match="guest email"):
        book(guest=Guest(name="Pat", email="pat"))
    with pytest.raises(Invalid, match="guest name"):
        book(guest=Guest(name="", email="pat@example.org"))
    with pytest.raises(Invalid, match="guest phone"):
        book(guest=Guest(name="Pat", email="pat@example.org", phone="abc"))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(Invalid, match="time zone"):
        book(start=START.replace(tzinfo=None), now=NOW)


# -- choosing a slot ----------------------------------------------------------------


def test_choose_slot_moves_planning_to_scheduled() -> None:
    planning = book(start=None, slots=[START, START + timedelta(hours=3)])
    chosen, change = choose_slot(planning, START + timedelta(hours=3), NOW)
    assert change is MeetingChange.SLOT_CHOSEN
    assert (chosen.start, chosen.proposed_slots) == (START + timedelta(hours=3), ())
    with pytest.raises(Conflict, match="already"):
        choose_slot(chosen, START, NOW)


def test_choose_slot_refusals() -> None:
    planning = book(start=None, slots=[START, START + timedelta(hours=3)])
    with pytest.raises(Invalid, match="not proposed"):
        choose_slot(planning, START + MINUTE, NOW)
    with pytest.raises(Invalid, match="passed"):
        choose_slot(planning, START, START)
    cancelled, _ = cancel(planning, "s1", NOW)
    with pytest.raises(Conflict, match="cancelled"):
        choose_slot(cancelled, START, NOW)


# -- series -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frequency", "step"),
    [
        (Frequency.DAILY, timedelta(days=1)),
        (Frequency.WEEKLY, timedelta(days=7)),
        (Frequency.FORTNIGHTLY, timedelta(days=14)),
    ],
)
def test_fixed_step_series(frequency: Frequency, step: timedelta) -> None:
    assert expand_series(START, frequency, None, 3) == [START, START + step, START + 2 * step]


def test_monthly_keeps_the_day_clamped_to_the_month() -> None:
    jan31 = datetime(2024, 1, 31, 10, 0, tzinfo=UTC)
    starts = expand_series(jan31, Frequency.MONTHLY, None, 4)
    assert [s.date().isoformat() for s in starts] == [
        "2024-01-31",
        "2024-02-29",
        "2024-03-31",
        "2024-04-30",
    ]
    dec15 = datetime(2025, 12, 15, 10, 0, tzinfo=UTC)
    assert expand_series(dec15, Frequency.MONTHLY, None, 2)[1] == dec15.replace(year=2026, month=1)


def test_until_is_inclusive() -> None:
    until = START + timedelta(days=14)
    assert expand_series(START, Frequency.WEEKLY, until, None)[-1] == until
    assert len(expand_series(START, Frequency.WEEKLY, until - TICK, None)) == 2
    assert expand_series(START, Frequency.DAILY, START, None) == [START]


def test_series_bounds() -> None:
    assert len(expand_series(START, Frequency.WEEKLY, None, SERIES_LIMIT)) == SERIES_LIMIT
    for until, count in ((None, 0), (None, SERIES_LIMIT + 1), (None, None), (START, 2)):
        with pytest.raises(Invalid):
            expand_series(START, Frequency.WEEKLY, until, count)
    with pytest.raises(Invalid, match="ends before"):
        expand_series(START, Frequency.WEEKLY, START - TICK, None)
    # an end date that would need more than the limit is refused, not truncated
    with pytest.raises(Invalid, match="at most 52"):
        expand_series(START, Frequency.DAILY, START + timedelta(days=52), None)
    assert len(expand_series(START, Frequency.DAILY, START + timedelta(days=51), None)) == 52


def test_series_past_the_calendar_is_invalid() -> None:
    with pytest.raises(Invalid, match="calendar"):
        expand_series(datetime(9999, 11, 1, tzinfo=UTC), Frequency.MONTHLY, None, 3)


def test_series_keeps_wall_clock_time_across_daylight_saving() -> None:
    try:
        london = ZoneInfo("Europe/London")
    except ZoneInfoNotFoundError:  # pragma: no cover - no tz database installed
        pytest.skip("no time zone database")
    before_dst = datetime(2025, 3, 24, 9, 0, tzinfo=london)
    after = expand_series(before_dst, Frequency.WEEKLY, None, 2)[1]
    assert (after.hour, after.minute) == (9, 0)
    assert after.utcoffset() == timedelta(hours=1)


times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(
    start=times,
    frequency=st.sampled_from(Frequency),
    count=st.integers(min_value=1, max_value=SERIES_LIMIT),
)
def test_series_by_count_property(start: datetime, frequency: Frequency, count: int) -> None:
    starts = expand_series(start, frequency, None, count)
    assert len(starts) == count
    assert starts[0] == start
    assert all(a < b for a, b in itertools.pairwise(starts))


@given(start=times, frequency=st.sampled_from(Frequency), span=st.integers(0, 400))
def test_series_by_until_property(start: datetime, frequency: Frequency, span: int) -> None:
    until = start + timedelta(days=span)
    try:
        starts = expand_series(start, frequency, until, None)
    except Invalid as error:
        assert "at most" in error.message
        return
    assert starts[0] == start
    assert all(s <= until for s in starts)
    assert all(a < b for a, b in itertools.pairwise(starts))
    # nothing left out: the next step would be past the end
    following = expand_series(start, frequency, None, len(starts) + 1, limit=53)[-1]
    assert following > until


def test_create_series_makes_one_meeting_per_occurrence() -> None:
    series, meetings = create_series(
        TEAM, JANE, JANES_ROOM, CONSULT, GUEST, "physio", START, None, Frequency.WEEKLY, None, 3,
        NOW, ids(),
    )  # fmt: skip
    assert [m.start for m in meetings] == [START + n * timedelta(weeks=1) for n in range(3)]
    assert {m.series_id for m in meetings} == {series.id}
    assert series.occurrence_ids == tuple(m.id for m in meetings)
    assert len({series.id, *series.occurrence_ids}) == 4
    assert (series.frequency, series.count, series.until) == (Frequency.WEEKLY, 3, None)
    with pytest.raises(NotHost):
        create_series(
            TEAM, JANE, OMARS_ROOM, CONSULT, GUEST, "", START, None, Frequency.DAILY, None, 2,
            NOW, ids(),
        )  # fmt: skip


# -- reschedule and cancel ----------------------------------------------------------


def test_reschedule() -> None:
    meeting = book()
    moved, change = reschedule(meeting, START + timedelta(days=2), NOW)
    assert change is MeetingChange.RESCHEDULED
    assert (moved.id, moved.start, moved.duration) == (
        meeting.id,
        START + timedelta(days=2),
        45 * MINUTE,
    )
    longer, _ = reschedule(meeting, START, NOW, duration=60 * MINUTE)
    assert longer.duration == 60 * MINUTE
    assert reschedule(meeting, NOW, NOW)[0].start == NOW


def test_reschedule_fixes_a_planning_meeting() -> None:
    planning = book(start=None, slots=[START, START + MINUTE * 60])
    fixed, _ = reschedule(planning, START + MINUTE * 30, NOW)
    assert (fixed.start, fixed.proposed_slots) == (START + MINUTE * 30, ())


def test_reschedule_refusals() -> None:
    meeting = book()
    with pytest.raises(Invalid, match="past"):
        reschedule(meeting, NOW - TICK, NOW)
    with pytest.raises(Conflict, match="over"):
        reschedule(meeting, START + timedelta(days=7), START + 45 * MINUTE)
    # in progress (started, not over) it may still be moved
    assert reschedule(meeting, START + timedelta(days=7), START + 45 * MINUTE - TICK)[0]
    cancelled, _ = cancel(meeting, "s1", NOW)
    with pytest.raises(Conflict, match="cancelled"):
        reschedule(cancelled, START, NOW)


def test_cancel_once_and_before_it_is_over() -> None:
    meeting = book()
    cancelled, change = cancel(meeting, GUEST_CANCELLER, NOW)
    assert change is MeetingChange.CANCELLED
    assert (cancelled.cancelled_at, cancelled.cancelled_by, cancelled.cancelled) == (
        NOW,
        "guest",
        True,
    )
    with pytest.raises(Conflict, match="cancelled"):
        cancel(cancelled, "s1", NOW)
    end = START + 45 * MINUTE
    assert cancel(meeting, "s1", end - TICK)[0].cancelled
    with pytest.raises(Conflict, match="over"):
        cancel(meeting, "s1", end)
    with pytest.raises(Invalid):
        cancel(meeting, "", NOW)
    assert cancel(book(start=None, slots=[START, START + MINUTE]), "s1", NOW)[0].cancelled


# -- reassign ----------------------------------------------------------------------


def test_reassign_in_a_shared_room_keeps_the_room() -> None:
    meeting = book()
    moved, change = reassign(meeting, OMAR, RECEPTION, TEAM)
    assert change is MeetingChange.REASSIGNED
    assert (moved.host_id, moved.room_id) == ("s2", "r1")


def test_reassign_from_a_user_room_moves_to_the_new_hosts_room() -> None:
    meeting = book(room=JANES_ROOM)
    moved, _ = reassign(meeting, OMAR, JANES_ROOM, TEAM, new_host_room=OMARS_ROOM)
    assert (moved.host_id, moved.room_id) == ("s2", "r3")
    with pytest.raises(Invalid, match="own room"):
        reassign(meeting, OMAR, JANES_ROOM, TEAM)
    with pytest.raises(NotHost):
        reassign(meeting, OMAR, JANES_ROOM, TEAM, new_host_room=JANES_ROOM)
    with pytest.raises(Invalid, match="own room"):
        reassign(meeting, OMAR, JANES_ROOM, TEAM, new_host_room=RECEPTION)


def test_reassign_refusals() -> None:
    meeting = book()
    with pytest.raises(Forbidden):
        reassign(meeting, OUTSIDER, RECEPTION, TEAM)
    with pytest.raises(Conflict, match="already"):
        reassign(meeting, JANE, RECEPTION, TEAM)
    with pytest.raises(Invalid, match="meeting's room"):
        reassign(meeting, OMAR, JANES_ROOM, TEAM)
    cancelled, _ = cancel(meeting, "s1", NOW)
    with pytest.raises(Conflict, match="cancelled"):
        reassign(cancelled, OMAR, RECEPTION, TEAM)


# -- review and summary -------------------------------------------------------------


def test_review_only_once_the_meeting_started() -> None:
    meeting = book()
    with pytest.raises(Conflict, match="started"):
        leave_review(meeting, 5, "great", START - TICK)
    reviewed, change = leave_review(meeting, 5, " great ", START)
    assert change is MeetingChange.UPDATED
    assert (reviewed.review_rating, reviewed.review) == (5, "great")
    with pytest.raises(Conflict, match="already"):
        leave_review(reviewed, 4, "", START)
    with pytest.raises(Conflict, match="started"):
        leave_review(book(start=None, slots=[START, START + MINUTE]), 5, "", START)


@pytest.mark.parametrize("rating", [1, 5])
def test_rating_bounds_accepted(rating: int) -> None:
    assert leave_review(book(), rating, "", START)[0].review_rating == rating


@pytest.mark.parametrize("rating", [0, 6, -1, True])
def test_rating_bounds_refused(rating: int) -> None:
    with pytest.raises(Invalid, match="rating"):
        leave_review(book(), rating, "", START)


def test_summary_by_the_host_only() -> None:
    meeting = book()
    summarised, change = write_summary(meeting, "s1", "Exercises twice a day.\nSee you soon.")
    assert change is MeetingChange.UPDATED
    assert summarised.summary == "Exercises twice a day.\nSee you soon."
    assert write_summary(summarised, "s1", "Revised.")[0].summary == "Revised."
    with pytest.raises(NotHost):
        write_summary(meeting, "s2", "not mine")
    with pytest.raises(Invalid):
        write_summary(meeting, "s1", "  ")
    cancelled, _ = cancel(meeting, "s1", NOW)
    with pytest.raises(Conflict):
        write_summary(cancelled, "s1", "text")
