"""The rooms' copies in Redis, as the node serving the rooms keeps and uses them.

With Redis, each live room and the sessions in it have a copy
(signalling/room_state.py) that another node loads when it takes the room
over: a node that died (:meth:`RoomCopies.orphaned`), a node that drained and
handed its rooms over (:meth:`RoomCopies.handed`), or a resume that reached
another node first (:meth:`RoomCopies.adopt`). :class:`RoomCopies` is that
half of :class:`signalling.room_commands.RoomCommands`: what a copy is to
hold now (:meth:`RoomCopies.snapshot`), when it is written again, loading a
copy into live rooms and sessions, and sending everyone away when another
node holds the room (:meth:`RoomCopies.relocate`). It keeps no state of its
own; the sessions and rooms are the commands'.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Collection, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from rooms import lobby
from rooms.presence import PresenceEvent, PresenceKind, Role
from rooms.room import Room
from signalling.clock import Clock
from signalling.connection import CloseCode, CloseReason
from signalling.metrics import Metrics
from signalling.placement import Placement
from signalling.room_runtime import Recorder, RoomRuntime
from signalling.room_state import RoomStates, SavedSession, Snapshot, decode_lobby, encode_lobby
from signalling.session import Identity, Session, SessionRegistry
from signalling.store.base import Store

log = structlog.get_logger("vestibule.rooms")


class RoomCopies:
    """Keeping, loading and giving up the copies of this node's rooms (a part
    of RoomCommands, whose sessions and rooms it works on)."""

    store: Store
    clock: Clock
    metrics: Metrics
    recorder: Recorder
    placement: Placement | None
    sessions: SessionRegistry
    rooms: dict[str, RoomRuntime]
    states: RoomStates | None
    _outbox_limit: int
    #: room id -> the participants whose sessions are in it (pruned as read)
    _members: dict[str, set[str]]
    #: rooms whose copy is being loaded (a hello waits for it)
    _adopting: dict[str, asyncio.Future[None]]
    #: participants whose session was loaded from a copy and not resumed yet
    _restored: set[str]

    if TYPE_CHECKING:  # provided by RoomCommands

        def _runtime_of(self, room: Room) -> RoomRuntime: ...
        def people(self) -> Collection[str]: ...
        def record(
            self, session: Session, kind: PresenceKind, **detail: Any
        ) -> Awaitable[None]: ...
        def end(
            self, session: Session, reason: str, code: CloseCode = CloseCode.NORMAL
        ) -> None: ...

    async def orphaned(self, people: list[dict[str, Any]]) -> None:
        """People of a node that died. A room of theirs with a copy in Redis is
        taken over here (its people keep their place for the resume window, and
        whoever does not resume leaves then); anyone no copy holds has left now."""
        now = self.clock.now()
        by_room: dict[str, list[dict[str, Any]]] = {}
        for who in people:
            by_room.setdefault(str(who.get("room", "")), []).append(who)
        for room_id, group in by_room.items():
            kept: set[str] = set()
            if self.states is not None and self.placement is not None and room_id:
                try:
                    if await self.placement.claim(room_id) is None:
                        await self.adopt(room_id)
                        kept = {str(w.get("participant")) for w in group} & set(self.people())
                    else:  # another node took it over, with its copy
                        for who in group:
                            pid = str(who.get("participant"))
                            if await self.states.holds(room_id, pid):
                                kept.add(pid)
                except Exception as err:  # Redis away: nobody can be kept then
                    log.warning("room of a dead node not taken over", room=room_id, error=str(err))
            for who in group:
                if str(who.get("participant")) not in kept:
                    self._node_lost(who, now)

    def _node_lost(self, who: dict[str, Any], now: datetime) -> None:
        try:
            event = PresenceEvent(
                kind=PresenceKind.LEFT,
                team_id=str(who["team"]),
                room_id=str(who["room"]),
                participant_id=str(who["participant"]),
                role=Role(who["role"]),
                at=now,
                meeting_id=who.get("meeting"),
                detail={"reason": "node_lost"},
            )
        except (KeyError, ValueError):
            return  # not something this version wrote
        self.recorder.record(event)

    def changed(self, session: Session) -> None:
        """The session is new, moved, ended or has a new resume secret: its room's
        copy is written again."""
        room_id = session.who.room.id
        if self.states is not None:
            self._members.setdefault(room_id, set()).add(session.pid)
            self.states.changed(room_id)

    def _room_changed(self, room_id: str) -> None:
        if self.states is not None:
            self.states.changed(room_id)

    def _queued(self, session: Session, body: Mapping[str, Any]) -> None:
        if self.states is not None:
            self.states.queued(session.pid, body)

    def delivered(self, session: Session) -> None:
        """What was queued for the session was delivered on its resume."""
        self._restored.discard(session.pid)
        if self.states is not None:
            self.states.delivered(session.pid)

    def restored(self, session: Session) -> bool:
        """Whether the session came from a copy (this node took its room over)."""
        return session.pid in self._restored

    def snapshot(self, room_id: str) -> Snapshot:
        """What the room's copy is to hold now (empty: the room is gone from here)."""
        fields: dict[str, str] = {}
        digests: list[str] = []
        runtime = self.rooms.get(room_id)
        if runtime is not None and runtime.state.people:
            fields["lobby"] = encode_lobby(runtime.state)
        members = self._members.get(room_id, set())
        for pid in list(members):
            session = self.sessions.by_pid.get(pid)
            if session is None or session.ended or session.who.room.id != room_id:
                members.discard(pid)
                continue
            who = session.who
            saved = SavedSession(
                session.id,
                session.resume_digest,
                pid,
                who.role,
                who.name,
                who.team_id,
                who.meeting_id,
                who.staff_id,
                who.credential_id,
                who.instructions,
                session.joined,
            )
            fields[f"s:{pid}"] = saved.encode()
            digests.append(session.resume_digest)
        if not members:
            self._members.pop(room_id, None)
        return Snapshot(fields, digests)

    async def handed(self, room_ids: list[str]) -> None:
        """A draining node handed these rooms to this one: take them and their copies."""
        for room_id in room_ids:
            try:
                if self.placement is not None and await self.placement.claim(room_id) is None:
                    await self.adopt(room_id)
            except Exception as err:  # its people's resume will try again
                log.warning("handed room not taken", room=room_id, error=str(err))

    async def adopt(self, room_id: str) -> None:
        """This node holds the room's lease: if it has nothing of the room yet,
        load the room's copy (a node took it over, or was handed it). A room
        whose claim found no copy (a room nobody is in) costs no read."""
        if self.states is None or room_id in self.rooms or self._members.get(room_id):
            return
        pending = self._adopting.get(room_id)
        if pending is not None:
            await asyncio.shield(pending)
            return
        if self.placement is not None and self.placement.without_copy(room_id):
            return  # claimed with no copy in Redis: nothing to read
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._adopting[room_id] = done
        try:
            await self._load(room_id)
        finally:
            del self._adopting[room_id]
            done.set_result(None)

    async def _load(self, room_id: str) -> None:
        assert self.states is not None
        saved = await self.states.load(room_id)
        if saved is None:
            return
        room = await self.store.get_room(room_id)
        if room_id in self.rooms or self._members.get(room_id):
            return
        loaded: list[Session] = []
        for found in saved.sessions:
            if self.sessions.get(found.participant) is not None:
                continue
            who = Identity(
                found.participant,
                found.role,
                found.name,
                found.team_id,
                room,
                found.meeting_id,
                found.staff_id,
                found.credential_id,
                found.instructions,
            )
            session = Session(found.session_id, who, found.digest, self._outbox_limit)
            session.joined = found.joined
            session.outbox.extend(saved.outboxes.get(found.participant, ()))
            self.sessions.add(session)
            self.sessions.detach(session)  # held for the resume window from now
            self._members.setdefault(room_id, set()).add(session.pid)
            self._restored.add(session.pid)
            loaded.append(session)
        missing: list[str] = []
        live = None
        if saved.lobby is not None:
            live = self._runtime_of(room)
            live.state = decode_lobby(room, saved.lobby)
            live.in_call = frozenset(live.state.call)
            for pid in live.state.people:
                member = self.sessions.get(pid)
                if member is not None and member.joined:
                    live.sessions[pid] = member
                else:
                    missing.append(pid)
        for session in loaded:
            if live is None or session.pid not in live.sessions:
                session.joined = False
        self.metrics.sessions.set(len(self.sessions))
        if self.placement is not None:
            self.placement.people_changed()
        self.metrics.rooms_taken_over.inc()
        log.info("room taken over", room=room_id, people=len(loaded))
        for pid in missing:  # in the lobby without a session: gone
            if live is not None:
                await live.apply(lobby.Leave(pid), self.clock.now())
        self.states.changed(room_id)

    async def relocate(self, room_id: str, url: str) -> None:
        """Another node holds this room now (this one stalled, or Redis lost the
        lease and another node claimed it first): everyone here is sent there,
        so the room is never split between two nodes. Whoever the new owner took
        over with the room's copy is still there; the others have left."""
        moving = [s for s in self.sessions.by_pid.values() if s.who.room.id == room_id]
        goaway = {"type": "goaway", "reason": "room_elsewhere", "url": url, "reconnect_after": 0}
        log.warning("room moved to another node", room=room_id, people=len(moving))
        for session in moving:
            if session.conn is not None:
                await session.conn.send(goaway)
            if self.states is None or not await self._held_there(room_id, session.pid):
                await self.record(session, PresenceKind.LEFT)
            self.end(session, CloseReason.ROOM_ELSEWHERE, CloseCode.TRY_AGAIN_LATER)
        runtime = self.rooms.pop(room_id, None)
        if runtime is not None:
            self.metrics.rooms.set(len(self.rooms))

    async def _held_there(self, room_id: str, pid: str) -> bool:
        assert self.states is not None
        try:
            return await self.states.holds(room_id, pid)
        except Exception as err:  # Redis away: record the departure rather than lose it
            log.warning("room copy unreadable", room=room_id, error=str(err))
            return False
