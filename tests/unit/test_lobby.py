"""The lobby state machine: every rule on its own, then random command sequences."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms.errors import (
    BadTransition,
    Forbidden,
    Invalid,
    NoLongerWaiting,
    NotFound,
    NotHost,
    RoomFull,
    VestibuleError,
)
from rooms.lobby import (
    MAX_HOST_MESSAGE,
    Admit,
    AdmitAll,
    Admitted,
    Arrive,
    CallMember,
    Command,
    Decision,
    Denied,
    Deny,
    Joined,
    Leave,
    LobbyState,
    LobbyView,
    Move,
    Moved,
    ParticipantCame,
    ParticipantWent,
    Payload,
    Person,
    Pick,
    PutBack,
    Say,
    TakeIn,
    Waiting,
    WaitingEntry,
)
from rooms.lobby import apply as lobby_apply
from rooms.participant import ParticipantState
from rooms.presence import PresenceKind, Role
from rooms.room import Room, RoomKind

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

HOST = Person("h1", Role.HOST, "Dr Host", member_id="m-h1")
HOST2 = Person("h2", Role.HOST, "Dr Second", member_id="m-h2")
MEMBER = Person("m1", Role.MEMBER, "Nurse", member_id="m-m1")


def guest(n: int) -> Person:
    return Person(f"g{n}", Role.GUEST, f"Guest {n}", meeting_id=f"meet-{n}")


G1, G2, G3, G4 = (guest(n) for n in range(1, 5))


def make_room(*, show_position: bool = True, capacity: int = 8) -> Room:
    return Room(
        id="r1",
        team_id="t1",
        slug="reception",
        name="Reception",
        kind=RoomKind.RECEPTION,
        show_position=show_position,
        capacity=capacity,
    )


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def tick(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def run(state: LobbyState, *commands: Command) -> tuple[LobbyState, list[Decision]]:
    clock = Clock()
    decisions = []
    for command in commands:
        decision = lobby_apply(state, command, clock.tick())
        decisions.append(decision)
        state = decision.state
    return state, decisions


def lobby(*commands: Command, show_position: bool = True, capacity: int = 8) -> LobbyState:
    room = make_room(show_position=show_position, capacity=capacity)
    state, _ = run(LobbyState.empty(room), *commands)
    return state


def to(decision: Decision, pid: str) -> list[Payload]:
    return [n.payload for n in decision.notices if n.to == pid]


def kinds(decision: Decision) -> list[tuple[PresenceKind, str]]:
    return [(e.kind, e.participant_id) for e in decision.presence]


# -- arriving -------------------------------------------------------------------


def test_a_guest_waits_even_when_a_host_is_in() -> None:
    state = lobby(Arrive(HOST))
    decision = lobby_apply(state, Arrive(G1), T0)
    assert decision.state.waiting == ("g1",)
    assert decision.state.call == ("h1",)
    assert to(decision, "g1") == [Waiting(position=1, message=None, on_hold=False)]
    assert to(decision, "h1") == [LobbyView((WaitingEntry("g1", "Guest 1", "meet-1", T0),))]
    assert kinds(decision) == [(PresenceKind.WAITING, "g1")]
    event = decision.presence[0]
    assert (event.team_id, event.room_id, event.meeting_id, event.role, event.at) == (
        "t1",
        "r1",
        "meet-1",
        Role.GUEST,
        T0,
    )


def test_early_guests_are_not_let_in_when_the_host_arrives() -> None:
    state = lobby(Arrive(G1), Arrive(G2))
    decision = lobby_apply(state, Arrive(HOST), T0)
    assert decision.state.call == ("h1",)
    assert decision.state.waiting == ("g1", "g2")
    assert to(decision, "h1") == [
        Joined(()),
        LobbyView(
            (
                WaitingEntry("g1", "Guest 1", "meet-1", T0 + timedelta(seconds=1)),
                WaitingEntry("g2", "Guest 2", "meet-2", T0 + timedelta(seconds=2)),
            )
        ),
    ]
    assert to(decision, "g1") == [] and to(decision, "g2") == []
    assert kinds(decision) == [(PresenceKind.IN_CALL, "h1")]


def test_staff_go_straight_into_the_call_hosts_first() -> None:
    state, decisions = run(
        LobbyState.empty(make_room()), Arrive(MEMBER), Arrive(HOST), Arrive(HOST2)
    )
    assert state.call == ("h1", "h2", "m1")
    assert to(decisions[1], "h1") == [
        Joined((CallMember("m1", "Nurse", Role.MEMBER),)),
        LobbyView(()),
    ]
    assert to(decisions[1], "m1") == [ParticipantCame("h1", "Dr Host", Role.HOST)]
    # a member gets no view of the queue
    assert all(not isinstance(p, LobbyView) for p in to(decisions[0], "m1"))


def test_arriving_twice_is_a_bad_transition() -> None:
    state = lobby(Arrive(G1))
    with pytest.raises(BadTransition) as caught:
        lobby_apply(state, Arrive(G1), T0)
    assert caught.value.state == "waiting"


def test_staff_cannot_arrive_in_a_full_call() -> None:
    state = lobby(Arrive(HOST), capacity=1)
    with pytest.raises(RoomFull):
        lobby_apply(state, Arrive(HOST2), T0)


# -- admitting --------------------------------------------------------------------


def test_admit_brings_a_guest_into_the_call() -> None:
    state = lobby(Arrive(MEMBER), Arrive(HOST), Arrive(G1), Arrive(G2))
    decision = lobby_apply(state, Admit("h1", "g1"), T0)
    assert decision.state.call == ("h1", "m1", "g1")
    assert decision.state.waiting == ("g2",)
    assert to(decision, "g1") == [
        Admitted(),
        Joined((CallMember("h1", "Dr Host", Role.HOST), CallMember("m1", "Nurse", Role.MEMBER))),
    ]
    assert ParticipantCame("g1", "Guest 1", Role.GUEST) in to(decision, "m1")
    assert to(decision, "g2") == [Waiting(position=1, message=None, on_hold=False)]
    assert LobbyView((WaitingEntry("g2", "Guest 2", "meet-2", T0 + timedelta(seconds=4)),)) in to(
        decision, "h1"
    )
    assert kinds(decision) == [(PresenceKind.ADMITTED, "g1"), (PresenceKind.IN_CALL, "g1")]
    assert decision.presence[0].detail == {"by": "h1"}


@pytest.mark.parametrize("by", ["m1", "g2", "nobody"])
def test_only_a_host_in_the_room_may_admit(by: str) -> None:
    state = lobby(Arrive(HOST), Arrive(MEMBER), Arrive(G1), Arrive(G2))
    for command in (
        Admit(by, "g1"),
        AdmitAll(by),
        Deny(by, "g1"),
        PutBack(by, "g1"),
        Move(by, "g1", "elsewhere"),
        Say(by, "hello"),
    ):
        with pytest.raises(NotHost):
            lobby_apply(state, command, T0)


def test_admitting_someone_in_the_call_names_their_state() -> None:
    state = lobby(Arrive(HOST), Arrive(G1), Admit("h1", "g1"))
    with pytest.raises(BadTransition) as caught:
        lobby_apply(state, Admit("h1", "g1"), T0)
    assert caught.value.state == "in_call"


def test_admitting_a_stranger_is_not_found() -> None:
    with pytest.raises(NotFound):
        lobby_apply(lobby(Arrive(HOST)), Admit("h1", "g9"), T0)


def test_admitting_beyond_capacity_is_room_full() -> None:
    state = lobby(Arrive(HOST), Arrive(G1), Arrive(G2), Admit("h1", "g1"), capacity=2)
    with pytest.raises(RoomFull):
        lobby_apply(state, Admit("h1", "g2"), T0)


def test_admit_all_admits_in_queue_order_as_many_as_fit() -> None:
    state = lobby(Arrive(HOST), Arrive(G1), Arrive(G2), Arrive(G3), capacity=3)
    decision = lobby_apply(state, AdmitAll("h1"), T0)
    assert decision.state.call == ("h1", "g1", "g2")
    assert decision.state.waiting == ("g3",)
    # the second admitted guest is told about the first, and the first about the second
    assert to(decision, "g2")[1] == Joined(
        (CallMember("h1", "Dr Host", Role.HOST), CallMember("g1", "Guest 1", Role.GUEST))
    )
    assert ParticipantCame("g2", "Guest 2", Role.GUEST) in to(decision, "g1")
    assert to(decision, "g3") == [Waiting(position=1, message=None, on_hold=False)]
    with pytest.raises(RoomFull):
        lobby_apply(decision.state, AdmitAll("h1"), T0)


def test_admit_all_with_nobody_waiting_changes_nothing() -> None:
    state = lobby(Arrive(HOST))
    decision = lobby_apply(state, AdmitAll("h1"), T0)
    assert decision.state == state
    assert decision.notices == () and decision.presence == ()


# -- deny, put back, move, say ------------------------------------------------------


def test_deny_removes_the_guest_and_tells_only_them() -> None:
    state = lobby(Arrive(HOST), Arrive(G1), Arrive(G2))
    decision = lobby_apply(state, Deny("h1", "g1"), T0)
    assert "g1" not in decision.state.people
    assert decision.state.waiting == ("g2",)
    assert to(decision, "g1") == [Denied()]
    assert to(decision, "g2") == [Waiting(position=1, message=None, on_hold=False)]
    assert kinds(decision) == [(PresenceKind.DENIED, "g1")]


def test_deny_of_someone_in_the_call_names_their_state() -> None:
    state = lobby(Arrive(HOST), Arrive(G1), Admit("h1", "g1"))
    with pytest.raises(BadTransition) as caught:
        lobby_apply(state, Deny("h1", "g1"), T0)
    assert caught.value.state == "in_call"


def test_put_back_returns_the_guest_to_their_original_place_on_hold() -> None:
    state = lobby(Arrive(HOST), Arrive(G1), Arrive(G2), Admit("h1", "g1"), Arrive(G3))
    decision = lobby_apply(state, PutBack("h1", "g1"), T0)
    assert decision.state.call == ("h1",)
    assert decision.state.waiting == ("g1", "g2", "g3")
    assert to(decision, "g1") == [Waiting(position=1, message=None, on_hold=True)]
    assert to(decision, "g2") == [Waiting(position=2, message=None, on_hold=False)]
    assert to(decision, "h1")[0] == ParticipantWent("g1")
    assert kinds(decision) == [(PresenceKind.PUT_BACK, "g1")]


def test_hosts_and_members_cannot_be_put_back_or_moved() -> None:
    state = lobby(Arrive(HOST), Arrive(HOST2), Arrive(MEMBER))
    for pid in ("h2", "m1"):
        with pytest.raises(Forbidden):
            lobby_apply(state, PutBack("h1", pid), T0)
        with pytest.raises(Forbidden):
            lobby_apply(state, Move("h1", pid, "elsewhere"), T0)


def test_put_back_of_a_waiting_guest_names_their_state() -> None:
    state = lobby(Arrive(HOST), Arrive(G1))
    with pytest.raises(BadTransition) as caught:
        lobby_apply(state, PutBack("h1", "g1"), T0)
    assert caught.value.state == "waiting"


@pytest.mark.parametrize("admitted", [False, True])
def test_move_takes_the_guest_out_and_says_where(admitted: bool) -> None:
    commands: list[Command] = [Arrive(HOST), Arrive(G1), Arrive(G2)]
    if admitted:
        commands.append(Admit("h1", "g1"))
    state = lobby(*commands)
    decision = lobby_apply(state, Move("h1", "g1", "dr-host"), T0)
    assert "g1" not in decision.state.people
    assert to(decision, "g1") == [Moved("dr-host")]
    assert kinds(decision) == [(PresenceKind.MOVED, "g1")]
    assert decision.presence[0].detail["to_room"] == "dr-host"
    assert (ParticipantWent("g1") in to(decision, "h1")) is admitted


def test_move_to_the_same_room_is_invalid() -> None:
    state = lobby(Arrive(HOST), Arrive(G1))
    with pytest.raises(Invalid):
        lobby_apply(state, Move("h1", "g1", "reception"), T0)


def test_say_reaches_every_waiting_guest_and_nobody_else() -> None:
    state = lobby(
        Arrive(HOST), Arrive(MEMBER), Arrive(G1), Arrive(G2), Arrive(G3), Admit("h1", "g3")
    )
    decision = lobby_apply(state, Say("h1", "  Running 5 minutes late  "), T0)
    assert decision.state.host_message == "Running 5 minutes late"
    assert to(decision, "g1") == [Waiting(1, "Running 5 minutes late", False)]
    assert to(decision, "g2") == [Waiting(2, "Running 5 minutes late", False)]
    assert {n.to for n in decision.notices} == {"g1", "g2"}
    assert decision.presence == ()
    # the message stays for later arrivals; blank text clears it
    later = lobby_apply(decision.state, Arrive(G4), T0)
    assert to(later, "g4") == [Waiting(3, "Running 5 minutes late", False)]
    cleared = lobby_apply(later.state, Say("h1", "   "), T0)
    assert cleared.state.host_message is None
    assert to(cleared, "g4") == [Waiting(3, None, False)]


def test_say_is_limited_in_length() -> None:
    state = lobby(Arrive(HOST), Arrive(G1))
    lobby_apply(state, Say("h1", "x" * MAX_HOST_MESSAGE), T0)
    with pytest.raises(Invalid):
        lobby_apply(state, Say("h1", "x" * (MAX_HOST_MESSAGE + 1)), T0)


def test_positions_are_hidden_when_the_room_says_so() -> None:
    state = lobby(Arrive(HOST), Arrive(G1), show_position=False)
    decision = lobby_apply(state, Arrive(G2), T0)
    assert to(decision, "g2") == [Waiting(position=None, message=None, on_hold=False)]
    # g2 moving up the queue changes nothing they can see: no notice
    admitted = lobby_apply(decision.state, Admit("h1", "g1"), T0)
    assert to(admitted, "g2") == []


# -- leaving --------------------------------------------------------------------------


def test_a_waiting_guest_leaving_moves_up_those_behind_only() -> None:
    state = lobby(Arrive(HOST), Arrive(G1), Arrive(G2), Arrive(G3))
    decision = lobby_apply(state, Leave("g2"), T0)
    assert decision.state.waiting == ("g1", "g3")
    assert to(decision, "g1") == []
    assert to(decision, "g3") == [Waiting(position=2, message=None, on_hold=False)]
    assert kinds(decision) == [(PresenceKind.LEFT, "g2")]
    assert decision.state.state_of("g2") is None


def test_leaving_the_call_is_announced_to_the_rest() -> None:
    state = lobby(Arrive(HOST), Arrive(HOST2), Arrive(G1), Admit("h1", "g1"))
    decision = lobby_apply(state, Leave("h2"), T0)
    assert decision.state.call == ("h1", "g1")
    assert to(decision, "h1") == [ParticipantWent("h2")]
    assert to(decision, "g1") == [ParticipantWent("h2")]


def test_when_the_last_host_leaves_guests_return_on_hold_ahead_of_newer_arrivals() -> None:
    state = lobby(
        Arrive(HOST),
        Arrive(MEMBER),
        Arrive(G1),
        Arrive(G2),
        Arrive(G3),
        AdmitAll("h1"),
        Arrive(G4),
    )
    assert state.call == ("h1", "m1", "g1", "g2", "g3")
    decision = lobby_apply(state, Leave("h1"), T0)
    assert decision.state.call == ("m1",)
    assert decision.state.waiting == ("g1", "g2", "g3", "g4")
    assert to(decision, "g1") == [Waiting(1, None, True)]
    assert to(decision, "g3") == [Waiting(3, None, True)]
    assert to(decision, "g4") == [Waiting(4, None, False)]
    assert to(decision, "m1") == [ParticipantWent(pid) for pid in ("h1", "g1", "g2", "g3")]
    assert kinds(decision) == [
        (PresenceKind.LEFT, "h1"),
        (PresenceKind.PUT_BACK, "g1"),
        (PresenceKind.PUT_BACK, "g2"),
        (PresenceKind.PUT_BACK, "g3"),
    ]
    assert decision.presence[1].detail == {"reason": "host_left"}
    # a host coming back does not let them in; admitted again, a guest is off hold
    returned = lobby_apply(decision.state, Arrive(HOST2), T0).state
    assert returned.waiting == ("g1", "g2", "g3", "g4")
    readmitted = lobby_apply(returned, Admit("h2", "g2"), T0)
    assert readmitted.state.seats["g2"].on_hold is False
    assert to(readmitted, "g3") == [Waiting(2, None, True)]


def test_guests_stay_while_another_host_remains() -> None:
    state = lobby(Arrive(HOST), Arrive(HOST2), Arrive(G1), Admit("h1", "g1"))
    decision = lobby_apply(state, Leave("h1"), T0)
    assert decision.state.call == ("h2", "g1")


def test_leave_of_someone_absent_is_a_no_op() -> None:
    state = lobby(Arrive(HOST), Arrive(G1), Deny("h1", "g1"))
    decision = lobby_apply(state, Leave("g1"), T0)
    assert decision == Decision(state)


def test_state_queries() -> None:
    state = lobby(Arrive(HOST), Arrive(G1))
    assert state.state_of("h1") is ParticipantState.IN_CALL
    assert state.state_of("g1") is ParticipantState.WAITING
    assert state.position("g1") == 1 and state.position("h1") is None
    assert state.hosts() == ("h1",)


def test_a_refused_command_changes_nothing() -> None:
    state = lobby(Arrive(HOST), Arrive(G1), Arrive(G2), AdmitAll("h1"), capacity=2)
    before = (state.call, state.waiting, dict(state.seats))
    with pytest.raises(VestibuleError):
        lobby_apply(state, Admit("h1", "g2"), T0)
    assert (state.call, state.waiting, dict(state.seats)) == before


# -- random command sequences ----------------------------------------------------------

PEOPLE = [HOST, HOST2, MEMBER, G1, G2, G3, G4]
IDS = [p.id for p in PEOPLE]
ROLE = {p.id: p.role for p in PEOPLE}

ids = st.sampled_from(IDS)
# mostly hosts acting on guests, so that sequences get somewhere; anyone else sometimes
by = st.one_of(st.sampled_from(["h1", "h2"]), ids)
target = st.one_of(st.sampled_from(["g1", "g2", "g3", "g4"]), ids)
arrive = st.builds(Arrive, st.sampled_from(PEOPLE))
commands: st.SearchStrategy[Command] = st.one_of(
    arrive,
    arrive,
    st.builds(Leave, by),
    st.builds(Admit, by, target),
    st.builds(AdmitAll, by),
    st.builds(Deny, by, target),
    st.builds(PutBack, by, target),
    st.builds(Move, by, target, st.sampled_from(["reception", "dr-host"])),
    st.builds(Say, by, st.sampled_from(["", "late", "x" * (MAX_HOST_MESSAGE + 1)])),
)


def mentioned_ids(payload: Payload) -> Iterable[str]:
    match payload:
        case Joined(participants):
            return [m.id for m in participants]
        case ParticipantCame(pid, _, _) | ParticipantWent(pid):
            return [pid]
        case LobbyView(entries):
            return [e.id for e in entries]
    return []


@settings(max_examples=200, deadline=None)
@given(
    st.lists(commands, min_size=5, max_size=60),
    st.booleans(),
    st.integers(min_value=1, max_value=4),
)
def test_random_command_sequences_keep_the_invariants(
    sequence: list[Command], show_position: bool, capacity: int
) -> None:
    state = LobbyState.empty(make_room(show_position=show_position, capacity=capacity))
    clock = Clock()
    last_waiting_notice: dict[str, Waiting] = {}
    for command in sequence:
        try:
            decision = lobby_apply(state, command, clock.tick())
        except VestibuleError:
            continue
        before, after = state, decision.state

        # everyone is in exactly one of call / waiting
        assert not set(after.call) & set(after.waiting)
        assert set(after.people) == set(after.call) | set(after.waiting)
        assert len(after.call) == len(set(after.call)) and len(after.waiting) == len(
            set(after.waiting)
        )
        assert len(after.call) <= capacity
        # staff never wait; hosts come first in the call
        assert all(ROLE[p] is Role.GUEST for p in after.waiting)
        roles = [ROLE[p] for p in after.call]
        assert roles == sorted(roles, key=lambda r: r is not Role.HOST)
        # a guest enters the call only through Admit / AdmitAll, and never without a host
        new_in_call = [p for p in after.call if p not in before.call and ROLE[p] is Role.GUEST]
        if new_in_call:
            assert isinstance(command, Admit | AdmitAll)
        if any(ROLE[p] is Role.GUEST for p in after.call):
            assert after.hosts()

        for notice in decision.notices:
            payload = notice.payload
            if notice.to in after.waiting:
                # a waiting guest hears only about their own place
                assert isinstance(payload, Waiting), payload
            if isinstance(payload, LobbyView):
                assert ROLE[notice.to] is Role.HOST and notice.to in after.call
            if notice.to in after.people and notice.to in after.call:
                # people in the call hear only about people in the room
                assert set(mentioned_ids(payload)) <= set(after.people) | set(before.people)
            if isinstance(payload, Waiting):
                last_waiting_notice[notice.to] = payload
        for pid in set(before.people) - set(after.people):
            last_waiting_notice.pop(pid, None)
        for pid in after.call:
            last_waiting_notice.pop(pid, None)

        # every waiting guest knows their current place, and only theirs
        for index, pid in enumerate(after.waiting):
            expected = index + 1 if show_position else None
            assert last_waiting_notice[pid].position == expected
            assert last_waiting_notice[pid].on_hold == after.seats[pid].on_hold
            assert last_waiting_notice[pid].message == after.host_message
        # queue order is ticket order
        tickets = [after.seats[p].ticket for p in after.waiting]
        assert tickets == sorted(tickets)
        # presence carries the room's ids and the time of the command
        for event in decision.presence:
            assert (event.team_id, event.room_id, event.at) == ("t1", "r1", clock.now)
        state = after


# -- walk-ins and picks from a supervised queue -------------------------------------


def test_a_walk_in_waits_and_is_marked_on_the_hosts_view() -> None:
    walker = Person("w1", Role.GUEST, "Pat Walker", walk_in=True)
    decision = lobby_apply(lobby(Arrive(HOST)), Arrive(walker), T0)
    assert to(decision, "w1") == [Waiting(position=1, message=None, on_hold=False)]
    view = LobbyView((WaitingEntry("w1", "Pat Walker", None, T0, True),))
    assert to(decision, "h1") == [view]
    assert [e.meeting_id for e in decision.presence] == [None]


def test_a_pick_takes_a_waiting_guest_once() -> None:
    picked = lobby_apply(lobby(Arrive(G1), Arrive(G2)), Pick("s-ada", "g1", "dr-ada"), T0)
    assert picked.state.waiting == ("g2",)
    assert to(picked, "g1") == [Moved("dr-ada")]
    assert to(picked, "g2") == [Waiting(position=1, message=None, on_hold=False)]
    (moved,) = picked.presence
    assert (moved.kind, dict(moved.detail)) == (
        PresenceKind.MOVED,
        {"to_room": "dr-ada", "by": "s-ada", "picked": True},
    )
    with pytest.raises(NoLongerWaiting):
        lobby_apply(picked.state, Pick("s-sam", "g1", "dr-sam"), T0)


def test_only_a_waiting_guest_is_picked() -> None:
    state = lobby(Arrive(HOST), Arrive(G1), Admit("h1", "g1"))
    with pytest.raises(NoLongerWaiting):
        lobby_apply(state, Pick("s-ada", "g1", "dr-ada"), T0)
    with pytest.raises(NoLongerWaiting):
        lobby_apply(state, Pick("s-ada", "h1", "dr-ada"), T0)


def test_take_in_admits_when_the_picker_hosts_the_call() -> None:
    decision = lobby_apply(lobby(Arrive(HOST), Arrive(G2)), TakeIn(G1, "h1"), T0)
    assert decision.state.call == ("h1", "g1")
    assert decision.state.waiting == ("g2",)
    assert Admitted() in to(decision, "g1")
    assert kinds(decision) == [
        (PresenceKind.WAITING, "g1"),
        (PresenceKind.ADMITTED, "g1"),
        (PresenceKind.IN_CALL, "g1"),
    ]


def test_take_in_waits_first_in_line_otherwise() -> None:
    decision = lobby_apply(lobby(Arrive(G2), Arrive(G3)), TakeIn(G1, "h1"), T0)
    assert decision.state.waiting == ("g1", "g2", "g3")
    assert to(decision, "g1") == [Waiting(position=1, message=None, on_hold=False)]
    full = lobby(Arrive(HOST), capacity=1)
    decision = lobby_apply(full, TakeIn(G1, "h1"), T0)
    assert decision.state.waiting == ("g1",)
    with pytest.raises(Forbidden):
        lobby_apply(full, TakeIn(HOST2, "h1"), T0)
