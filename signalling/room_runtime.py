"""A room in use on this node: its lobby state, the sessions in it, the relay.

Lobby decisions come from the pure ``rooms.lobby.apply``; this module only
turns each decision's notices into wire messages, delivers them, and hands the
decision's presence events to the recorder, delivering once they are in the
log. Commands for one room are applied one at a time: ``apply`` is synchronous
up to the state change, so two commands can never interleave their state
updates.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from time import perf_counter
from types import MappingProxyType
from typing import Any, Protocol

import orjson

from rooms import lobby
from rooms.errors import Forbidden, NotFound
from rooms.presence import PresenceEvent
from rooms.room import Room
from signalling.metrics import FastHistogram
from signalling.protocol import Signal
from signalling.session import Session

_NO_CHECKS: Mapping[str, str] = MappingProxyType({})

#: an invitation into a consulting room is for the consultation in progress; an
#: hour covers the longest usual one, and it lapses anyway when the room empties
INVITATION_TTL = timedelta(hours=1)


class Recorder(Protocol):
    """Where presence events go (signalling.presence.PresenceLog)."""

    def record(self, event: PresenceEvent) -> Awaitable[None]:
        """Queue an event; the awaitable is done once it is in the log."""

    def written(self) -> Awaitable[None]:
        """Done once everything recorded so far is in the log."""

    def check_capacity(self) -> None:
        """Unavailable when no more events can be taken just now."""

    def indicator(self, meeting_id: str | None) -> str: ...


def notice_body(
    payload: lobby.Payload,
    indicator: Callable[[str | None], str],
    walk_in_checks: Mapping[str, str] = _NO_CHECKS,
) -> dict[str, Any]:
    """The wire message for one lobby notice (docs/protocol.md). A walk-in has
    no meeting: their indicator is their latest check in ``walk_in_checks``."""
    match payload:
        case lobby.Waiting(position=position, message=message, on_hold=on_hold):
            return {"type": "waiting", "position": position, "message": message, "on_hold": on_hold}
        case lobby.Admitted():
            return {"type": "admitted"}
        case lobby.Denied():
            return {"type": "denied"}
        case lobby.Moved(to_room_slug=slug):
            return {"type": "moved", "room": slug}
        case lobby.Joined(participants=members):
            return {
                "type": "joined",
                "participants": [
                    {"id": m.id, "name": m.name, "role": str(m.role)} for m in members
                ],
            }
        case lobby.ParticipantCame(id=pid, name=name, role=role):
            return {
                "type": "participant",
                "event": "came",
                "id": pid,
                "name": name,
                "role": str(role),
            }
        case lobby.ParticipantWent(id=pid):
            return {"type": "participant", "event": "went", "id": pid}
        case lobby.LobbyView(waiting=entries):
            return {
                "type": "lobby",
                "waiting": [
                    {
                        "id": e.id,
                        "name": e.name,
                        "meeting": e.meeting_id,
                        "since": e.since.timestamp(),
                        "indicator": (
                            walk_in_checks.get(e.id, "entered")
                            if e.walk_in
                            else _waiting_indicator(indicator, e.meeting_id)
                        ),
                        "walk_in": e.walk_in,
                    }
                    for e in entries
                ],
            }
    raise AssertionError(f"unhandled notice {payload!r}")  # pragma: no cover


def _waiting_indicator(indicator: Callable[[str | None], str], meeting_id: str | None) -> str:
    # Someone in the queue has entered, whatever the (asynchronously written) log
    # has caught up with so far.
    value = indicator(meeting_id)
    return "entered" if value == "not_entered" else value


class RoomRuntime:
    """The live state of one room on this node."""

    __slots__ = (
        "_invited",
        "_on_change",
        "_on_notice",
        "_on_queue",
        "_recorder",
        "_relay_latency",
        "_walk_in_checks",
        "in_call",
        "room",
        "sessions",
        "state",
    )

    def __init__(
        self,
        room: Room,
        recorder: Recorder,
        on_notice: Callable[[Session, lobby.Payload], None],
        relay_latency: FastHistogram,
        *,
        on_queue: Callable[[RoomRuntime], None] = lambda runtime: None,
        walk_in_checks: Mapping[str, str] = _NO_CHECKS,
        on_change: Callable[[str], None] = lambda room_id: None,
    ) -> None:
        self.room = room
        #: told the room's id after each change of its lobby state
        self._on_change = on_change
        self.state = lobby.LobbyState.empty(room)
        #: everyone who has joined this room's lobby (waiting or in the call)
        self.sessions: dict[str, Session] = {}
        #: ids in the call, mirrored from the state as a set for the relay's checks
        self.in_call: frozenset[str] = frozenset()
        self._recorder = recorder
        self._on_notice = on_notice
        self._relay_latency = relay_latency
        #: colleagues the owner invited in: staff id -> when the invitation lapses
        self._invited: dict[str, datetime] = {}
        #: told after the queue (or an indicator in it) changed, once delivered
        self._on_queue = on_queue
        #: the latest check indicator of each walk-in (who have no meeting)
        self._walk_in_checks = walk_in_checks

    @property
    def empty(self) -> bool:
        return not self.sessions

    async def apply(self, command: lobby.Command, now: datetime) -> lobby.Decision:
        """Apply one command (raises the lobby's errors), then deliver what it decided."""
        queue_before = self.state.waiting
        decision = lobby.apply(self.state, command, now)
        self.state = decision.state
        self.in_call = frozenset(decision.state.call)
        self._on_change(self.room.id)
        # Nobody is told before the log has it; and since the log is written in
        # order, waiting for it also keeps each room's notices in command order.
        stored = None
        for event in decision.presence:
            stored = self._recorder.record(event)
        await (stored if stored is not None else self._recorder.written())
        for notice in decision.notices:
            target = self.sessions.get(notice.to)
            if target is None:
                continue
            await target.send(self.body(notice.payload))
            self._on_notice(target, notice.payload)
        if decision.state.waiting != queue_before:
            self._on_queue(self)
        return decision

    def body(self, payload: lobby.Payload) -> dict[str, Any]:
        """The wire message of one of this room's notices."""
        return notice_body(payload, self._recorder.indicator, self._walk_in_checks)

    def queue(self) -> list[dict[str, Any]]:
        """The queue as hosts see it (the ``waiting`` list of ``lobby``)."""
        body = self.body(lobby.queue_view(self.state))
        waiting: list[dict[str, Any]] = body["waiting"]
        return waiting

    def invite(self, staff_id: str, now: datetime) -> None:
        self._invited[staff_id] = now + INVITATION_TTL

    def is_invited(self, staff_id: str, now: datetime) -> bool:
        until = self._invited.get(staff_id)
        return until is not None and now < until

    async def refresh_lobby_view(self) -> None:
        """Re-send the queue to the hosts (an indicator changed)."""
        if not self.state.waiting:
            return
        body = self.body(lobby.queue_view(self.state))
        for pid in self.state.hosts():
            session = self.sessions.get(pid)
            if session is not None:
                await session.send(body)
        self._on_queue(self)

    def place_of(self, pid: str) -> dict[str, Any] | None:
        """The message that tells ``pid`` where they stand (``waiting`` or
        ``joined``), for a connection taking over their place; None if not here."""
        payload = lobby.place_of(self.state, pid)
        return None if payload is None else self.body(payload)

    async def relay(self, sender: Session, msg: Signal) -> None:
        """Relay one signal between two participants of this call (the hot path)."""
        started = perf_counter()
        in_call = self.in_call
        if sender.pid not in in_call:
            raise Forbidden("you are not in the call")
        if msg.to not in in_call:
            raise Forbidden("that participant is not in this call")
        target = self.sessions.get(msg.to)
        if target is None:  # pragma: no cover - in_call and sessions change together
            raise NotFound("no such participant")
        body: dict[str, Any] = {"type": "signal", "from": sender.pid, "kind": msg.kind}
        if msg.sdp is not None:
            body["sdp"] = msg.sdp
        if msg.kind == "candidate":
            body["candidate"] = msg.candidate
        conn = target.conn
        if conn is not None and not conn.closed and not conn.binary:
            conn.write(orjson.dumps(body), "signal")  # joined with this iteration's frames
        else:
            await target.send(body)
        self._relay_latency.observe(perf_counter() - started)
