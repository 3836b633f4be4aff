"""``/ws``: the endpoint for people in rooms.

A connection's first message is a ``hello`` (signalling/handshake.py); every
message after it goes to the rooms (signalling/room_commands.py). The receive
loop, limits, heartbeat and the mapping of errors to the wire are the shared
endpoint layer's (signalling/endpoint.py).
"""

from __future__ import annotations

from rooms.errors import Unauthorized
from signalling import protocol as p
from signalling.connection import CloseCode, Connection
from signalling.endpoint import Upgrade
from signalling.handshake import Handshake
from signalling.placement import RoomElsewhere
from signalling.room_commands import RoomCommands
from signalling.session import Session
from signalling.staff_sockets import StaffSockets


class Hub:
    """The ``/ws`` channel of the endpoint layer."""

    name = "ws"
    app_ping = True

    def __init__(
        self, handshake: Handshake, rooms: RoomCommands, staff_sockets: StaffSockets | None = None
    ) -> None:
        self.handshake = handshake
        self.rooms = rooms
        #: where staff connections are registered, so disabling an account ends them
        self.staff_sockets = staff_sockets

    async def open(self, conn: Connection, upgrade: Upgrade) -> RoomConversation:
        return RoomConversation(self, conn, upgrade)


class RoomConversation:
    """One ``/ws`` connection: its hello, then the session's messages."""

    __slots__ = ("conn", "hub", "session", "upgrade")

    def __init__(self, hub: Hub, conn: Connection, upgrade: Upgrade) -> None:
        self.hub = hub
        self.conn = conn
        self.upgrade: Upgrade | None = upgrade
        self.session: Session | None = None

    @property
    def ready(self) -> bool:
        return self.session is not None

    async def on_message(self, message: p.ClientMessage) -> None:
        session = self.session
        if session is not None:
            await self.hub.rooms.handle(session, message)
            return
        if not isinstance(message, p.Hello):
            raise Unauthorized("send hello first")
        upgrade = self.upgrade
        assert upgrade is not None  # kept until the session exists
        try:
            self.session = await self.hub.handshake.greet(self.conn, message, upgrade)
            self.upgrade = None  # what the hello needed of the upgrade, kept no longer
            staff_id = self.session.who.staff_id
            if staff_id is not None and self.hub.staff_sockets is not None:
                self.hub.staff_sockets.add(staff_id, self.conn)
        except RoomElsewhere as moved:
            goaway = {"type": "goaway", "reason": "room_elsewhere", "url": moved.url}
            await self.conn.send({**goaway, "reconnect_after": 0})
            await self.conn.close(CloseCode.TRY_AGAIN_LATER, "room_elsewhere")

    def on_close(self) -> None:
        session = self.session
        sockets = self.hub.staff_sockets
        if session is not None and session.who.staff_id is not None and sockets is not None:
            sockets.discard(session.who.staff_id, self.conn)
        if session is not None and session.conn is self.conn and not session.ended:
            self.hub.rooms.sessions.detach(session)
