"""The event bus: in-process by default, Redis pub/sub when scaled out.

Only log entries travel on it (a team's presence and meeting events, already
sequenced by the store); a subscriber that misses some catches up from the
store's log by sequence number, so the bus never needs to be reliable itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from rooms.presence import LogEntry

Listener = Callable[[LogEntry], None]


class Bus(Protocol):
    def subscribe(self, team_id: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` for each entry published for the team; returns unsubscribe."""

    async def publish(self, entry: LogEntry) -> None: ...

    def on_meeting_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener`` with the id of each meeting another node changed (its
        record, or its status), whatever team: copies of it are stale."""

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

    async def publish(self, entry: LogEntry) -> None:
        for listener in list(self._listeners.get(entry.team_id, ())):
            listener(entry)

    def on_meeting_change(self, listener: Callable[[str], None]) -> None:
        return None  # no other node: this process's own changes refresh its copies

    def on_reconnect(self, listener: Callable[[], None]) -> None:
        return None  # in one process nothing is ever missed

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
