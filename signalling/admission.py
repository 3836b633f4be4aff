"""Admission: turn a ``hello`` credential into who the participant is.

Every guest-credential failure raises the same TokenInvalid, whatever the
cause (wrong, expired, revoked, used, throttled keys aside), so a link reveals
nothing about the meeting behind it; the one exception is a good link token
opened before its window, which is told when it opens (LinkNotOpen: only the
holder of the issued token can learn that, docs/decisions.md). A staff hello
into a room of another team is answered exactly like a hello into a room that
does not exist.

**Before the credential is spent.** With several nodes (a Placement), a guest's
room is found first, without consuming anything, and a guest whose room lives
on another node is sent there (RoomElsewhere) before the node that admits them
redeems the single-use link. Staff credentials are not consumed: staff are
authenticated first and placed afterwards, so a stranger cannot make a node
claim rooms of a team they are not in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn, Protocol, runtime_checkable

import structlog

from rooms import access
from rooms.credentials import Credential
from rooms.errors import BadMessage, LinkNotOpen, NotFound, TokenInvalid
from rooms.meeting import Meeting, MeetingType
from rooms.presence import Role
from rooms.room import Room
from rooms.room_admin import check_open
from rooms.tokens import (
    digest_key,
    digest_link,
    digest_secret,
    digests_equal,
    new_rejoin_secret,
    normalise_key,
    redeemable,
)
from signalling.cache import RecordCache
from signalling.placement import Placement, RoomElsewhere
from signalling.protocol import Hello
from signalling.session import Identity
from signalling.settings import Settings
from signalling.staff_auth import StaffPrincipal, from_jwt
from signalling.store.base import Store
from signalling.throttle import WindowLimiter
from signalling.walk_ins import WalkIns, is_walk_in

log = structlog.get_logger("vestibule.admission")


@dataclass(frozen=True, slots=True)
class Admitted:
    who: Identity
    #: a new rejoin secret for the device that just redeemed a guest credential
    rejoin: str | None = None


@runtime_checkable
class LinkRooms(Protocol):
    """A store that finds the room a redeemable link leads to in one step,
    without redeeming it (RedisStore.find_link_room)."""

    async def find_link_room(self, link_digest: str, now: datetime) -> str | None: ...


class Admission:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        meetings: RecordCache[Meeting],
        invited: Callable[[str, str, datetime], bool],
        placement: Placement | None,
        on_key_alarm: Callable[[], None] = lambda: None,
        on_walk_in: Callable[[str], None] = lambda outcome: None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.by_address = WindowLimiter(settings.key_attempts_per_address)
        #: wrong keys per room per minute; reaching the threshold raises the alarm,
        #: it never refuses anyone (signalling.throttle)
        self.wrong_keys_by_room = WindowLimiter(settings.key_attempts_per_room)
        self.on_key_alarm = on_key_alarm
        self.rooms: RecordCache[Room] = RecordCache()
        self.types: RecordCache[MeetingType] = RecordCache()
        #: the presence log's cache, shared on purpose: the ENTERED event that
        #: follows a guest's hello is about the meeting admission just read
        self.meetings = meetings
        #: whether the owner of a consulting room invited this colleague in
        self.invited = invited
        self.placement = placement
        self.walk_ins = WalkIns(store, settings, on_walk_in)
        #: the store's one-step link -> room lookup, if it has one (decided once:
        #: a runtime Protocol check per hello is measurable)
        self._link_room = store.find_link_room if isinstance(store, LinkRooms) else None

    async def admit(
        self, hello: Hello, *, cookie_staff: StaffPrincipal | None, address: str, now: datetime
    ) -> Admitted:
        """Who the hello's credential says this is (RoomElsewhere: not on this node)."""
        if self.placement is not None:
            room_id = await self._guest_room(hello, now)
            if room_id is not None:
                owner = await self.placement.claim(room_id)
                if owner is not None:
                    raise RoomElsewhere(owner)
        if hello.token is not None:
            return await self._guest_by_link(hello, now)
        if hello.guest_key is not None:
            return await self._guest_by_key(hello, address, now)
        if hello.jwt is not None:
            staff = await from_jwt(self.store, self.settings, hello.jwt, now)
            return await self._staff(staff, hello, now)
        if cookie_staff is not None:
            return await self._staff(cookie_staff, hello, now)
        if is_walk_in(hello):
            return Admitted(await self.walk_ins.admit(hello, address))
        raise TokenInvalid()

    async def _guest_room(self, hello: Hello, now: datetime) -> str | None:
        """The room a guest credential leads to, read without consuming it.

        None when it leads nowhere usable: the hello then goes through ordinary
        admission here, which refuses it with the one uniform error, so being
        redirected or not says nothing about a wrong, used or expired link."""
        if hello.guest_key is not None and hello.room is not None:
            # The slug is public (it is in the room's link); the key is checked,
            # and throttled, on the owner.
            room = await self.store.find_room_by_slug(hello.room)
            return room.id if room is not None else None
        if hello.token is None:
            return None
        digest = digest_link(hello.token)
        cred: Credential | None = None
        if hello.rejoin:
            found = await self.store.find_by_device(digest_secret(hello.rejoin), now)
            if found is not None and digests_equal(found.link_digest, digest):
                cred = found
        elif self._link_room is not None:
            return await self._link_room(digest, now)
        else:
            found = await self.store.find_link(digest)
            if found is not None and redeemable(found, now):
                cred = found
        if cred is None:
            return None
        try:
            return (await self.store.get_meeting(cred.meeting_id)).room_id
        except NotFound:
            return None

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
        # one store round trip: the redemption brings the meeting and room along,
        # fresh, so the caches _guest reads them from hold them now
        entry = await self.store.redeem_link_entry(digest, device, now)
        if entry is None:
            await self._refuse_link(digest, now)
        self.meetings.put(entry.meeting.id, entry.meeting)
        self.rooms.put(entry.room.id, entry.room)
        return Admitted(await self._guest(entry.credential, hello), rejoin=secret)

    async def _refuse_link(self, digest: str, now: datetime) -> NoReturn:
        """Why a link was not redeemed: a link that is good but early is told
        when it opens (LinkNotOpen); anything else is the uniform TokenInvalid.
        Only the holder of a link can learn its time: a guessed token matches
        nothing. Guest keys never get this answer (they are short, and typed)."""
        found = await self.store.find_link(digest)
        good = found is not None and found.revoked_at is None and found.redeemed_at is None
        if found is not None and good and now < found.not_before:
            raise LinkNotOpen(found.not_before)
        raise TokenInvalid()

    async def _guest_by_key(self, hello: Hello, address: str, now: datetime) -> Admitted:
        assert hello.guest_key is not None and hello.room is not None
        self.by_address.hit(address)
        try:
            return await self._redeem_key(hello, now)
        except TokenInvalid:
            self._wrong_key(hello.room)
            raise

    def _wrong_key(self, slug: str) -> None:
        """Count a wrong key for the room; once a minute's wrong keys reach the
        threshold, raise the alarm (a metric and one warning line per window)."""
        if self.wrong_keys_by_room.count(slug) == self.wrong_keys_by_room.limit:
            self.on_key_alarm()
            log.warning(
                "guest keys guessed for one room",
                room=slug[:64],
                threshold=self.wrong_keys_by_room.limit,
            )

    async def _redeem_key(self, hello: Hello, now: datetime) -> Admitted:
        assert hello.guest_key is not None and hello.room is not None
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
        check_open(room)
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
        if staff.account.team_id != room.team_id:
            # exactly as for an unknown room: a name says nothing about other teams
            raise NotFound("no such room")
        check_open(room)
        team = await self.store.get_team(room.team_id)
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
