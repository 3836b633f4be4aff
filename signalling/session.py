"""Sessions: a participant's place on this node, attached to a connection or
held for the resume window after it dropped.

While detached, messages for the session queue (bounded); a ``hello`` with the
resume secret reattaches it and replays them in order. Past the window, or
past the queue bound, the session ends and the participant has left. With
Redis, the rooms keep a copy of every session and of what is queued for it
(signalling/room_state.py), so another node can take the session over.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rooms.presence import Role
from rooms.room import Room
from rooms.tokens import digest_secret
from signalling.connection import Connection


@dataclass(slots=True)
class Identity:
    """Who a session is, as admission decided it."""

    participant: str
    role: Role
    name: str
    team_id: str
    room: Room
    meeting_id: str | None = None
    staff_id: str | None = None
    credential_id: str | None = None
    instructions: str = ""

    def __post_init__(self) -> None:
        # The room's own copy of an equal team id: admission reads the two from
        # different records, and a session would otherwise keep both strings.
        if self.team_id == self.room.team_id:
            self.team_id = self.room.team_id


class Session:
    __slots__ = (
        "_expiry",
        "_outbox",
        "conn",
        "ended",
        "id",
        "joined",
        "on_overflow",
        "on_queued",
        "outbox_limit",
        "pid",
        "resume_digest",
        "who",
    )

    def __init__(self, session_id: str, who: Identity, resume_digest: str, outbox_limit: int):
        self.id = session_id
        self.who = who
        #: the participant id (never changes, even when the session moves rooms)
        self.pid = who.participant
        self.conn: Connection | None = None
        self.resume_digest = resume_digest
        self._outbox: deque[Mapping[str, Any]] | None = None
        self.outbox_limit = outbox_limit
        #: has sent ``join`` (is in the room's lobby: waiting or in the call)
        self.joined = False
        self._expiry: asyncio.TimerHandle | None = None
        self.ended = False
        #: called once when the detached outbox is full (SessionRegistry.add sets it)
        self.on_overflow: Callable[[Session], None] | None = None
        #: called with each message queued while detached (SessionRegistry.add sets it)
        self.on_queued: Callable[[Session, Mapping[str, Any]], None] | None = None

    @property
    def outbox(self) -> deque[Mapping[str, Any]]:
        """What was queued while detached, oldest first. Made on first use: most
        sessions never detach, and an empty deque is 0.7 KB of every idle one."""
        if self._outbox is None:
            self._outbox = deque()
        return self._outbox

    async def send(self, body: Mapping[str, Any]) -> bool:
        """Deliver now, or queue while detached; False if the queue overflowed."""
        conn = self.conn
        if conn is not None and not conn.closed:
            return await conn.send(body)
        if len(self.outbox) >= self.outbox_limit:
            # Never drop a message silently: a session that cannot hold what it
            # missed ends now, as if its resume window had passed.
            if self.on_overflow is not None and not self.ended:
                self.on_overflow(self)
            return False
        self.outbox.append(body)
        if self.on_queued is not None:
            self.on_queued(self, body)
        return True


class SessionRegistry:
    """Every session of this node, by participant id and by resume secret."""

    def __init__(
        self,
        window: float,
        on_expire: Callable[[Session], None],
        on_queued: Callable[[Session, Mapping[str, Any]], None] | None = None,
    ) -> None:
        self.window = window
        self._on_expire = on_expire
        self._on_queued = on_queued
        self.by_pid: dict[str, Session] = {}
        self._by_resume: dict[str, Session] = {}
        #: bound once: ``self._overflowed`` makes a new 64-byte method object each
        #: time, which every session would keep
        self._on_overflow = self._overflowed

    def __len__(self) -> int:
        return len(self.by_pid)

    def add(self, session: Session) -> None:
        session.on_overflow = self._on_overflow
        session.on_queued = self._on_queued
        self.by_pid[session.pid] = session
        self._by_resume[session.resume_digest] = session

    def get(self, pid: str) -> Session | None:
        return self.by_pid.get(pid)

    def by_resume(self, secret: str) -> Session | None:
        return self._by_resume.get(digest_secret(secret))

    def detach(self, session: Session) -> None:
        """The connection dropped: hold the session for the resume window."""
        session.conn = None
        loop = asyncio.get_running_loop()
        if session._expiry is not None:
            session._expiry.cancel()
        session._expiry = loop.call_later(self.window, self._expire, session)

    def take_over(
        self, session: Session, conn: Connection, resume_digest: str
    ) -> Connection | None:
        """The same person again on a new connection (a reload, a second tab, the
        redeeming device rejoining): it takes over the place under a new resume
        secret. Returns the connection it replaced, if one was still attached."""
        old = session.conn
        self.remove(session)
        session.ended = False
        session.resume_digest = resume_digest
        self.add(session)
        self.attach(session, conn)
        return old

    def attach(self, session: Session, conn: Connection) -> None:
        if session._expiry is not None:
            session._expiry.cancel()
            session._expiry = None
        session.conn = conn

    def remove(self, session: Session) -> None:
        session.ended = True
        if session._expiry is not None:
            session._expiry.cancel()
            session._expiry = None
        if self.by_pid.get(session.pid) is session:
            del self.by_pid[session.pid]
        self._by_resume.pop(session.resume_digest, None)

    def _overflowed(self, session: Session) -> None:
        session.on_overflow = None  # once
        if session._expiry is not None:
            session._expiry.cancel()
        self._expire(session)

    def _expire(self, session: Session) -> None:
        session._expiry = None
        if session.conn is None and not session.ended:
            self._on_expire(session)
