"""Where a room lives: on this node, or on another that shares the same Redis.

With one node (the embedded default) there is no placement: every room is here.
With several, :class:`signalling.cluster.RoomLeases` places each room on one
node, and a hello for a room that lives elsewhere ends in :class:`RoomElsewhere`
(``goaway`` ``room_elsewhere`` with the owner's URL), before any single-use
credential is spent.
"""

from __future__ import annotations

from typing import Protocol


class Placement(Protocol):
    """The rooms of this node, as the cluster decides them."""

    async def claim(self, room_id: str) -> str | None:
        """None if this node owns (or now took) the room; else the owner's URL."""

    def without_copy(self, room_id: str) -> bool:
        """Whether this node's last claim of the room found no copy of it to load
        (signalling/room_state.py): the room starts here. Asked once per claim."""

    def release_if_empty(self, room_id: str) -> None:
        """The room's last person left this node."""

    def people_changed(self) -> None:
        """Someone new is served here (the cluster keeps who each node serves)."""


class RoomElsewhere(Exception):
    """The room is owned by another node; the client reconnects to ``url``."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url
