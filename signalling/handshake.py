"""The ``/ws`` handshake: a ``hello`` in, a session and its ``welcome`` out.

One hello carries one credential (docs/protocol.md). Admission turns a link
token, guest key, JWT or the session cookie into an identity (and may send the
client to the node its room lives on); the place is then new, taken over from a
connection the same person still had (a reload, a second tab), or, with a
resume secret, the session kept for the resume window after a drop, with what
was queued for it replayed in order.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import structlog

from rooms.errors import NotFound, TokenInvalid
from rooms.presence import PresenceKind
from rooms.tokens import digest_secret
from signalling import protocol as p
from signalling.admission import Admission
from signalling.clock import Clock
from signalling.connection import CloseCode, CloseReason, Connection
from signalling.endpoint import Upgrade
from signalling.ice import ice_servers
from signalling.metrics import Metrics
from signalling.placement import RoomElsewhere
from signalling.room_commands import RoomCommands
from signalling.session import Session
from signalling.settings import Settings
from signalling.staff_auth import StaffPrincipal, check_may_act, from_session_cookie
from signalling.store.base import Store
from signalling.walk_ins import walked_in

log = structlog.get_logger("vestibule.handshake")


class Handshake:
    """Greets a ``hello``: the session it opens or takes over, and its welcome."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        metrics: Metrics,
        admission: Admission,
        rooms: RoomCommands,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.admission = admission
        self.rooms = rooms
        self.sessions = rooms.sessions

    async def greet(self, conn: Connection, hello: p.Hello, upgrade: Upgrade) -> Session:
        """The session ``hello`` opens (welcome sent), or a VestibuleError;
        RoomElsewhere when the room lives on another node."""
        started = time.perf_counter()
        if hello.resume is not None:
            session = await self._resume(conn, hello)
        else:
            session = await self._enter(conn, hello, upgrade)
        self.metrics.join_latency.observe(time.perf_counter() - started)
        return session

    async def _enter(self, conn: Connection, hello: p.Hello, upgrade: Upgrade) -> Session:
        now = self.clock.now()
        self.rooms.recorder.check_capacity()
        cookie_staff: StaffPrincipal | None = None
        no_credential = hello.token is None and hello.guest_key is None and hello.jwt is None
        if upgrade.cookie and no_credential:
            cookie_staff = await from_session_cookie(self.store, self.settings, upgrade.cookie, now)
        admitted = await self.admission.admit(
            hello, cookie_staff=cookie_staff, address=upgrade.address, now=now
        )
        who = admitted.who
        placement = self.rooms.placement
        if placement is not None:
            owner = await placement.claim(who.room.id)
            if owner is not None:
                # The room lives on another node: all of a room's people meet on one
                # node, so relay never crosses Redis (docs/decisions.md).
                raise RoomElsewhere(owner)
            await self.rooms.adopt(who.room.id)  # taken over: its people first
        resume = secrets.token_urlsafe(24)
        existing = self.sessions.get(who.participant)
        if existing is not None:
            old = self.sessions.take_over(existing, conn, digest_secret(resume))
            if old is not None and old is not conn:
                await old.send({"type": "goaway", "reason": "replaced", "reconnect_after": None})
                old.close_soon(CloseCode.POLICY, CloseReason.REPLACED)
            session = existing
        else:
            session = Session(
                "s" + secrets.token_hex(8), who, digest_secret(resume), self.settings.send_queue
            )
            self.sessions.add(session)
            self.sessions.attach(session, conn)
            self.metrics.sessions.set(len(self.sessions))
            if placement is not None:
                placement.people_changed()  # the cluster learns of them at once
            # in the log before the welcome that tells the client it entered
            await self.rooms.record(session, PresenceKind.ENTERED)
        self.rooms.changed(session)
        self._bind(conn, session)
        log.info("session entered", role=str(who.role), **conn.bound)
        welcome = self._welcome(session, resume, hello.ref, await self._address(session))
        if admitted.rejoin is not None:
            welcome["rejoin"] = admitted.rejoin
        await conn.send(welcome)
        if session.joined:
            place = self.rooms.place_of(session)
            if place is not None:
                await session.send(place)
        elif walked_in(who):
            # A walk-in has nothing to wait for but a host: they queue at once
            # (docs/protocol.md, "Walk-ins"); their media check runs meanwhile.
            await self.rooms.join(session)
        return session

    async def _resume(self, conn: Connection, hello: p.Hello) -> Session:
        assert hello.resume is not None
        session = self.sessions.by_resume(hello.resume)
        if session is None or session.ended:
            session = await self._resume_elsewhere(hello.resume)
        if session is None or session.ended:
            raise TokenInvalid()
        if session.who.staff_id is not None:
            await self._check_staff(session)
        old = session.conn
        self.sessions.attach(session, conn)
        if old is not None and old is not conn:
            old.close_soon(CloseCode.POLICY, CloseReason.REPLACED)
        self._bind(conn, session)
        log.info("session resumed", queued=len(session.outbox), **conn.bound)
        body = self._welcome(session, hello.resume, hello.ref, await self._address(session))
        body["resumed"] = True
        await conn.send(body)
        while session.outbox:
            await conn.send(session.outbox.popleft())
        restored = self.rooms.restored(session)
        self.rooms.delivered(session)
        if restored and session.joined:
            # This node took the room over while they were away: the queue may
            # have moved; a call goes on (media never passed through the server).
            place = self.rooms.place_of(session)
            if place is not None and place["type"] == "waiting":
                await conn.send(place)
        return session

    async def _check_staff(self, session: Session) -> None:
        """TokenInvalid, and the session ends, if its account may no longer act
        (disabled, or its client account is): resuming is acting again."""
        assert session.who.staff_id is not None
        try:
            await check_may_act(self.store, await self.store.get_staff(session.who.staff_id))
        except (TokenInvalid, NotFound):
            await self.rooms.leave(session, CloseReason.TOKEN_INVALID, CloseCode.POLICY)
            raise TokenInvalid() from None

    async def _resume_elsewhere(self, secret: str) -> Session | None:
        """With Redis, a session another node saved (signalling/room_state.py):
        its room is claimed here (RoomElsewhere if another live node has it) and
        its copy loaded, unless this node has the room already."""
        states, placement = self.rooms.states, self.rooms.placement
        if states is None or placement is None:
            return None
        room_id = await states.room_of(digest_secret(secret))
        if room_id is None:
            return None
        owner = await placement.claim(room_id)
        if owner is not None:
            raise RoomElsewhere(owner)
        await self.rooms.adopt(room_id)
        return self.sessions.by_resume(secret)

    @staticmethod
    def _bind(conn: Connection, session: Session) -> None:
        who = session.who
        conn.bound.update(
            team=who.team_id, room=who.room.id, meeting=who.meeting_id, participant=who.participant
        )

    async def _address(self, session: Session) -> str:
        """The address of a guest's meeting type, for the waiting screen ("" for
        staff, a meeting without a type or a type without an address); read
        through admission's caches, which the guest's hello has just filled."""
        meeting_id = session.who.meeting_id
        if meeting_id is None:
            return ""
        try:
            meeting = await self.admission.meetings.get(meeting_id, self.store.get_meeting)
            if meeting.type_id is None:
                return ""
            mtype = await self.admission.types.get(meeting.type_id, self.store.get_meeting_type)
        except NotFound:
            return ""
        return mtype.address

    def _welcome(self, session: Session, resume: str, ref: p.Ref, address: str) -> dict[str, Any]:
        who = session.who
        now = time.time()
        body: dict[str, Any] = {
            "type": "welcome",
            "session": session.id,
            "participant": who.participant,
            "role": str(who.role),
            "room": who.room.slug,
            "meeting": who.meeting_id,
            "name": who.name,
            "instructions": who.instructions,
            "address": address,
            "ice_servers": ice_servers(self.settings, who.participant, now),
            "resume": resume,
            "heartbeat": self.settings.heartbeat,
            "server_time": now,
        }
        if ref is not None:
            body["ref"] = ref
        return body
