"""The websockets each staff account has open on this node, and ending them.

When an administrator disables a member (or a manager a client account), every
credential of theirs is refused from then on, on every node, because each check
reads the account from the store (signalling.staff_auth). A websocket already
open was authenticated before that; this registry closes it:

- on the node that made the change at once (:meth:`StaffSockets.end_staff`),
  which announces the account on the bus (topic ``accounts``,
  signalling.bus): every other node ends it at once too;
- on every node by a sweep every :data:`RECHECK` seconds, which reads each
  connected account once (and its team) and closes the connections of those
  that may no longer act: the fallback for a node that missed the
  announcement. One store read per connected staff account per sweep.

Ending an account here also ends its ``/ws`` sessions on this node, attached
or held for their resume window (``end_sessions``: they leave their rooms),
so nobody resumes into a room with a disabled account; a resume is refused
anyway, since it checks the account (signalling.handshake).

A connection is closed 1008 ``token_invalid``, as one whose credential is
refused at the handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

from rooms.errors import NotFound, TokenInvalid
from signalling.bus import ACCOUNTS, Bus
from signalling.connection import CloseCode, CloseReason, Connection
from signalling.staff_auth import check_may_act
from signalling.store.base import Store

log = structlog.get_logger("vestibule.staff_sockets")

#: seconds between two sweeps: how long a disabled account's websocket may stay
#: open on a node other than the one where it was disabled
RECHECK = 15.0


class StaffSockets:
    """This node's staff websockets, by account id."""

    def __init__(
        self,
        store: Store,
        *,
        recheck: float = RECHECK,
        bus: Bus | None = None,
        end_sessions: Callable[[str], Awaitable[int]] | None = None,
        spawn: Callable[[Coroutine[Any, Any, None]], None] | None = None,
    ) -> None:
        self.store = store
        self.recheck = recheck
        self._by_staff: dict[str, set[Connection]] = {}
        self._bus = bus
        self._end_sessions = end_sessions
        if bus is not None and spawn is not None:
            bus.on_announcement(ACCOUNTS, lambda staff_id: spawn(self._disabled(staff_id)))

    def add(self, staff_id: str, conn: Connection) -> None:
        self._by_staff.setdefault(staff_id, set()).add(conn)

    def discard(self, staff_id: str, conn: Connection) -> None:
        conns = self._by_staff.get(staff_id)
        if conns is None:
            return
        conns.discard(conn)
        if not conns:
            del self._by_staff[staff_id]

    def count(self, staff_id: str) -> int:
        return len(self._by_staff.get(staff_id, ()))

    async def end_staff(self, staff_id: str) -> int:
        """The account was disabled: end it here, then on every other node; how
        many websockets closed here."""
        ended = await self.end_here(staff_id)
        if self._bus is not None:
            await self._bus.announce(ACCOUNTS, staff_id)
        return ended

    async def _disabled(self, staff_id: str) -> None:
        """Another node disabled the account."""
        await self.end_here(staff_id)

    async def end_here(self, staff_id: str) -> int:
        """End the ``/ws`` sessions of ``staff_id`` on this node and close every
        websocket it has open here; how many websockets."""
        if self._end_sessions is not None:
            await self._end_sessions(staff_id)
        conns = list(self._by_staff.pop(staff_id, ()))
        for conn in conns:
            await conn.close(CloseCode.POLICY, CloseReason.TOKEN_INVALID)
        if conns:
            log.info("staff connections ended", staff=staff_id, connections=len(conns))
        return len(conns)

    async def sweep(self) -> int:
        """Close the connections of every account here that may no longer act."""
        ended = 0
        for staff_id in list(self._by_staff):
            try:
                await check_may_act(self.store, await self.store.get_staff(staff_id))
            except (TokenInvalid, NotFound):
                ended += await self.end_here(staff_id)
        return ended

    async def run(self) -> None:
        """Sweep every ``recheck`` seconds (owned by the app)."""
        while True:
            await asyncio.sleep(self.recheck)
            with contextlib.suppress(Exception):
                await self.sweep()
