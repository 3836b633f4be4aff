"""The event bus: in-process by default, Redis pub/sub when scaled out.

Log entries travel on it (a team's presence and meeting events, already
sequenced by the store); a subscriber that misses some catches up from the
store's log by sequence number, so the bus never needs to be reliable itself.

Besides them, a node announces to the others that a record changed under
their feet (:meth:`Bus.announce`: a topic of :data:`TOPICS` and an id): a
room's settings, an account disabled, a shared queue. An announcement reaches the other
nodes only (the node that made the change has applied it already), at most
once; what it triggers has a slower fallback where one is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from rooms.presence import LogEntry

Listener = Callable[[LogEntry], None]

#: what a node announces to the others: a room whose record changed (its id),
#: a staff account disabled (its id), a shared room whose queue changed (its
#: id, once the room's copy holds the new queue)
ROOMS = "rooms"
ACCOUNTS = "accounts"
QUEUES = "queues"
TOPICS = (ROOMS, ACCOUNTS, QUEUES)


class Bus(Protocol):
    def subscribe(self, team_id: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` for each entry published for the team; returns unsubscribe."""

    async def publish(self, entries: Sequence[LogEntry]) -> None:
        """Deliver the entries, in order, to this node's listeners, then to the
        other nodes (a batch at once: one round trip for all of them)."""

    def on_meeting_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener`` with the id of each meeting another node changed (its
        record, or its status), whatever team: copies of it are stale."""

    async def announce(self, topic: str, subject: str) -> None:
        """Tell the other nodes that ``subject`` (an id) of ``topic`` changed."""

    def on_announcement(self, topic: str, listener: Callable[[str], None]) -> None:
        """Call ``listener`` with each id another node announced on ``topic``."""

    def on_reconnect(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` each time the bus is back after losing its connection
        (entries published meanwhile were missed: catch up from the store)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class InProcessBus:
    """Listeners called synchronously, in publish order (one process)."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}

    def subscribe(self, team_id: str, listener: Listener) -> Callable[[], None]:
        self._listeners.setdefault(team_id, []).append(listener)

        def unsubscribe() -> None:
            listeners = self._listeners.get(team_id, [])
            if listener in listeners:
                listeners.remove(listener)
            if not listeners:
                self._listeners.pop(team_id, None)

        return unsubscribe

    async def publish(self, entries: Sequence[LogEntry]) -> None:
        for entry in entries:
            for listener in list(self._listeners.get(entry.team_id, ())):
                listener(entry)

    def on_meeting_change(self, listener: Callable[[str], None]) -> None:
        return None  # no other node: this process's own changes refresh its copies

    async def announce(self, topic: str, subject: str) -> None:
        return None  # no other node

    def on_announcement(self, topic: str, listener: Callable[[str], None]) -> None:
        return None  # no other node announces anything

    def on_reconnect(self, listener: Callable[[], None]) -> None:
        return None  # in one process nothing is ever missed

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
