"""Rooms kept in Redis, so that another node can take a room over (scale-out).

The node that owns a room (signalling/cluster.py) keeps a copy of what the
room is in Redis, as it changes: the lobby (who is in the call, who waits, in
what order, the host's message) and every session of the room (who they are,
whether they joined, the digest of their resume secret). A node that takes the
room over (its owner died, or handed it over while draining) loads that copy:
a ``hello`` with a resume secret then works on any node within the resume
window, and everyone keeps their place.

Layout (``prefix`` is "vst:" by default; docs/operations.md, "Scale-out keys"):

- ``room-state:<room_id>``  a hash: ``lobby`` (JSON of the lobby state) and
  ``s:<participant>`` (JSON of each session), rewritten whole on each change;
- ``resume:<digest>``       the room a resume secret's session is in;
- ``outbox:<participant>``  the messages queued for a detached session (a list
  of JSON bodies, at most ``send_queue``), emptied when it resumes.

Every key lives ``2 × resume_window`` and the owner rewrites its rooms every
half window, so after the owner dies the copy outlives the resume window.

**Off the relay path.** A change only marks its room; one writer task writes
the marked rooms' latest state, their resume keys and the queued messages in
one script call (one per ROOMS_PER_WRITE rooms, sent together), so a burst of
changes costs one round trip, and a relayed ``signal`` writes nothing (unless
its addressee is detached: then it is queued for them, and that is written).
The copy is therefore a few milliseconds behind the room: a node killed in that moment
loses the last change.

**Fenced.** A room is written only while this node owns its lease (or nobody
does: Redis lost the keys); once another node holds it, this node's late
writes are refused in the same atomic script, so they never overwrite the
new owner's copy.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from rooms import lobby
from rooms.presence import Role
from rooms.room import Room
from signalling.cluster import owner_key, state_key
from signalling.store.codec import dump_json, load_json
from signalling.store.scripts import ScriptCall, evalsha_all

log = structlog.get_logger("vestibule.room_state")

#: pause before writing again after a failed write (Redis away)
RETRY_DELAY = 0.5

#: rooms written by one script call (a refresh of every room in use is split
#: into calls of this many, so no one call holds Redis up for long)
ROOMS_PER_WRITE = 100

# Write what changed, in one atomic step: rooms' copies, resume keys and queued
# messages. ARGV[1] our lease value, ARGV[2] the TTL (ms), ARGV[3] the outbox
# limit, ARGV[4] the number of rooms n, ARGV[5] the number of resume keys m;
# then, per room, its number of field arguments and those (field, value,
# field, value...); then each resume key's room id; then, per queued message,
# its JSON body ('' for "delivered, empty the outbox").
# KEYS: per room its lease and its copy; then the resume keys; then the outboxes.
# A room is rewritten only while the lease is ours or nobody's (fenced); no
# fields: the room is empty here, its copy is deleted.
_WRITE = """
local n, m = tonumber(ARGV[4]), tonumber(ARGV[5])
local at = 6
for i = 1, n do
  local count = tonumber(ARGV[at])
  local owner = redis.call('GET', KEYS[2 * i - 1])
  if not owner or owner == ARGV[1] then
    redis.call('DEL', KEYS[2 * i])
    if count > 0 then
      redis.call('HSET', KEYS[2 * i], unpack(ARGV, at + 1, at + count))
      redis.call('PEXPIRE', KEYS[2 * i], ARGV[2])
    end
  end
  at = at + count + 1
end
for j = 2 * n + 1, 2 * n + m do
  redis.call('SET', KEYS[j], ARGV[at], 'PX', ARGV[2])
  at = at + 1
end
for k = 2 * n + m + 1, #KEYS do
  if ARGV[at] == '' then
    redis.call('DEL', KEYS[k])
  else
    redis.call('RPUSH', KEYS[k], ARGV[at])
    redis.call('LTRIM', KEYS[k], -tonumber(ARGV[3]), -1)
    redis.call('PEXPIRE', KEYS[k], ARGV[2])
  end
  at = at + 1
end
return 1
"""


def resume_key(digest: str, prefix: str = "vst:") -> str:
    """The Redis key naming the room of the session with this resume digest."""
    return f"{prefix}resume:{digest}"


def outbox_key(pid: str, prefix: str = "vst:") -> str:
    """The Redis list of messages queued for a detached participant."""
    return f"{prefix}outbox:{pid}"


@dataclass(frozen=True, slots=True)
class SavedSession:
    """A session as the copy holds it."""

    session_id: str
    digest: str
    participant: str
    role: Role
    name: str
    team_id: str
    meeting_id: str | None
    staff_id: str | None
    credential_id: str | None
    instructions: str
    joined: bool

    def encode(self) -> str:
        return dump_json(
            {
                "id": self.session_id,
                "digest": self.digest,
                "participant": self.participant,
                "role": str(self.role),
                "name": self.name,
                "team": self.team_id,
                "meeting": self.meeting_id,
                "staff": self.staff_id,
                "credential": self.credential_id,
                "instructions": self.instructions,
                "joined": self.joined,
            }
        )

    @classmethod
    def decode(cls, raw: str | bytes) -> SavedSession:
        data = load_json(raw)
        return cls(
            session_id=str(data["id"]),
            digest=str(data["digest"]),
            participant=str(data["participant"]),
            role=Role(data["role"]),
            name=str(data["name"]),
            team_id=str(data["team"]),
            meeting_id=data.get("meeting"),
            staff_id=data.get("staff"),
            credential_id=data.get("credential"),
            instructions=str(data.get("instructions", "")),
            joined=bool(data["joined"]),
        )


def encode_lobby(state: lobby.LobbyState) -> str:
    """A lobby state as the copy holds it (its room is not: it is a record)."""
    return dump_json(
        {
            "people": {
                pid: [str(p.role), p.name, p.meeting_id, p.member_id, p.walk_in]
                for pid, p in state.people.items()
            },
            "call": list(state.call),
            "waiting": list(state.waiting),
            "message": state.host_message,
            "seats": {
                pid: [s.ticket, s.since.isoformat(), s.on_hold] for pid, s in state.seats.items()
            },
            "next_ticket": state.next_ticket,
        }
    )


def decode_lobby(room: Room, raw: str | bytes) -> lobby.LobbyState:
    data = load_json(raw)
    people = {
        pid: lobby.Person(pid, Role(role), name, meeting, member, bool(rest and rest[0]))
        for pid, (role, name, meeting, member, *rest) in data["people"].items()
    }
    seats = {
        pid: lobby.Seat(int(ticket), datetime.fromisoformat(since), bool(on_hold))
        for pid, (ticket, since, on_hold) in data["seats"].items()
    }
    return lobby.LobbyState(
        room=room,
        people=MappingProxyType(people),
        call=tuple(data["call"]),
        waiting=tuple(data["waiting"]),
        host_message=data["message"],
        seats=MappingProxyType(seats),
        next_ticket=int(data["next_ticket"]),
    )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a room's copy is to hold now: its hash fields and its resume digests
    (no fields: the room is empty and its copy goes)."""

    fields: Mapping[str, str]
    digests: Collection[str] = ()


@dataclass(slots=True)
class SavedRoom:
    """A room's copy, as loaded by a node taking the room over."""

    lobby: str | None
    sessions: list[SavedSession]
    #: participant -> the messages queued for them, oldest first
    outboxes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


class RoomStates:
    """The writer and reader of the rooms' copies in Redis (module docstring)."""

    def __init__(
        self,
        url: str,
        lease_value: str,
        *,
        window: float,
        outbox_limit: int,
        snapshot: Callable[[str], Snapshot],
        in_use: Callable[[], Collection[str]],
        prefix: str = "vst:",
        written: Callable[[set[str]], None] = lambda rooms: None,
    ) -> None:
        self.url = url
        self.lease_value = lease_value
        self.ttl_ms = int(window * 2000)
        #: every room in use is rewritten this often, which keeps its keys alive
        self.refresh_every = window / 2
        self.outbox_limit = outbox_limit
        self.prefix = prefix
        self._snapshot = snapshot
        #: told the rooms whose copies were just written
        self._written = written
        self._in_use = in_use
        self._dirty: set[str] = set()
        #: outbox operations in order: (participant, JSON body) or (participant, None)
        #: for "delivered, empty it"
        self._outbox: list[tuple[str, str | None]] = []
        self._wake = asyncio.Event()
        self._redis: Redis | None = None
        self._write: AsyncScript | None = None
        self._failing = False

    # -- what changed ------------------------------------------------------------------

    def changed(self, room_id: str) -> None:
        """The room's lobby or sessions changed: write its copy soon."""
        self._dirty.add(room_id)
        self._wake.set()

    def queued(self, pid: str, body: Mapping[str, Any]) -> None:
        """A message was queued for a detached participant."""
        self._outbox.append((pid, dump_json(body)))
        self._wake.set()

    def delivered(self, pid: str) -> None:
        """What was queued for the participant was delivered (or is moot)."""
        self._outbox.append((pid, None))
        self._wake.set()

    # -- the writer --------------------------------------------------------------------

    async def start(self) -> None:
        self._redis = Redis.from_url(self.url)
        self._write = self._redis.register_script(_WRITE)

    async def stop(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def run(self) -> None:
        """Write what changed, and refresh every room in use each half window."""
        loop = asyncio.get_running_loop()
        refresh_at = loop.time() + self.refresh_every
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, refresh_at - loop.time()))
            self._wake.clear()
            if loop.time() >= refresh_at:
                self._dirty.update(self._in_use())
                refresh_at = loop.time() + self.refresh_every
            try:
                await self.flush()
            except Exception as err:  # Redis away: keep what is owed, try again
                if not self._failing:
                    log.warning("room state cannot be written", error=str(err))
                self._failing = True
                await asyncio.sleep(RETRY_DELAY)
                self._wake.set()
            else:
                if self._failing:
                    # Redis may have lost what it had (a restart): write every room again
                    log.info("room state written again")
                    self._dirty.update(self._in_use())
                    self._wake.set()
                self._failing = False

    async def flush(self) -> None:
        """Write every marked room and queued message now (also at shutdown)."""
        if not self._dirty and not self._outbox:
            return
        rooms, self._dirty = self._dirty, set()
        ops, self._outbox = self._outbox, []
        try:
            await self._flush(rooms, ops)
        except BaseException:
            self._dirty |= rooms
            self._outbox[:0] = ops
            raise
        if rooms:
            self._written(rooms)

    async def _flush(self, rooms: set[str], ops: list[tuple[str, str | None]]) -> None:
        # One script call (EVALSHA, no SCRIPT EXISTS) per ROOMS_PER_WRITE rooms;
        # the queued messages ride with the last, in their order.
        assert self._write is not None
        order = list(rooms)
        chunks = [order[i : i + ROOMS_PER_WRITE] for i in range(0, len(order), ROOMS_PER_WRITE)]
        calls = [self._call(chunk, []) for chunk in chunks[:-1]]
        calls.append(self._call(chunks[-1] if chunks else [], ops))
        await evalsha_all(self._client(), self._write, calls)

    def _call(self, rooms: list[str], ops: list[tuple[str, str | None]]) -> ScriptCall:
        """The keys and arguments of one _WRITE call."""
        keys: list[str] = []
        room_args: list[Any] = []
        resume: list[tuple[str, str]] = []
        for room_id in rooms:
            snap = self._snapshot(room_id)
            keys += (owner_key(room_id, self.prefix), state_key(room_id, self.prefix))
            room_args.append(2 * len(snap.fields))
            for name, value in snap.fields.items():
                room_args += (name, value)
            resume.extend((resume_key(digest, self.prefix), room_id) for digest in snap.digests)
        keys.extend(key for key, _ in resume)
        keys.extend(outbox_key(pid, self.prefix) for pid, _ in ops)
        args: list[Any] = [self.lease_value, self.ttl_ms, self.outbox_limit, len(rooms)]
        args += (len(resume), *room_args)
        args.extend(room_id for _, room_id in resume)
        args.extend("" if body is None else body for _, body in ops)
        return keys, args

    # -- the reader --------------------------------------------------------------------

    async def room_of(self, digest: str) -> str | None:
        """The room of the session with this resume digest, if any node saved it."""
        raw = await self._client().get(resume_key(digest, self.prefix))
        return None if raw is None else _text(raw)

    async def holds(self, room_id: str, pid: str) -> bool:
        """Whether the room's copy has this participant's session."""
        found = await self._client().hexists(state_key(room_id, self.prefix), f"s:{pid}")
        return bool(found)

    async def lobby_of(self, room: Room) -> lobby.LobbyState | None:
        """The lobby of the room's copy (None if it has none: nobody is in it)."""
        raw = await self._client().hget(state_key(room.id, self.prefix), "lobby")
        return None if raw is None else decode_lobby(room, _text(raw))

    async def load(self, room_id: str) -> SavedRoom | None:
        """The room's copy (None if there is none), with its queued messages."""
        client = self._client()
        raw = await client.hgetall(state_key(room_id, self.prefix))
        if not raw:
            return None
        sessions: list[SavedSession] = []
        lobby_raw: str | None = None
        for name, value in raw.items():
            key = _text(name)
            if key == "lobby":
                lobby_raw = _text(value)
            elif key.startswith("s:"):
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    sessions.append(SavedSession.decode(value))
        saved = SavedRoom(lobby_raw, sessions)
        if sessions:
            pipe = client.pipeline(transaction=False)
            for session in sessions:
                pipe.lrange(outbox_key(session.participant, self.prefix), 0, -1)
            for session, bodies in zip(sessions, await pipe.execute(), strict=True):
                if bodies:
                    saved.outboxes[session.participant] = [load_json(b) for b in bodies]
        return saved

    def _client(self) -> Redis:
        if self._redis is None:
            raise RuntimeError("RoomStates is not started")
        return self._redis


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
