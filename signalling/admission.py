"""Admission: turn a ``hello`` credential into who the participant is.

Every guest-credential failure raises the same TokenInvalid, whatever the
cause (wrong, expired, revoked, used, throttled keys aside), so a link reveals
nothing about the meeting behind it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from rooms import access
from rooms.credentials import Credential
from rooms.errors import BadMessage, Forbidden, NotFound, TokenInvalid
from rooms.meeting import Meeting, MeetingType
from rooms.presence import Role
from rooms.room import Room
from rooms.tokens import (
    digest_key,
    digest_link,
    digest_secret,
    digests_equal,
    new_rejoin_secret,
    normalise_key,
)
from signalling.cache import RecordCache
from signalling.protocol import Hello
from signalling.session import Identity
from signalling.settings import Settings
from signalling.staff_auth import StaffPrincipal, from_jwt
from signalling.store.base import Store
from signalling.throttle import WindowLimiter

log = structlog.get_logger("vestibule.admission")


@dataclass(frozen=True, slots=True)
class Admitted:
    who: Identity
    #: a new rejoin secret for the device that just redeemed a guest credential
    rejoin: str | None = None


class Admission:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.by_address = WindowLimiter(settings.key_attempts_per_address)
        self.by_room = WindowLimiter(settings.key_attempts_per_room)
        self.rooms: RecordCache[Room] = RecordCache()
        self.types: RecordCache[MeetingType] = RecordCache()
        #: replaced by the presence log's cache in create_app (shared on purpose)
        self.meetings: RecordCache[Meeting] = RecordCache(ttl=2.0)
        #: whether the owner of a consulting room invited this colleague in (the hub's)
        self.invited: Callable[[str, str, datetime], bool] = lambda room, staff, now: False

    async def admit(
        self, hello: Hello, *, cookie_staff: StaffPrincipal | None, address: str, now: datetime
    ) -> Admitted:
        if hello.token is not None:
            return await self._guest_by_link(hello, now)
        if hello.guest_key is not None:
            return await self._guest_by_key(hello, address, now)
        if hello.jwt is not None:
            staff = await from_jwt(self.store, self.settings, hello.jwt, now)
            return await self._staff(staff, hello, now)
        if cookie_staff is not None:
            return await self._staff(cookie_staff, hello, now)
        raise TokenInvalid()

    # -- guests --------------------------------------------------------------------

    async def _guest_by_link(self, hello: Hello, now: datetime) -> Admitted:
        assert hello.token is not None
        digest = digest_link(hello.token)
        if hello.rejoin:
            cred = await self.store.find_by_device(digest_secret(hello.rejoin), now)
            if cred is None or not digests_equal(cred.link_digest, digest):
                raise TokenInvalid()
            return Admitted(await self._guest(cred, hello))
        secret, device = new_rejoin_secret()
        cred = await self.store.redeem_link(digest, device, now)
        if cred is None:
            raise TokenInvalid()
        return Admitted(await self._guest(cred, hello), rejoin=secret)

    async def _guest_by_key(self, hello: Hello, address: str, now: datetime) -> Admitted:
        assert hello.guest_key is not None and hello.room is not None
        self.by_address.hit(address)
        self.by_room.hit(hello.room)
        room = await self.store.find_room_by_slug(hello.room)
        try:
            key = normalise_key(hello.guest_key)
        except Exception:  # any malformed key is just a wrong key from outside
            key = ""
        if room is None or not key:
            raise TokenInvalid()
        digest = digest_key(room.id, key)
        if hello.rejoin:
            cred = await self.store.find_by_device(digest_secret(hello.rejoin), now)
            if cred is None or not digests_equal(cred.key_digest, digest):
                raise TokenInvalid()
            return Admitted(await self._guest(cred, hello))
        secret, device = new_rejoin_secret()
        cred = await self.store.redeem_key(digest, device, now)
        if cred is None:
            raise TokenInvalid()
        return Admitted(await self._guest(cred, hello), rejoin=secret)

    async def _guest(self, cred: Credential, hello: Hello) -> Identity:
        meeting = await self.meetings.get(cred.meeting_id, self.store.get_meeting)
        room = await self.rooms.get(meeting.room_id, self.store.get_room)
        instructions = ""
        if meeting.type_id:
            try:
                mtype = await self.types.get(meeting.type_id, self.store.get_meeting_type)
                instructions = mtype.instructions
            except NotFound:
                instructions = ""
        name = (hello.name or "").strip() or meeting.guest.name
        return Identity(
            participant="g" + cred.id,
            role=Role.GUEST,
            name=name,
            team_id=cred.team_id,
            room=room,
            meeting_id=meeting.id,
            credential_id=cred.id,
            instructions=instructions,
        )

    # -- staff ---------------------------------------------------------------------

    async def _staff(self, staff: StaffPrincipal, hello: Hello, now: datetime) -> Admitted:
        if not hello.room:
            raise BadMessage("hello: staff need a room")
        room = await self.store.find_room_by_slug(hello.room)
        if room is None:
            raise NotFound("no such room")
        team = await self.store.get_team(room.team_id)
        if staff.account.team_id != team.id:
            raise Forbidden("not a room of your team")
        role = access.role_in_room(
            staff.account, team, room, invited=self.invited(room.id, staff.account.id, now)
        )
        who = Identity(
            participant=f"s{staff.account.id}.{room.id}",
            role=role,
            name=staff.account.name,
            team_id=team.id,
            room=room,
            staff_id=staff.account.id,
        )
        return Admitted(who)
