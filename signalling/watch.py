"""Watching the team's shared queues from one's own room (``watch``/``queues``).

A host says ``watch`` in the room they host; from then on, until ``unwatch``
or the end of their session, they receive ``queues``: the queue of each room
rooms.supervision.watched_rooms names (the team's Reception and Waiting Area),
in the shape of the ``lobby`` message's entries, at once and again whenever
one of those queues, or a check indicator in it, changes. Nothing else of those
rooms reaches them: they are not in those rooms' calls.

The queues are read from the rooms live on this node (signalling.room_commands);
with Redis scale-out a shared room served by another node shows as empty
(docs/operations.md, "Scale-out").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rooms.errors import NotHost
from rooms.presence import Role
from rooms.room import Room
from rooms.supervision import watched_rooms
from signalling.room_runtime import RoomRuntime
from signalling.session import Session
from signalling.store.base import Store


class QueueWatch:
    """The watchers on this node, and the ``queues`` message they receive."""

    def __init__(self, store: Store, live: Callable[[str], RoomRuntime | None]) -> None:
        self.store = store
        #: the room live on this node with that id, if any
        self.live = live
        #: participant id -> (their session, the rooms they watch)
        self.watchers: dict[str, tuple[Session, list[Room]]] = {}

    async def watch(self, session: Session) -> None:
        """Start (or refresh) ``session``'s watch; it gets ``queues`` at once."""
        who = session.who
        if who.role is not Role.HOST:
            raise NotHost("only a host of this room may watch the team's queues")
        rooms = watched_rooms(await self.store.list_rooms(who.team_id), who.room)
        self.watchers[session.pid] = (session, rooms)
        await session.send(self.body(rooms))

    def unwatch(self, session: Session) -> None:
        self.watchers.pop(session.pid, None)

    def watching(self, room_id: str) -> list[Session]:
        """The sessions watching the room with this id."""
        return [
            session
            for session, rooms in self.watchers.values()
            if any(room.id == room_id for room in rooms)
        ]

    async def changed(self, room_id: str) -> None:
        """A watched queue changed: its watchers get the current ``queues``."""
        for session in self.watching(room_id):
            entry = self.watchers.get(session.pid)
            if entry is not None and not session.ended:
                await session.send(self.body(entry[1]))

    def body(self, rooms: list[Room]) -> dict[str, Any]:
        return {
            "type": "queues",
            "rooms": [
                {
                    "room": room.slug,
                    "name": room.name,
                    "kind": str(room.kind),
                    "waiting": self._queue(room),
                }
                for room in rooms
            ],
        }

    def _queue(self, room: Room) -> list[dict[str, Any]]:
        runtime = self.live(room.id)
        return [] if runtime is None else runtime.queue()
