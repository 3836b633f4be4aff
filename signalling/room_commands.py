"""The rooms in use on this node, and every command people give in them.

:class:`RoomCommands` owns this node's sessions and live rooms: a parsed
message from someone who said hello comes to :meth:`RoomCommands.handle`, which
applies it through the room's runtime (signalling/room_runtime.py: the pure
lobby in rooms/lobby.py decides, the runtime delivers). Rules come from
rooms/ (the lobby, rooms.access); errors are raised and the endpoint layer
(signalling/endpoint.py) answers them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

import structlog

from rooms import access, lobby, supervision
from rooms.errors import (
    BadMessage,
    BadTransition,
    Busy,
    Conflict,
    Forbidden,
    NoLongerWaiting,
    NotFound,
    NotHost,
)
from rooms.presence import LogEntry, MeetingChange, PresenceEvent, PresenceKind, Role
from rooms.room import Room
from signalling import protocol as p
from signalling.bus import Bus
from signalling.clock import Clock
from signalling.connection import CloseCode, CloseReason
from signalling.metrics import Metrics
from signalling.placement import Placement
from signalling.room_copies import RoomCopies
from signalling.room_runtime import Recorder, RoomRuntime
from signalling.room_state import RoomStates
from signalling.session import Identity, Session, SessionRegistry
from signalling.settings import Settings
from signalling.store.base import Store
from signalling.store.codec import dump_json
from signalling.walk_ins import walked_in
from signalling.watch import QueueWatch

log = structlog.get_logger("vestibule.rooms")


class MediaChecks(Protocol):
    """What the rooms need of the media-check integration (signalling.checks)."""

    async def offer(self, session: Session, msg: p.MediaCheckOffer) -> None: ...
    def cancel(self, session: Session) -> None: ...


#: what a host's command becomes in the lobby, for the commands that need
#: nothing else of the shell
_LOBBY_COMMANDS: dict[type, Callable[[str, Any], lobby.Command]] = {
    p.Admit: lambda by, m: lobby.Admit(by, m.participant),
    p.AdmitAll: lambda by, m: lobby.AdmitAll(by),
    p.PutBack: lambda by, m: lobby.PutBack(by, m.participant),
    p.Say: lambda by, m: lobby.Say(by, m.text),
}


class RoomCommands(RoomCopies):
    """This node's sessions and rooms, and what each message does in them (their
    copies in Redis: signalling/room_copies.py)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        metrics: Metrics,
        recorder: Recorder,
        placement: Placement | None,
        checks: MediaChecks | None,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        bus: Bus | None = None,
        states: RoomStates | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.recorder = recorder
        self.placement = placement
        self.checks = checks
        self._spawn = spawn
        self.sessions = SessionRegistry(settings.resume_window, self._expired, self._queued)
        self._outbox_limit = settings.send_queue
        self.rooms: dict[str, RoomRuntime] = {}
        #: with Redis: each room's copy there, for a node that takes it over
        #: (signalling/room_state.py)
        self.states = states
        #: room id -> the participants whose sessions are in it (pruned as read)
        self._members: dict[str, set[str]] = {}
        #: rooms whose copy is being loaded (a hello waits for it)
        self._adopting: dict[str, asyncio.Future[None]] = {}
        #: participants whose session was loaded from a copy and not resumed yet
        self._restored: set[str] = set()
        #: the teams this node has rooms of, each with its bus subscription: a
        #: meeting cancelled on any node reaches its guests here
        self._bus = bus
        self._teams: dict[str, Callable[[], None]] = {}
        #: each walk-in's latest check indicator (they have no meeting to fold it into)
        self.walk_in_checks: dict[str, str] = {}
        #: hosts watching the team's shared queues (signalling/watch.py)
        self.watch = QueueWatch(
            store,
            self.rooms.get,
            copies=None if states is None else states.lobby_of,
            indicator=recorder.indicator,
            bus=bus,
            spawn=spawn,
        )

    # -- the commands --------------------------------------------------------------

    async def handle(self, session: Session, message: p.ClientMessage) -> None:
        """Apply one message of someone in a room (after their hello)."""
        match message:
            case p.Signal():
                runtime = self.rooms.get(session.who.room.id)
                if runtime is None or not session.joined:
                    raise Forbidden("you are not in the call")
                await runtime.relay(session, message)
            case p.Join():
                await self.join(session)
            case p.Leave():
                await self.leave(session)
            case p.CallState():
                await self._call_state(session, message)
            case p.Admit() | p.AdmitAll() | p.PutBack() | p.Say():
                runtime = self._hosting(session)
                command = _LOBBY_COMMANDS[type(message)](session.pid, message)
                await runtime.apply(command, self.clock.now())
            case p.Deny():
                await self._deny(session, message)
            case p.Move():
                await self._move(session, message)
            case p.Invite():
                await self._invite(session, message)
            case p.Watch():
                await self.watch.watch(session)
            case p.Unwatch():
                self.watch.unwatch(session)
            case p.Pick():
                await self._pick(session, message)
            case p.MediaCheckOffer():
                if self.checks is None:
                    raise Busy("media checks are not available on this server", retry_after=30)
                await self.checks.offer(session, message)
            case p.Ping():
                body: dict[str, Any] = {"type": "pong", "server_time": time.time()}
                if message.ref is not None:
                    body["ref"] = message.ref
                await session.send(body)
            case p.Pong():
                return
            case p.Hello():
                raise BadMessage("already said hello")
            case p.Subscribe():
                raise BadMessage("subscribe belongs on /ws/dashboard")

    def _hosting(self, session: Session) -> RoomRuntime:
        """The room ``session`` hosts now; NotHost if it hosts none (the lobby's rule)."""
        runtime = self.rooms.get(session.who.room.id)
        if runtime is None or not session.joined:
            raise NotHost()
        lobby.require_host(runtime.state, session.pid)
        self.recorder.check_capacity()
        return runtime

    async def join(self, session: Session) -> None:
        if session.joined:
            raise BadTransition("participant", "joined", "join")
        self.recorder.check_capacity()
        runtime = self._runtime_for(session)
        who = session.who
        runtime.sessions[session.pid] = session
        session.joined = True
        person = _person(who)
        try:
            await runtime.apply(lobby.Arrive(person), self.clock.now())
        except Exception:
            runtime.sessions.pop(session.pid, None)
            session.joined = False
            raise

    async def _call_state(self, session: Session, msg: p.CallState) -> None:
        runtime = self.rooms.get(session.who.room.id)
        if runtime is None or session.pid not in runtime.in_call:
            raise Forbidden("you are not in the call")
        self.recorder.check_capacity()
        kind = PresenceKind.CALL_CONNECTED if msg.state == "connected" else PresenceKind.CALL_FAILED
        self.record(session, kind, peer=msg.peer)  # no acknowledgement: nobody waits

    async def _deny(self, session: Session, msg: p.Deny) -> None:
        """Deny, and revoke the guest's credential: denied is final (the participant
        lifecycle in rooms/participant.py), so neither the link nor the rejoin
        secret lets them queue again."""
        runtime = self._hosting(session)
        person = runtime.state.people.get(msg.participant)
        if person is not None and person.meeting_id is not None and person.role is Role.GUEST:
            # Revoke first: a guest told "denied" must not get back in by reconnecting
            # in the moment before the revocation lands (possibly through another node).
            await self.store.replace_credential(person.meeting_id, None, self.clock.now())
        await runtime.apply(lobby.Deny(session.pid, msg.participant), self.clock.now())

    async def _invite(self, session: Session, msg: p.Invite) -> None:
        """The owner of a consulting room invites a colleague into the call in progress.

        The invitation lives with the room on this node (rooms are on one node) and
        lapses when the room empties or after INVITATION_TTL: it lets the colleague
        say hello into this room once the owner asked for them, nothing more.
        """
        runtime = self._hosting(session)
        try:
            colleague = await self.store.get_staff(msg.member)
        except NotFound:
            raise NotFound("no such colleague") from None
        if colleague.team_id != runtime.room.team_id:
            raise NotFound("no such colleague")  # other teams' ids reveal nothing
        if colleague.id == runtime.room.owner_id or runtime.room.shared:
            raise BadTransition("invitation", "already a host of this room", "invite")
        runtime.invite(colleague.id, self.clock.now())
        body: dict[str, Any] = {"type": "invited", "member": colleague.id}
        if msg.ref is not None:
            body["ref"] = msg.ref
        await session.send(body)

    async def _move(self, session: Session, msg: p.Move) -> None:
        runtime = self._hosting(session)
        target_room = await self.store.find_room_by_slug(msg.room)
        if target_room is None:
            raise NotFound("no such room")
        access.check_move_target(runtime.room, target_room)
        if self.placement is not None and await self.placement.claim(target_room.id) is not None:
            # The target room lives on another node: moving the guest here would split it.
            raise Conflict("that room is in use on another server; try again when it is free")
        await self.adopt(target_room.id)
        guest = runtime.sessions.get(msg.participant)
        await runtime.apply(
            lobby.Move(session.pid, msg.participant, target_room.slug), self.clock.now()
        )
        if guest is None:
            return
        runtime.sessions.pop(guest.pid, None)
        self._forget_if_empty(runtime)
        who = guest.who
        guest.who = Identity(
            who.participant,
            who.role,
            who.name,
            who.team_id,
            target_room,
            who.meeting_id,
            who.staff_id,
            who.credential_id,
            who.instructions,
        )
        guest.joined = False
        self.changed(guest)
        await self.join(guest)

    async def _pick(self, session: Session, msg: p.Pick) -> None:
        """Bring a patient waiting in a watched queue into the room ``session``
        hosts: out of that queue (exactly one of two simultaneous picks gets
        them; the other is NoLongerWaiting), then first in line here, admitted
        at once while the picker is in the call and it has room."""
        runtime = self._hosting(session)
        source_room = await self.store.find_room_by_slug(msg.room)
        if source_room is None or source_room.team_id != runtime.room.team_id:
            raise NotFound("no such room")
        supervision.check_pick(source_room, runtime.room)
        source = self.rooms.get(source_room.id)
        guest = None if source is None else source.sessions.get(msg.participant)
        if source is None or guest is None:
            raise NoLongerWaiting()
        now = self.clock.now()
        await source.apply(lobby.Pick(session.pid, msg.participant, runtime.room.slug), now)
        source.sessions.pop(guest.pid, None)
        self._forget_if_empty(source)
        guest.who = replace(guest.who, room=runtime.room)
        runtime.sessions[guest.pid] = guest
        try:
            await runtime.apply(lobby.TakeIn(_person(guest.who), session.pid), self.clock.now())
        except Exception:
            runtime.sessions.pop(guest.pid, None)
            guest.joined = False
            await self.leave(guest)
            raise

    def _queue_changed(self, runtime: RoomRuntime) -> None:
        """A queue changed (after its notices went out): tell whoever watches it,
        here at once, on the other nodes once its copy is written (marked again
        here: the write that follows carries the announcement)."""
        self.watch.queue_changed(runtime.room)
        self._room_changed(runtime.room.id)
        if runtime.room.kind in supervision.SUPERVISED_KINDS and self.watch.watching(
            runtime.room.id
        ):
            self._spawn(self.watch.changed(runtime.room.id))

    # -- rooms and sessions ----------------------------------------------------------

    def _runtime_for(self, session: Session) -> RoomRuntime:
        return self._runtime_of(session.who.room)

    def _runtime_of(self, room: Room) -> RoomRuntime:
        runtime = self.rooms.get(room.id)
        if runtime is None:
            runtime = RoomRuntime(
                room,
                self.recorder,
                self._after_notice,
                self.metrics.relay_latency,
                on_queue=self._queue_changed,
                walk_in_checks=self.walk_in_checks,
                on_change=self._room_changed,
            )
            self.rooms[room.id] = runtime
            self.metrics.rooms.set(len(self.rooms))
            team_id = room.team_id
            if self._bus is not None and team_id not in self._teams:
                self._teams[team_id] = self._bus.subscribe(team_id, self._on_entry)
        return runtime

    def _on_entry(self, entry: LogEntry) -> None:
        """A team log entry, from any node: a cancelled meeting ends its guests' visits."""
        if (
            entry.topic == "meeting"
            and entry.kind == MeetingChange.CANCELLED
            and entry.meeting_id is not None
        ):
            self._spawn(self.meeting_cancelled(entry.meeting_id))

    async def meeting_cancelled(self, meeting_id: str) -> None:
        """The meeting was cancelled: its guests on this node, waiting or in the call,
        are told (``goaway`` ``cancelled``) and leave; their link is revoked already."""
        guests = [
            s
            for s in self.sessions.by_pid.values()
            if s.who.meeting_id == meeting_id and s.who.role is Role.GUEST
        ]
        for session in guests:
            if session.conn is not None:
                await session.conn.send(
                    {"type": "goaway", "reason": "cancelled", "reconnect_after": None}
                )
            await self.leave(session, CloseReason.CANCELLED)

    def _forget_if_empty(self, runtime: RoomRuntime) -> None:
        if runtime.empty and self.rooms.get(runtime.room.id) is runtime:
            del self.rooms[runtime.room.id]
            self.metrics.rooms.set(len(self.rooms))
            team_id = runtime.room.team_id
            if team_id in self._teams and not any(
                r.room.team_id == team_id for r in self.rooms.values()
            ):
                self._teams.pop(team_id)()
            if self.placement is not None:
                self.placement.release_if_empty(runtime.room.id)

    def _after_notice(self, session: Session, payload: lobby.Payload) -> None:
        if isinstance(payload, lobby.Denied):
            self.end(session, CloseReason.DENIED)

    def room_changed(self, room: Room) -> None:
        """A room's name or settings changed: the live room on this node uses
        them from its next command on (who is in it stays); when whether the
        queue shows places changed, each waiting patient is told theirs again."""
        runtime = self.rooms.get(room.id)
        if runtime is not None:
            shown = runtime.room.show_position
            runtime.room = room
            runtime.state = replace(runtime.state, room=room)
            if room.show_position != shown:
                self._spawn(self._tell_places(runtime))

    async def _tell_places(self, runtime: RoomRuntime) -> None:
        for pid in runtime.state.waiting:
            session = runtime.sessions.get(pid)
            place = runtime.place_of(pid)
            if session is not None and place is not None:
                await session.send(place)

    def place_of(self, session: Session) -> dict[str, Any] | None:
        """Where ``session`` stands in its room (for a connection taking over)."""
        runtime = self.rooms.get(session.who.room.id)
        return None if runtime is None else runtime.place_of(session.pid)

    def is_invited(self, room_id: str, staff_id: str, now: datetime) -> bool:
        """Whether the owner of ``room_id`` invited this colleague in."""
        runtime = self.rooms.get(room_id)
        return runtime is not None and runtime.is_invited(staff_id, now)

    def in_use(self) -> set[str]:
        """The ids of the rooms this node has people in (sessions, attached or
        within their resume window, and live rooms): the leases it keeps."""
        rooms = {session.who.room.id for session in self.sessions.by_pid.values()}
        rooms.update(self.rooms)
        return rooms

    def people(self) -> Collection[str]:
        """The participant ids this node serves (attached or in their resume window)."""
        return self.sessions.by_pid.keys()

    def describe(self, pid: str) -> str | None:
        """Who a participant served here is, as the cluster keeps it (JSON)."""
        session = self.sessions.by_pid.get(pid)
        if session is None:
            return None
        who = session.who
        return dump_json(
            {
                "participant": pid,
                "team": who.team_id,
                "room": who.room.id,
                "meeting": who.meeting_id,
                "role": str(who.role),
            }
        )

    def record(self, session: Session, kind: PresenceKind, **detail: Any) -> Awaitable[None]:
        """Record a presence event about this session in its team's log; the
        awaitable is done once it is there."""
        who = session.who
        return self.recorder.record(
            PresenceEvent(
                kind=kind,
                team_id=who.team_id,
                room_id=who.room.id,
                participant_id=who.participant,
                role=who.role,
                at=self.clock.now(),
                meeting_id=who.meeting_id,
                detail=detail,
            )
        )

    async def checked(self, session: Session, **detail: Any) -> None:
        """A media check ended: its verdict goes to the log, the hosts' queue view
        shows the new indicator."""
        await self.record(session, PresenceKind.CHECKED, **detail)
        if walked_in(session.who):
            passed = detail.get("verdict") == "passed"
            self.walk_in_checks[session.pid] = "check_passed" if passed else "check_failed"
        runtime = self.rooms.get(session.who.room.id)
        if runtime is not None:
            await runtime.refresh_lobby_view()

    def end(self, session: Session, reason: str, code: CloseCode = CloseCode.NORMAL) -> None:
        """The participant is gone for good: forget them, close their socket."""
        self.sessions.remove(session)
        self.watch.unwatch(session)
        self.walk_in_checks.pop(session.pid, None)
        self._restored.discard(session.pid)
        if self.states is not None:
            self.changed(session)
            self.states.delivered(session.pid)
        self.metrics.sessions.set(len(self.sessions))
        if self.checks is not None:
            self.checks.cancel(session)
        runtime = self.rooms.get(session.who.room.id)
        if runtime is not None:
            runtime.sessions.pop(session.pid, None)
            self._forget_if_empty(runtime)
        if session.conn is not None:
            session.conn.close_soon(code, reason)

    async def leave(
        self, session: Session, reason: str = CloseReason.LEFT, code: CloseCode = CloseCode.NORMAL
    ) -> None:
        runtime = self.rooms.get(session.who.room.id)
        if session.joined and runtime is not None and session.pid in runtime.state.people:
            await runtime.apply(lobby.Leave(session.pid), self.clock.now())
        else:
            await self.record(session, PresenceKind.LEFT)
        self.end(session, reason, code)

    async def end_staff_sessions(self, staff_id: str) -> int:
        """The account was disabled: its sessions on this node, attached or held
        for their resume window, leave their rooms (a socket still open is
        closed 1008 ``token_invalid``); how many."""
        mine = [s for s in self.sessions.by_pid.values() if s.who.staff_id == staff_id]
        for session in mine:
            if not session.ended:
                await self.leave(session, CloseReason.TOKEN_INVALID, CloseCode.POLICY)
        return len(mine)

    def _expired(self, session: Session) -> None:
        log.info(
            "detached session ended (resume window passed or its queue was full)",
            participant=session.pid,
            room=session.who.room.id,
        )
        self._spawn(self.leave(session))


def _person(who: Identity) -> lobby.Person:
    """Who a session is, as the lobby knows them."""
    return lobby.Person(
        who.participant,
        who.role,
        who.name,
        who.meeting_id,
        who.staff_id,
        walk_in=walked_in(who),
    )
