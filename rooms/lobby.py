"""The lobby of one room: who is in the call, who waits, and in what order.

A pure state machine: :func:`apply` takes a :class:`LobbyState`, a command and
``now``, and returns a :class:`Decision` (the new state, the notices to send
to people in the room, and the presence events to append to the team's log).
The hub turns each notice into a wire message; nothing here does I/O.

Rules (docs/domain.md, "Rooms and who may be where"):

- Guests always wait. ``Arrive(guest)`` puts them at the back of the queue,
  even when a host is in the call; a host arriving does not let early guests
  in. Staff (host, member) go straight into the call (access rules decided
  at hello, see rooms.access, that they may be here at all).
- Only a HOST in the room may Admit, AdmitAll, Deny, PutBack, Move or Say;
  anyone else, a guest included, gets NotHost. Admitting someone who is not
  waiting raises BadTransition naming their state (the participant table in
  rooms.participant decides). The call holds at most ``room.capacity``
  people (hosts included): admitting beyond it raises RoomFull; AdmitAll
  admits, in queue order, as many as fit, and raises RoomFull only if none
  fits.
- Queue order is arrival order in this room: each guest gets a ticket on
  Arrive and the queue is always sorted by ticket. A guest put back (by a
  host, or because the last host left) keeps their ticket, so they return in
  their original order, ahead of everyone who arrived after them, and are
  marked *on hold* until admitted again.
- When the last host leaves the call, every admitted guest returns to the
  queue on hold rather than staying in a call nobody hosts; members stay.
- A waiting guest never learns who else waits: their only notice is
  :class:`Waiting` (their own position, when the room shows positions, the
  host's message and whether they are on hold). It is re-sent to every
  waiting guest whose view changed, and to all of them on Say. Hosts get
  :class:`LobbyView` (the whole queue) whenever the queue changes, and on
  arrival.
- Someone leaving the call (leave, put back, move, last host gone) is
  announced to those still in it; someone taken out of the call hears only
  what happened to them (Waiting, Moved), never about the others.
- Leave of someone not in the lobby is a no-op: the hub sends it on every
  disconnect, including after a Deny or Move already removed them.
- Supervising shared queues (rooms.supervision): ``Pick`` takes a waiting
  guest out of a Reception or Waiting Area queue for a clinician who is not
  in that room (the shell checked they may); only a guest still waiting can
  be picked, so of two picks of the same guest exactly one succeeds and the
  other raises NoLongerWaiting. ``TakeIn`` puts the picked guest at the head
  of the clinician's queue and admits them at once when the clinician is a
  host in the call and it has room (else they wait there, first in line).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from rooms.errors import (
    BadTransition,
    Forbidden,
    Invalid,
    NoLongerWaiting,
    NotFound,
    NotHost,
    RoomFull,
)
from rooms.participant import ParticipantEvent, ParticipantState, transition
from rooms.presence import PresenceEvent, PresenceKind, Role
from rooms.room import Room

#: Longest host message to waiting guests. It is a short note on the waiting
#: screen ("running 5 minutes late"); 500 characters is a few sentences, enough
#: for that without turning the waiting screen into a document.
MAX_HOST_MESSAGE = 500


# -- people and state -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    """Someone in the room, as the hub admitted them at hello.

    ``meeting_id`` is the meeting a guest's credential belongs to;
    ``member_id`` is the staff account id of a host or member; ``walk_in``
    marks a guest who came without an appointment (no meeting).
    """

    id: str
    role: Role
    name: str
    meeting_id: str | None = None
    member_id: str | None = None
    walk_in: bool = False

    def __post_init__(self) -> None:
        if not self.id:
            raise Invalid("a participant needs an id")


@dataclass(frozen=True, slots=True)
class Seat:
    """A guest's place in this room's queue: kept while they are in the call,
    so a put-back guest returns to their original order."""

    ticket: int
    #: when they arrived in this room
    since: datetime
    on_hold: bool = False


@dataclass(frozen=True, slots=True)
class LobbyState:
    """Everything the lobby of one room knows.

    ``call`` lists the ids in the call, hosts first (each group in the order
    they joined); ``waiting`` the queue, first in line first. Every person is
    in exactly one of the two.
    """

    room: Room
    people: Mapping[str, Person] = field(default_factory=lambda: MappingProxyType({}))
    call: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    host_message: str | None = None
    #: guests' queue places (guests only, waiting or in the call)
    seats: Mapping[str, Seat] = field(default_factory=lambda: MappingProxyType({}))
    next_ticket: int = 0

    @classmethod
    def empty(cls, room: Room) -> LobbyState:
        """A lobby nobody is in."""
        return cls(room=room)

    def state_of(self, pid: str) -> ParticipantState | None:
        """``in_call``, ``waiting``, or None for someone not in this lobby."""
        if pid in self.waiting:
            return ParticipantState.WAITING
        if pid in self.call:
            return ParticipantState.IN_CALL
        return None

    def hosts(self) -> tuple[str, ...]:
        """The ids of the hosts in the call."""
        return tuple(pid for pid in self.call if self.people[pid].role is Role.HOST)

    def position(self, pid: str) -> int | None:
        """1-based place of a waiting guest in the queue (None if not waiting)."""
        try:
            return self.waiting.index(pid) + 1
        except ValueError:
            return None


# -- commands -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Arrive:
    person: Person


@dataclass(frozen=True, slots=True)
class Leave:
    pid: str


@dataclass(frozen=True, slots=True)
class Admit:
    by: str
    pid: str


@dataclass(frozen=True, slots=True)
class AdmitAll:
    by: str


@dataclass(frozen=True, slots=True)
class Deny:
    by: str
    pid: str


@dataclass(frozen=True, slots=True)
class PutBack:
    by: str
    pid: str


@dataclass(frozen=True, slots=True)
class Move:
    """Take a guest out of this lobby; the hub then has them Arrive in the
    target room (after rooms.access.check_move_target)."""

    by: str
    pid: str
    to_room_slug: str


@dataclass(frozen=True, slots=True)
class Say:
    """Set (or, with blank text, clear) the message shown to waiting guests."""

    by: str
    text: str


@dataclass(frozen=True, slots=True)
class Pick:
    """A clinician outside this (shared) room takes a waiting guest to their
    own room; the shell then has them TakeIn there."""

    by: str
    pid: str
    to_room_slug: str


@dataclass(frozen=True, slots=True)
class TakeIn:
    """A picked guest arrives in the picking clinician's room: first in line,
    and admitted at once when ``by`` hosts the call and it has room."""

    person: Person
    by: str


Command = Arrive | Leave | Admit | AdmitAll | Deny | PutBack | Move | Say | Pick | TakeIn


# -- notices --------------------------------------------------------------------


class CallMember(NamedTuple):
    id: str
    name: str
    role: Role


class WaitingEntry(NamedTuple):
    id: str
    name: str
    meeting_id: str | None
    since: datetime
    walk_in: bool = False


@dataclass(frozen=True, slots=True)
class Waiting:
    """To a waiting guest: their own place and the host's message, nothing else."""

    position: int | None
    message: str | None
    on_hold: bool


@dataclass(frozen=True, slots=True)
class Admitted:
    pass


@dataclass(frozen=True, slots=True)
class Denied:
    pass


@dataclass(frozen=True, slots=True)
class Moved:
    to_room_slug: str


@dataclass(frozen=True, slots=True)
class Joined:
    """To someone entering the call: the others already in it, hosts first."""

    participants: tuple[CallMember, ...]


@dataclass(frozen=True, slots=True)
class ParticipantCame:
    """To those already in the call."""

    id: str
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class ParticipantWent:
    """To those still in the call."""

    id: str


@dataclass(frozen=True, slots=True)
class LobbyView:
    """To hosts only: the whole queue, first in line first."""

    waiting: tuple[WaitingEntry, ...]


Payload = (
    Waiting | Admitted | Denied | Moved | Joined | ParticipantCame | ParticipantWent | LobbyView
)


@dataclass(frozen=True, slots=True)
class Notice:
    """One message for one participant."""

    to: str
    payload: Payload


@dataclass(frozen=True, slots=True)
class Decision:
    """What a command did: the new state, what to tell whom, what to log."""

    state: LobbyState
    notices: tuple[Notice, ...] = ()
    presence: tuple[PresenceEvent, ...] = ()


# -- the machine ----------------------------------------------------------------


class _Draft:
    """The state being changed by one command, with what it has to say."""

    def __init__(self, state: LobbyState, now: datetime) -> None:
        self.room = state.room
        self.now = now
        self.people = dict(state.people)
        self.call = list(state.call)
        self.waiting = list(state.waiting)
        self.seats = dict(state.seats)
        self.message = state.host_message
        self.next_ticket = state.next_ticket
        self.notices: list[Notice] = []
        self.presence: list[PresenceEvent] = []
        #: hosts that get a LobbyView even if the queue did not change
        self.view_for: set[str] = set()
        #: re-send Waiting to every waiting guest (the message was set)
        self.tell_all_waiting = False

    def state_of(self, pid: str) -> ParticipantState:
        if pid in self.call:
            return ParticipantState.IN_CALL
        if pid in self.waiting:
            return ParticipantState.WAITING
        raise NotFound("no such participant in this room")

    def target(self, pid: str) -> Person:
        person = self.people.get(pid)
        if person is None:
            raise NotFound("no such participant in this room")
        return person

    def require_host(self, by: str) -> None:
        _require_host(self.people, self.call, by)

    def require_room_in_call(self) -> None:
        if len(self.call) >= self.room.capacity:
            raise RoomFull()

    def tell(self, to: str, payload: Payload) -> None:
        self.notices.append(Notice(to, payload))

    def record(self, kind: PresenceKind, person: Person, **detail: Any) -> None:
        self.presence.append(
            PresenceEvent(
                kind=kind,
                team_id=self.room.team_id,
                room_id=self.room.id,
                participant_id=person.id,
                role=person.role,
                at=self.now,
                meeting_id=person.meeting_id,
                detail=MappingProxyType(detail),
            )
        )

    def enter_call(self, person: Person) -> None:
        """Put ``person`` in the call (hosts first) and introduce them."""
        others = list(self.call)
        self.tell(person.id, Joined(tuple(self.member(pid) for pid in others)))
        for pid in others:
            self.tell(pid, ParticipantCame(person.id, person.name, person.role))
        if person.role is Role.HOST:
            hosts = sum(1 for pid in self.call if self.people[pid].role is Role.HOST)
            self.call.insert(hosts, person.id)
        else:
            self.call.append(person.id)

    def leave_call(self, pid: str) -> None:
        """Take ``pid`` out of the call; tell those who stay, not the one who goes."""
        self.call.remove(pid)
        for stayer in self.call:
            self.tell(stayer, ParticipantWent(pid))

    def enqueue(self, pid: str) -> None:
        """Put a seated guest in the queue, in ticket order."""
        self.waiting.append(pid)
        self.waiting.sort(key=lambda p: self.seats[p].ticket)

    def put_back(self, pid: str) -> None:
        self.seats[pid] = replace(self.seats[pid], on_hold=True)
        self.enqueue(pid)

    def remove(self, pid: str) -> Person:
        """Forget someone entirely (left, denied, moved away)."""
        if pid in self.call:
            self.leave_call(pid)
        elif pid in self.waiting:
            self.waiting.remove(pid)
        self.seats.pop(pid, None)
        return self.people.pop(pid)

    def member(self, pid: str) -> CallMember:
        person = self.people[pid]
        return CallMember(person.id, person.name, person.role)

    def admit(self, by: str, pid: str) -> None:
        person = self.target(pid)
        transition(self.state_of(pid), ParticipantEvent.ADMIT, role=person.role)
        self.require_room_in_call()
        self.waiting.remove(pid)
        self.seats[pid] = replace(self.seats[pid], on_hold=False)
        self.tell(pid, Admitted())
        self.enter_call(person)
        self.record(PresenceKind.ADMITTED, person, by=by)
        self.record(PresenceKind.IN_CALL, person)


def apply(state: LobbyState, command: Command, now: datetime) -> Decision:
    """Apply one command to the lobby at ``now``.

    Raises a :class:`rooms.errors.VestibuleError` (NotHost, NotFound,
    BadTransition, RoomFull, Forbidden, Invalid) and changes nothing when the
    command is not allowed.
    """
    draft = _Draft(state, now)
    match command:
        case Arrive(person):
            _arrive(draft, person)
        case Leave(pid):
            if pid not in draft.people:
                return Decision(state)
            _leave(draft, pid)
        case Admit(by, pid):
            draft.require_host(by)
            draft.admit(by, pid)
        case AdmitAll(by):
            draft.require_host(by)
            _admit_all(draft, by)
        case Deny(by, pid):
            draft.require_host(by)
            person = draft.target(pid)
            transition(draft.state_of(pid), ParticipantEvent.DENY)
            draft.remove(pid)
            draft.tell(pid, Denied())
            draft.record(PresenceKind.DENIED, person, by=by)
        case PutBack(by, pid):
            draft.require_host(by)
            _put_back(draft, by, pid)
        case Move(by, pid, to_room_slug):
            draft.require_host(by)
            _move(draft, by, pid, to_room_slug)
        case Pick(by, pid, to_room_slug):
            _pick(draft, by, pid, to_room_slug)
        case TakeIn(person, by):
            _take_in(draft, person, by)
        case Say(by, text):
            draft.require_host(by)
            if len(text) > MAX_HOST_MESSAGE:
                raise Invalid(
                    f"a message to waiting guests is at most {MAX_HOST_MESSAGE} characters"
                )
            draft.message = text.strip() or None
            draft.tell_all_waiting = True
    return _finish(state, draft)


def _arrive(draft: _Draft, person: Person) -> None:
    if person.id in draft.people:
        raise BadTransition("lobby", draft.state_of(person.id).value, "arrive")
    if person.role is Role.GUEST:
        transition(ParticipantState.ENTERED, ParticipantEvent.WAIT, role=person.role)
        draft.people[person.id] = person
        draft.seats[person.id] = Seat(ticket=draft.next_ticket, since=draft.now)
        draft.next_ticket += 1
        draft.enqueue(person.id)
        draft.record(PresenceKind.WAITING, person)
        return
    transition(ParticipantState.ENTERED, ParticipantEvent.JOIN_AS_STAFF, role=person.role)
    draft.require_room_in_call()
    draft.people[person.id] = person
    draft.enter_call(person)
    draft.record(PresenceKind.IN_CALL, person)
    if person.role is Role.HOST:
        draft.view_for.add(person.id)


def _leave(draft: _Draft, pid: str) -> None:
    person = draft.people[pid]
    was_in_call = pid in draft.call
    if was_in_call:
        draft.call.remove(pid)
    elif pid in draft.waiting:
        draft.waiting.remove(pid)
    draft.seats.pop(pid, None)
    del draft.people[pid]
    draft.record(PresenceKind.LEFT, person)
    if not was_in_call:
        return
    went = [pid]
    # Why: a call nobody hosts would leave guests alone with each other (or
    # with an invited colleague) with nobody able to admit, deny or end it.
    if person.role is Role.HOST and not any(draft.people[p].role is Role.HOST for p in draft.call):
        guests = [p for p in draft.call if draft.people[p].role is Role.GUEST]
        for guest in guests:
            draft.call.remove(guest)
            draft.put_back(guest)
            draft.record(PresenceKind.PUT_BACK, draft.people[guest], reason="host_left")
        went.extend(guests)
    for gone in went:
        for stayer in draft.call:
            draft.tell(stayer, ParticipantWent(gone))


def _admit_all(draft: _Draft, by: str) -> None:
    if not draft.waiting:
        return
    free = draft.room.capacity - len(draft.call)
    if free <= 0:
        raise RoomFull()
    for pid in draft.waiting[:free]:
        draft.admit(by, pid)


def _put_back(draft: _Draft, by: str, pid: str) -> None:
    person = draft.target(pid)
    if person.role is not Role.GUEST:
        raise Forbidden("only guests can be put back into the waiting room")
    transition(draft.state_of(pid), ParticipantEvent.PUT_BACK, role=person.role)
    draft.leave_call(pid)
    draft.put_back(pid)
    draft.record(PresenceKind.PUT_BACK, person, reason="host", by=by)


def _move(draft: _Draft, by: str, pid: str, to_room_slug: str) -> None:
    person = draft.target(pid)
    if person.role is not Role.GUEST:
        raise Forbidden("only guests can be moved to another room")
    if to_room_slug == draft.room.slug:
        raise Invalid("the guest is already in this room; use put back instead")
    transition(draft.state_of(pid), ParticipantEvent.MOVE, role=person.role)
    draft.remove(pid)
    draft.tell(pid, Moved(to_room_slug))
    draft.record(PresenceKind.MOVED, person, to_room=to_room_slug, by=by)


def _pick(draft: _Draft, by: str, pid: str, to_room_slug: str) -> None:
    if pid not in draft.waiting:
        raise NoLongerWaiting()
    person = draft.people[pid]
    if to_room_slug == draft.room.slug:
        raise Invalid("the guest is already in this room")
    transition(ParticipantState.WAITING, ParticipantEvent.MOVE, role=person.role)
    draft.remove(pid)
    draft.tell(pid, Moved(to_room_slug))
    draft.record(PresenceKind.MOVED, person, to_room=to_room_slug, by=by, picked=True)


def _take_in(draft: _Draft, person: Person, by: str) -> None:
    if person.role is not Role.GUEST:
        raise Forbidden("only guests can be brought in from a queue")
    if person.id in draft.people:
        raise BadTransition("lobby", draft.state_of(person.id).value, "arrive")
    transition(ParticipantState.ENTERED, ParticipantEvent.WAIT, role=person.role)
    first = min((seat.ticket for seat in draft.seats.values()), default=draft.next_ticket)
    draft.people[person.id] = person
    draft.seats[person.id] = Seat(ticket=first - 1, since=draft.now)
    draft.enqueue(person.id)
    draft.record(PresenceKind.WAITING, person)
    host = draft.people.get(by)
    hosting = host is not None and host.role is Role.HOST and by in draft.call
    if hosting and len(draft.call) < draft.room.capacity:
        draft.admit(by, person.id)


def _require_host(people: Mapping[str, Person], call: Sequence[str], by: str) -> None:
    """The one host rule: ``by`` is a host of this room and in its call."""
    person = people.get(by)
    if person is None or person.role is not Role.HOST or by not in call:
        raise NotHost()


def _queue_view(
    people: Mapping[str, Person], waiting: Sequence[str], seats: Mapping[str, Seat]
) -> LobbyView:
    return LobbyView(
        tuple(
            WaitingEntry(
                pid,
                people[pid].name,
                people[pid].meeting_id,
                seats[pid].since,
                people[pid].walk_in,
            )
            for pid in waiting
        )
    )


def _waiting_views(
    room: Room, waiting: tuple[str, ...] | list[str], seats: Mapping[str, Seat], message: str | None
) -> dict[str, Waiting]:
    return {
        pid: Waiting(
            position=index + 1 if room.show_position else None,
            message=message,
            on_hold=seats[pid].on_hold,
        )
        for index, pid in enumerate(waiting)
    }


def _finish(before: LobbyState, draft: _Draft) -> Decision:
    """Add the queue notices (diffed against ``before``) and freeze the result."""
    old_views = _waiting_views(before.room, before.waiting, before.seats, before.host_message)
    new_views = _waiting_views(draft.room, draft.waiting, draft.seats, draft.message)
    for pid, view in new_views.items():
        if draft.tell_all_waiting or old_views.get(pid) != view:
            draft.tell(pid, view)
    queue_changed = tuple(draft.waiting) != before.waiting
    queue = _queue_view(draft.people, draft.waiting, draft.seats)
    for pid in draft.call:
        if draft.people[pid].role is Role.HOST and (queue_changed or pid in draft.view_for):
            draft.tell(pid, queue)
    state = LobbyState(
        room=draft.room,
        people=MappingProxyType(draft.people),
        call=tuple(draft.call),
        waiting=tuple(draft.waiting),
        host_message=draft.message,
        seats=MappingProxyType(draft.seats),
        next_ticket=draft.next_ticket,
    )
    return Decision(state, tuple(draft.notices), tuple(draft.presence))


# -- reading the state (for a connection that takes over a place) -----------------


def require_host(state: LobbyState, pid: str) -> None:
    """NotHost unless ``pid`` is a host in this room's call (the rule ``apply``
    enforces, for a shell that must check it before a side effect of its own)."""
    _require_host(state.people, state.call, pid)


def queue_view(state: LobbyState) -> LobbyView:
    """The queue as hosts see it."""
    return _queue_view(state.people, state.waiting, state.seats)


def place_of(state: LobbyState, pid: str) -> Payload | None:
    """What ``pid``'s screen shows now: their Waiting place, or the Joined call
    (the others in it); None for someone not in this lobby."""
    if pid in state.waiting:
        return _waiting_views(state.room, state.waiting, state.seats, state.host_message)[pid]
    if pid in state.call:
        others = tuple(
            CallMember(other, state.people[other].name, state.people[other].role)
            for other in state.call
            if other != pid
        )
        return Joined(others)
    return None
