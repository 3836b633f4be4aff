"""Meeting status and the guest indicator: each rule, then order-independence."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms.errors import BadTransition
from rooms.meeting import Guest, Meeting
from rooms.presence import PresenceEvent, PresenceKind, Role
from rooms.status import (
    STATUS_FOLLOWS,
    GuestIndicator,
    Mark,
    Marks,
    MeetingFacts,
    MeetingStatus,
    StatusDecision,
    check_status_change,
    facts_from,
    fold,
    guest_indicator,
    meeting_status,
    status_may_follow,
)

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
DURATION = timedelta(minutes=30)
END = START + DURATION
OVER = END + 2 * HOUR

MEETING = Meeting(
    id="meet-1",
    team_id="t1",
    host_id="m-h1",
    room_id="r1",
    type_id=None,
    guest=Guest("Pat", "pat@example.test"),
    duration=DURATION,
    created_at=START - 48 * HOUR,
    start=START,
)

ROLES = {"h1": Role.HOST, "h2": Role.HOST, "g1": Role.GUEST, "g2": Role.GUEST, "m1": Role.MEMBER}


def ev(kind: PresenceKind, pid: str, at: datetime, verdict: str | None = None) -> PresenceEvent:
    return PresenceEvent(
        kind=kind,
        team_id="t1",
        room_id="r1",
        participant_id=pid,
        role=ROLES[pid],
        at=at,
        meeting_id="meet-1",
        detail=MappingProxyType({} if verdict is None else {"verdict": verdict}),
    )


K = PresenceKind
T = START - 5 * MINUTE


def status_at(now: datetime, *events: PresenceEvent, meeting: Meeting = MEETING) -> StatusDecision:
    return meeting_status(meeting, facts_from(events), now)


BOTH_IN = (ev(K.ENTERED, "h1", T), ev(K.ENTERED, "g1", T), ev(K.WAITING, "g1", T + MINUTE))
MET = (
    *BOTH_IN,
    ev(K.IN_CALL, "h1", T),
    ev(K.ADMITTED, "g1", START),
    ev(K.IN_CALL, "g1", START),
)


# -- guest indicator ----------------------------------------------------------------


def test_indicator_not_entered_without_any_guest_event() -> None:
    assert guest_indicator(facts_from([])) is GuestIndicator.NOT_ENTERED
    assert guest_indicator(facts_from([ev(K.ENTERED, "h1", T)])) is GuestIndicator.NOT_ENTERED


def test_indicator_entered_until_a_check_completes() -> None:
    assert guest_indicator(facts_from([ev(K.ENTERED, "g1", T)])) is GuestIndicator.ENTERED


def test_indicator_follows_the_latest_check() -> None:
    failed = ev(K.CHECKED, "g1", T, "failed")
    passed = ev(K.CHECKED, "g1", T + MINUTE, "passed")
    assert guest_indicator(facts_from([failed])) is GuestIndicator.CHECK_FAILED
    assert guest_indicator(facts_from([failed, passed])) is GuestIndicator.CHECK_PASSED
    assert guest_indicator(facts_from([passed, failed])) is GuestIndicator.CHECK_PASSED
    # a verdict-less check did not pass
    assert guest_indicator(facts_from([ev(K.CHECKED, "g1", T)])) is GuestIndicator.CHECK_FAILED


def test_a_hosts_check_is_not_the_guests() -> None:
    facts = facts_from([ev(K.CHECKED, "h1", T, "passed")])
    assert guest_indicator(facts) is GuestIndicator.NOT_ENTERED


# -- status rules ----------------------------------------------------------------------


def test_scheduled_more_than_an_hour_ahead_until_exactly_start_minus_soon() -> None:
    assert status_at(START - 3 * HOUR) == StatusDecision(MeetingStatus.SCHEDULED, START - HOUR)


def test_starting_soon_from_start_minus_soon_until_over() -> None:
    assert status_at(START - HOUR) == StatusDecision(MeetingStatus.STARTING_SOON, OVER)
    assert status_at(END + HOUR) == StatusDecision(MeetingStatus.STARTING_SOON, OVER)


def test_soon_and_grace_are_parameters() -> None:
    decision = meeting_status(
        MEETING, MeetingFacts(), START - 20 * MINUTE, soon=15 * MINUTE, grace=MINUTE
    )
    assert decision == StatusDecision(MeetingStatus.SCHEDULED, START - 15 * MINUTE)
    late = meeting_status(MEETING, MeetingFacts(), END, soon=15 * MINUTE, grace=MINUTE)
    assert late == StatusDecision(MeetingStatus.STARTING_SOON, END + MINUTE)


def test_planning_while_no_start_is_chosen() -> None:
    planning = replace(MEETING, start=None, proposed_slots=(START, START + HOUR))
    assert status_at(START, *MET, meeting=planning) == StatusDecision(MeetingStatus.PLANNING)


def test_cancelled_wins_over_everything() -> None:
    cancelled = replace(MEETING, cancelled_at=START - HOUR, cancelled_by="guest")
    assert status_at(START, *MET, meeting=cancelled) == StatusDecision(MeetingStatus.CANCELLED)
    assert status_at(OVER + HOUR, meeting=cancelled).status is MeetingStatus.CANCELLED


def test_live_while_host_and_guest_are_both_in_the_call() -> None:
    assert status_at(START, *MET) == StatusDecision(MeetingStatus.LIVE)
    assert status_at(OVER + HOUR, *MET) == StatusDecision(MeetingStatus.LIVE)


def test_not_live_while_the_guest_still_waits() -> None:
    host_in = ev(K.IN_CALL, "h1", T)
    assert status_at(START, *BOTH_IN, host_in).status is MeetingStatus.STARTING_SOON


def test_a_guest_who_left_is_not_present() -> None:
    decision = status_at(START, *BOTH_IN, ev(K.LEFT, "g1", T + 2 * MINUTE))
    # both entered but never met, and not over: still starting soon
    assert decision == StatusDecision(MeetingStatus.STARTING_SOON, OVER)


def test_a_denied_guest_is_not_present() -> None:
    decision = status_at(START, *BOTH_IN, ev(K.DENIED, "g1", T + 2 * MINUTE))
    assert decision.status is MeetingStatus.STARTING_SOON


def test_a_guest_moved_out_of_the_call_is_not_in_it() -> None:
    decision = status_at(START + MINUTE, *MET, ev(K.MOVED, "g1", START + MINUTE))
    # they met, so the meeting took place; the guest now waits elsewhere
    assert decision.status is MeetingStatus.COMPLETED


def test_completed_once_they_met_and_one_left() -> None:
    decision = status_at(START + MINUTE, *MET, ev(K.LEFT, "h1", START + MINUTE))
    assert decision == StatusDecision(MeetingStatus.COMPLETED)


def test_completed_at_over_when_both_entered_but_never_met() -> None:
    apart = (
        ev(K.ENTERED, "h1", T),
        ev(K.LEFT, "h1", T + MINUTE),
        ev(K.ENTERED, "g1", START),
        ev(K.LEFT, "g1", START + MINUTE),
    )
    assert status_at(OVER - MINUTE, *apart) == StatusDecision(MeetingStatus.STARTING_SOON, OVER)
    assert status_at(OVER, *apart) == StatusDecision(MeetingStatus.COMPLETED)


def test_failed_when_both_peers_failed_and_never_connected() -> None:
    failures = (ev(K.CALL_FAILED, "h1", START), ev(K.CALL_FAILED, "g1", START))
    gone = ev(K.LEFT, "g1", START + MINUTE)
    assert status_at(START, *MET, *failures).status is MeetingStatus.LIVE
    assert status_at(START + MINUTE, *MET, *failures, gone) == StatusDecision(MeetingStatus.FAILED)


def test_not_failed_when_only_one_peer_failed_or_they_ever_connected() -> None:
    gone = ev(K.LEFT, "g1", START + MINUTE)
    one = status_at(START + MINUTE, *MET, ev(K.CALL_FAILED, "g1", START), gone)
    assert one.status is MeetingStatus.COMPLETED
    connected = status_at(
        START + MINUTE,
        *MET,
        ev(K.CALL_FAILED, "h1", START),
        ev(K.CALL_FAILED, "g1", START),
        ev(K.CALL_CONNECTED, "g1", START + MINUTE / 2),
        gone,
    )
    assert connected.status is MeetingStatus.COMPLETED


def test_member_failures_do_not_count() -> None:
    events = (*MET, ev(K.CALL_FAILED, "m1", START), ev(K.CALL_FAILED, "g1", START))
    assert status_at(OVER, *events, ev(K.LEFT, "g1", END)).status is MeetingStatus.COMPLETED


@pytest.mark.parametrize("who", ["h1", "g1"])
def test_missed_after_over_when_one_never_entered(who: str) -> None:
    only = (ev(K.ENTERED, who, T),)
    assert status_at(OVER - MINUTE, *only) == StatusDecision(MeetingStatus.STARTING_SOON, OVER)
    assert status_at(OVER, *only) == StatusDecision(MeetingStatus.MISSED)
    assert status_at(OVER) == StatusDecision(MeetingStatus.MISSED)


def test_member_events_change_no_fact() -> None:
    assert facts_from([ev(K.ENTERED, "m1", T), ev(K.CALL_CONNECTED, "m1", T)]) == MeetingFacts()


# -- facts ---------------------------------------------------------------------------


def test_facts_round_trip_through_json() -> None:
    facts = facts_from(
        [
            *MET,
            ev(K.CHECKED, "g1", T, "passed"),
            ev(K.CALL_FAILED, "h1", START),
            ev(K.LEFT, "h1", END),
        ]
    )
    data = json.loads(json.dumps(facts.to_dict()))
    assert MeetingFacts.from_dict(data) == facts
    assert MeetingFacts.from_dict(MeetingFacts().to_dict()) == MeetingFacts()
    assert facts.host_entered and facts.guest_entered and facts.guest_present
    assert not facts.host_present and facts.host_failed and not facts.guest_failed


def test_an_event_at_the_same_instant_orders_by_lifecycle() -> None:
    # entered and left in one instant: left
    facts = facts_from([ev(K.LEFT, "g1", T), ev(K.ENTERED, "g1", T)])
    assert not facts.guest_present and facts.guest_entered


# -- order independence ------------------------------------------------------------------

times = st.integers(min_value=-90, max_value=200).map(lambda m: START + m * MINUTE)


@st.composite
def events(draw: st.DrawFn) -> PresenceEvent:
    kind = draw(st.sampled_from(list(PresenceKind)))
    verdict = draw(st.sampled_from(["passed", "failed"])) if kind is K.CHECKED else None
    # few distinct instants, so that ties are common
    at = START + draw(st.integers(min_value=-3, max_value=3)) * 40 * MINUTE
    return ev(kind, draw(st.sampled_from(list(ROLES))), at, verdict)


@settings(max_examples=150, deadline=None)
@given(st.data(), st.lists(events(), max_size=14), times)
def test_status_and_indicator_do_not_depend_on_event_order(
    data: st.DataObject, log: list[PresenceEvent], now: datetime
) -> None:
    shuffled = data.draw(st.permutations(log))
    facts = facts_from(log)
    other = facts_from(shuffled)
    assert other == facts
    assert meeting_status(MEETING, other, now) == meeting_status(MEETING, facts, now)
    assert guest_indicator(other) is guest_indicator(facts)
    # folding an event twice (a replay) changes nothing
    assert facts_from(log, facts) == facts
    # folding a stored copy continues the same way
    if log:
        stored = MeetingFacts.from_dict(json.loads(json.dumps(facts_from(log[:-1]).to_dict())))
        assert fold(stored, log[-1]) == facts


@settings(max_examples=150, deadline=None)
@given(st.lists(events(), max_size=14), times)
def test_next_change_at_is_exactly_when_the_clock_changes_the_status(
    log: list[PresenceEvent], now: datetime
) -> None:
    facts = facts_from(log)
    decision = meeting_status(MEETING, facts, now)
    tiny = timedelta(microseconds=1)
    if decision.next_change_at is None:
        for later in (now + MINUTE, END, OVER, OVER + 30 * 24 * HOUR):
            if later >= now:
                assert meeting_status(MEETING, facts, later).status is decision.status
        return
    assert decision.next_change_at > now
    just_before = meeting_status(MEETING, facts, decision.next_change_at - tiny)
    assert just_before.status is decision.status
    assert meeting_status(MEETING, facts, decision.next_change_at).status is not decision.status


# -- the status lifecycle -------------------------------------------------------------


def test_status_change_check() -> None:
    check_status_change(MeetingStatus.SCHEDULED, MeetingStatus.STARTING_SOON)
    check_status_change(MeetingStatus.LIVE, MeetingStatus.LIVE)
    with pytest.raises(BadTransition) as caught:
        check_status_change(MeetingStatus.CANCELLED, MeetingStatus.LIVE)
    assert caught.value.state == "cancelled"
    assert not status_may_follow(MeetingStatus.COMPLETED, MeetingStatus.MISSED)
    assert set(STATUS_FOLLOWS) == set(MeetingStatus)


#: a meeting that is live, took place, or was cancelled is not rescheduled
RESCHEDULABLE = {
    MeetingStatus.PLANNING,
    MeetingStatus.SCHEDULED,
    MeetingStatus.STARTING_SOON,
    MeetingStatus.MISSED,
}


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[int, PresenceEvent | str]]:
    """Steps in time order: each a minute offset and an event, or "cancel"/"reschedule"."""
    steps = []
    minute = draw(st.integers(min_value=-200, max_value=0))
    for _ in range(draw(st.integers(min_value=0, max_value=16))):
        minute += draw(st.integers(min_value=0, max_value=90))
        what = draw(st.one_of(events(), st.sampled_from(["cancel", "reschedule", "tick"])))
        steps.append((minute, what))
    return steps


@settings(max_examples=150, deadline=None)
@given(histories(), st.booleans())
def test_every_status_change_is_in_the_lifecycle_table(
    steps: list[tuple[int, PresenceEvent | str]], planned: bool
) -> None:
    meeting = replace(MEETING, start=None, proposed_slots=(START,)) if planned else MEETING
    facts = MeetingFacts()
    now = START - 300 * MINUTE
    previous = meeting_status(meeting, facts, now).status
    for minute, what in steps:
        now = START + minute * MINUTE
        if what == "cancel":
            meeting = replace(meeting, cancelled_at=now)
        elif what == "reschedule" and previous in RESCHEDULABLE:
            # choosing a slot, or moving the meeting later
            start = now + 30 * MINUTE if meeting.start is None else meeting.start + 3 * HOUR
            meeting = replace(meeting, start=start)
        elif isinstance(what, PresenceEvent):
            if meeting.start is None and what.role is Role.GUEST:
                continue  # no guest link is valid before a slot is chosen
            facts = fold(facts, replace(what, at=now))
        current = meeting_status(meeting, facts, now).status
        assert status_may_follow(previous, current), (previous, current)
        previous = current


def test_marks_read_like_the_mapping_they_were_made_of() -> None:
    early = Mark(at=START, rank=1, role=Role.GUEST)
    late = Mark(at=START + MINUTE, rank=2, role=Role.HOST)
    marks = Marks.of({"g": early, "h": late})
    assert marks == {"g": early, "h": late}
    assert (marks["h"], marks.get("nobody"), len(marks), list(marks)) == (late, None, 2, ["g", "h"])
    replaced = marks.with_mark("g", late)
    assert replaced == {"g": late, "h": late}
    assert marks == {"g": early, "h": late}  # unchanged
    assert marks.with_mark("x", early) == {"g": early, "h": late, "x": early}
