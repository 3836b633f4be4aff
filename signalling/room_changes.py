"""A room's record changed: the live room takes it at once, on every node.

A room administrator's change (its name, ``show_position``, ``walk_ins``,
archived) is stored, then applied to the live room on this node and announced
on the bus (topic ``rooms``, signalling.bus): the node that serves the room,
whichever it is, reads the record again and its live room uses it from then
on. Waiting patients are told their place again when whether it is shown
changed (signalling.room_commands, ``room_changed``). Every node also forgets
its admission cache's copy of the room, so a hello checks the new record.

An announcement is delivered at most once; a node that missed one (Redis
away at that moment) reads the room again when the room is next loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from rooms.errors import NotFound
from rooms.room import Room
from signalling.bus import ROOMS, Bus
from signalling.room_commands import RoomCommands
from signalling.store.base import Store

log = structlog.get_logger("vestibule.room_changes")


class RoomChanges:
    """Applies a changed room here and announces it to the other nodes."""

    def __init__(
        self,
        store: Store,
        bus: Bus,
        rooms: RoomCommands,
        forget: Callable[[str], None],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self.store = store
        self.bus = bus
        self.rooms = rooms
        self._forget = forget
        self._spawn = spawn
        bus.on_announcement(ROOMS, self._announced)

    async def changed(self, room: Room) -> None:
        """``room`` (as stored now) changed: apply it here, then tell the other nodes."""
        self._forget(room.id)
        self.rooms.room_changed(room)
        await self.bus.announce(ROOMS, room.id)

    def _announced(self, room_id: str) -> None:
        self._forget(room_id)
        if room_id in self.rooms.rooms:
            self._spawn(self._reload(room_id))

    async def _reload(self, room_id: str) -> None:
        try:
            room = await self.store.get_room(room_id)
        except NotFound:
            return
        self.rooms.room_changed(room)
        log.info("room changed on another node", room=room_id)
