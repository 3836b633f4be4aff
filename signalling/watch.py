"""Watching the team's shared queues from one's own room (``watch``/``queues``).

A host says ``watch`` in the room they host; from then on, until ``unwatch``
or the end of their session, they receive ``queues``: the queue of each room
rooms.supervision.watched_rooms names (the team's Reception and Waiting Area),
in the shape of the ``lobby`` message's entries, at once and again whenever
one of those queues, or a check indicator in it, changes. Nothing else of those
rooms reaches them: they are not in those rooms' calls.

A queue is read from the room live on this node (signalling.room_commands).
With Redis scale-out, a shared room served by another node is read from its
copy in Redis (signalling.room_state), and its owner announces each change of
its queue on the bus (topic ``queues``, signalling.bus) once the copy holding
it is written: the watchers of that room on every node get ``queues`` again.
A walk-in's check indicator is known only on the node serving them; read from
a copy it is ``entered``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Coroutine
from typing import Any

import structlog

from rooms import lobby
from rooms.errors import NotHost
from rooms.presence import Role
from rooms.room import Room
from rooms.supervision import SUPERVISED_KINDS, watched_rooms
from signalling.bus import QUEUES, Bus
from signalling.room_runtime import RoomRuntime, notice_body
from signalling.session import Session
from signalling.store.base import Store

log = structlog.get_logger("vestibule.watch")

#: the lobby in a room's copy in Redis (None: no copy, nobody is in the room)
CopyReader = Callable[[Room], Awaitable[lobby.LobbyState | None]]


class QueueWatch:
    """The watchers on this node, and the ``queues`` message they receive."""

    def __init__(
        self,
        store: Store,
        live: Callable[[str], RoomRuntime | None],
        *,
        copies: CopyReader | None = None,
        indicator: Callable[[str | None], str] = lambda meeting_id: "entered",
        bus: Bus | None = None,
        spawn: Callable[[Coroutine[Any, Any, None]], None] | None = None,
    ) -> None:
        self.store = store
        #: the room live on this node with that id, if any
        self.live = live
        #: participant id -> (their session, the rooms they watch)
        self.watchers: dict[str, tuple[Session, list[Room]]] = {}
        self._copies = copies
        self._indicator = indicator
        self._bus = bus
        self._spawn = spawn
        #: shared rooms served here whose queue changed since their copy was written
        self._unannounced: set[str] = set()
        if copies is not None and bus is not None and spawn is not None:
            bus.on_announcement(QUEUES, self._elsewhere)

    async def watch(self, session: Session) -> None:
        """Start (or refresh) ``session``'s watch; it gets ``queues`` at once."""
        who = session.who
        if who.role is not Role.HOST:
            raise NotHost("only a host of this room may watch the team's queues")
        rooms = watched_rooms(await self.store.list_rooms(who.team_id), who.room)
        self.watchers[session.pid] = (session, rooms)
        await session.send(await self.body(rooms))

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
                await session.send(await self.body(entry[1]))

    async def body(self, rooms: list[Room]) -> dict[str, Any]:
        return {
            "type": "queues",
            "rooms": [
                {
                    "room": room.slug,
                    "name": room.name,
                    "kind": str(room.kind),
                    "waiting": await self._queue(room),
                }
                for room in rooms
            ],
        }

    async def _queue(self, room: Room) -> list[dict[str, Any]]:
        runtime = self.live(room.id)
        if runtime is not None:
            return runtime.queue()
        if self._copies is None:
            return []
        try:
            state = await self._copies(room)
        except Exception as err:  # Redis away: the queue shows empty until it is back
            log.warning("queue copy unreadable", room=room.id, error=str(err))
            return []
        if state is None:
            return []
        waiting: list[dict[str, Any]] = notice_body(lobby.queue_view(state), self._indicator)[
            "waiting"
        ]
        return waiting

    # -- across nodes ----------------------------------------------------------------

    def queue_changed(self, room: Room) -> None:
        """A queue served here changed: to be announced once its copy is written."""
        if self._copies is not None and room.kind in SUPERVISED_KINDS:
            self._unannounced.add(room.id)

    def written(self, room_ids: Collection[str]) -> None:
        """These rooms' copies were written: announce the changed queues among them."""
        if self._bus is None or self._spawn is None:
            return
        for room_id in self._unannounced.intersection(room_ids):
            self._unannounced.discard(room_id)
            self._spawn(self._bus.announce(QUEUES, room_id))

    def _elsewhere(self, room_id: str) -> None:
        """Another node changed this queue: its watchers here get it again."""
        if self._spawn is not None and self.live(room_id) is None and self.watching(room_id):
            self._spawn(self.changed(room_id))
