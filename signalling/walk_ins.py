"""Walk-ins: a patient without an appointment gives their name and waits.

``{"type":"hello","room":SLUG,"name":NAME}`` with no credential (and no staff
session cookie) is a walk-in. The rules are rooms.room_admin.takes_walk_ins;
this module adds what the shell owns: the throttles and the identity.

A hello into a room that does not exist, does not take walk-ins or is
archived gets the one uniform TokenInvalid, the same answer as a hello with no
credential always had, so walk-ins reveal no room. Both throttles count every
walk-in hello before the room is looked up, whatever the room, for the same
reason. They are fixed windows of a minute in this node's memory
(signalling.throttle): per client address, and per room slug, so a flood at
one room's page cannot fill its queue faster than a host can read it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from rooms.errors import RateLimited, TokenInvalid
from rooms.presence import Role
from rooms.room_admin import takes_walk_ins
from rooms.validate import check_name
from signalling.protocol import Hello
from signalling.session import Identity
from signalling.settings import Settings
from signalling.store.base import Store
from signalling.throttle import WindowLimiter

#: a walk-in's participant id: "w" and 16 hex digits (no meeting to derive it from)
WALK_IN_PREFIX = "w"


def is_walk_in(hello: Hello) -> bool:
    """Whether ``hello`` asks to walk in: a room and a name, no credential."""
    no_credential = all(x is None for x in (hello.token, hello.guest_key, hello.jwt, hello.resume))
    return no_credential and bool(hello.room) and hello.name is not None


def walked_in(who: Identity) -> bool:
    """Whether a session's identity is a walk-in's (a guest with no meeting)."""
    return who.role is Role.GUEST and who.meeting_id is None


class WalkIns:
    """Turns a walk-in hello into a guest identity, or refuses it."""

    def __init__(self, store: Store, settings: Settings, on_outcome: Callable[[str], None]) -> None:
        self.store = store
        self.by_address = WindowLimiter(settings.walk_ins_per_address)
        self.by_room = WindowLimiter(settings.walk_ins_per_room)
        #: counts each outcome (``admitted``, ``throttled``, ``refused``) for the metric;
        #: ``admitted`` is counted before the room is placed (RoomElsewhere may follow)
        self.on_outcome = on_outcome

    async def admit(self, hello: Hello, address: str) -> Identity:
        assert hello.room is not None and hello.name is not None
        name = check_name(hello.name)
        try:
            self.by_address.hit(address)
            self.by_room.hit(hello.room)
        except RateLimited:
            self.on_outcome("throttled")
            raise
        room = await self.store.find_room_by_slug(hello.room)
        if room is None or not takes_walk_ins(room):
            self.on_outcome("refused")
            raise TokenInvalid()
        self.on_outcome("admitted")
        return Identity(
            participant=WALK_IN_PREFIX + secrets.token_hex(8),
            role=Role.GUEST,
            name=name,
            team_id=room.team_id,
            room=room,
        )
