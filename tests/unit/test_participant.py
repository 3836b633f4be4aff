"""The participant lifecycle table, rule by rule, and its refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rooms.errors import BadTransition
from rooms.participant import (
    TRANSITIONS,
    ParticipantEvent,
    ParticipantState,
    allowed_events,
    transition,
)
from rooms.presence import Role

S = ParticipantState
E = ParticipantEvent


@pytest.mark.parametrize(
    ("state", "event", "target"),
    [
        (S.INVITED, E.ENTER, S.ENTERED),
        (S.ENTERED, E.CHECK_OK, S.CHECKED),
        (S.ENTERED, E.CHECK_FAILED, S.CHECK_FAILED),
        # a failed check may be retried, and a passed one re-run
        (S.CHECK_FAILED, E.CHECK_OK, S.CHECKED),
        (S.CHECK_FAILED, E.CHECK_FAILED, S.CHECK_FAILED),
        (S.CHECKED, E.CHECK_FAILED, S.CHECK_FAILED),
        # the check is optional: a guest may wait straight from entered
        (S.ENTERED, E.WAIT, S.WAITING),
        (S.CHECKED, E.WAIT, S.WAITING),
        (S.CHECK_FAILED, E.WAIT, S.WAITING),
        # a check run while waiting is recorded; the guest keeps waiting
        (S.WAITING, E.CHECK_OK, S.WAITING),
        (S.WAITING, E.CHECK_FAILED, S.WAITING),
        (S.WAITING, E.ADMIT, S.IN_CALL),
        (S.WAITING, E.DENY, S.DENIED),
        (S.ENTERED, E.JOIN_AS_STAFF, S.IN_CALL),
        (S.CHECKED, E.JOIN_AS_STAFF, S.IN_CALL),
        (S.IN_CALL, E.PUT_BACK, S.WAITING),
        (S.IN_CALL, E.MOVE, S.WAITING),
        (S.WAITING, E.MOVE, S.WAITING),
        (S.IN_CALL, E.LEAVE, S.LEFT),
        (S.IN_CALL, E.TIMEOUT, S.LEFT),
        (S.WAITING, E.LEAVE, S.LEFT),
        (S.ENTERED, E.TIMEOUT, S.LEFT),
        (S.DENIED, E.LEAVE, S.LEFT),
        (S.DENIED, E.TIMEOUT, S.LEFT),
        (S.LEFT, E.REJOIN, S.ENTERED),
    ],
)
def test_allowed_moves(state: S, event: E, target: S) -> None:
    assert transition(state, event) is target


@pytest.mark.parametrize(
    ("state", "event"),
    [
        # guests never skip the queue
        (S.ENTERED, E.ADMIT),
        (S.CHECKED, E.ADMIT),
        (S.INVITED, E.WAIT),
        (S.INVITED, E.LEAVE),
        (S.LEFT, E.LEAVE),
        (S.LEFT, E.ADMIT),
        (S.IN_CALL, E.ADMIT),
        (S.IN_CALL, E.DENY),
        (S.WAITING, E.PUT_BACK),
        (S.IN_CALL, E.CHECK_OK),
        (S.ENTERED, E.REJOIN),
    ],
)
def test_refused_moves_name_the_state(state: S, event: E) -> None:
    with pytest.raises(BadTransition) as caught:
        transition(state, event)
    assert caught.value.state == state.value
    assert caught.value.event == event.value
    assert state.value in caught.value.message


def test_denied_is_terminal_except_leaving() -> None:
    assert allowed_events(S.DENIED) == {E.LEAVE, E.TIMEOUT}


def test_everyone_who_entered_may_leave_or_time_out() -> None:
    for state in S:
        if state in (S.INVITED, S.LEFT):
            continue
        assert transition(state, E.LEAVE) is S.LEFT
        assert transition(state, E.TIMEOUT) is S.LEFT


def test_a_guest_may_not_join_as_staff() -> None:
    with pytest.raises(BadTransition) as caught:
        transition(S.ENTERED, E.JOIN_AS_STAFF, role=Role.GUEST)
    assert caught.value.state == "entered"
    assert transition(S.ENTERED, E.JOIN_AS_STAFF, role=Role.HOST) is S.IN_CALL
    assert transition(S.ENTERED, E.JOIN_AS_STAFF, role=Role.MEMBER) is S.IN_CALL


def test_the_only_way_into_the_call_is_admit_or_staff_join() -> None:
    into_call = {(s, e) for (s, e), t in TRANSITIONS.items() if t is S.IN_CALL}
    assert {e for _, e in into_call} == {E.ADMIT, E.JOIN_AS_STAFF}
    assert {s for s, e in into_call if e is E.ADMIT} == {S.WAITING}


@given(st.sampled_from(list(S)), st.sampled_from(list(E)))
def test_every_pair_outside_the_table_raises_naming_the_state(state: S, event: E) -> None:
    if (state, event) in TRANSITIONS:
        assert transition(state, event) is TRANSITIONS[state, event]
        return
    with pytest.raises(BadTransition) as caught:
        transition(state, event)
    assert caught.value.state == state.value
    assert caught.value.machine == "participant"


@given(st.lists(st.sampled_from(list(E)), max_size=30))
def test_random_event_walks_stay_inside_the_table(events: list[E]) -> None:
    state = S.INVITED
    for event in events:
        try:
            new = transition(state, event)
        except BadTransition as error:
            assert (state, event) not in TRANSITIONS
            assert error.state == state.value
            continue
        assert TRANSITIONS[state, event] is new
        state = new
