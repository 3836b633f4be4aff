"""Scale-out: several hub processes sharing one Redis (docs/architecture.md).

A room lives on one node. The node that first admits someone to a room takes a
lease on it in Redis, ``vst:room-owner:<room_id>`` = ``<node_id>|<public url>``
(``SET NX PX``), keeps renewing it while it has people in the room, and
deletes it (compare-and-delete, so never someone else's) when the room empties
or the node shuts down. Any other node that gets a ``hello`` for the room
answers ``goaway`` ``room_elsewhere`` with the owner's URL and the client
reconnects there, so the people of a room always meet on one node and the
relay between them never touches Redis. Records, single-use tokens and the
presence log are shared through RedisStore; presence reaches dashboards on
every node through signalling.redis_bus. docs/decisions.md, "Scale-out: a room
lives on one node", explains the choice.

**Before the credential is spent.** A guest's link token or guest key is
consumed by the node that admits them, so admission (signalling/admission.py)
finds the guest's room and claims it before redeeming anything.

**One claim per join.** Admission claims a guest's room and the handshake
claims it again a moment later; a claim this node made less than
CLAIM_REMEMBER ago (and within its own liveness) stands for the second without
a round trip (RoomLeases.claim). The claim also says whether the room has a
copy in Redis, so a room nobody is in is not read (RoomLeases.without_copy).

**Lease lifecycle** (one per room on this node)::

    (none) --claim: SET NX PX, or take over from a dead owner--> held
    held --renew every TTL/3 while people are here--> held
    held --renewal finds the key gone (Redis restarted, lost it)--> held (re-claimed)
    held --room empty, or shutdown: compare-and-delete (the room's copy too)--> (none)
    held --renewal or claim finds another owner--> (none): its people are sent there
    held --drain: handed to a live node, named in its hand-over list--> (none)

**Liveness.** Every node keeps ``vst:node-alive:<node_id>`` alive with a short
TTL (ALIVE_TTL), refreshed several times within it. A claim for a room whose
owner's liveness key is gone takes the lease over at once, in the same atomic
script, so the rooms of a crashed node are reachable again after ALIVE_TTL, not
after the lease's TTL, and nobody is sent to a dead node meanwhile. Two nodes
racing for a dead node's room: the script runs atomically, exactly one wins.

**A crashed node's people are taken over, or leave.** Each node keeps the
people it serves in ``vst:node-sessions:<node_id>`` (brought up to date every
ALIVE_EVERY). A node that finds such a hash of a node whose liveness key is
gone takes it, in one atomic script (exactly one node does), and hands those
not meanwhile served by a live node to ``on_orphans``: the rooms (RoomCommands)
take over each room that has a copy in Redis (signalling/room_state.py) and
record ``left`` for the others, so the dashboard does not show patients of a
dead node as present for ever. A node that stops cleanly deletes its own hash.

**Drain.** A stopping node hands each of its leases to a live node
(``hand_over``: only a lease still its own) and appends the room to that
node's ``vst:node-handover:<node_id>`` list, which the receiving node empties
at every beat and passes to ``on_handed`` (signalling/drain.py).

**Never split.** A lease is given up only when another node actually holds it.
When Redis loses the keys (a restart without persistence), a node that still
has people in a room re-claims its lease at the next renewal. A node that finds
another owner (it stalled past ALIVE_TTL and the room was taken over) sends its
people there (``goaway`` ``room_elsewhere``) rather than keep a second copy of
the room.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from rooms.errors import Busy
from signalling.store.group_commit import GroupCommit
from signalling.store.scripts import ScriptCall, evalsha_all

log = structlog.get_logger("vestibule.cluster")

#: how long a lease outlives its node's last renewal. It bounds how long the rooms
#: of a crashed node stay unreachable (clients are sent to a dead URL until it
#: expires), so it is short; it must still ride out a stalled event loop or a Redis
#: failover, which take seconds, not tens of seconds.
LEASE_TTL = 10.0
#: how long a node counts as alive after its last heartbeat; a claim for a room of
#: a node silent for longer takes the room over. Refreshed every ALIVE_EVERY, so
#: three beats in a row must fail (or the loop stall for 2 s) before it lapses.
ALIVE_TTL = 2.0
ALIVE_EVERY = 0.5
#: a claim this node made this recently stands for a second claim of the same
#: room (the handshake claims the room admission claimed a moment before): no
#: round trip. Well inside CLAIM_GRACE, so a room claimed from memory is not
#: released before its session is registered, and inside ALIVE_TTL, so no other
#: node could have taken the room over since (claim)
CLAIM_REMEMBER = 0.5

#: a room claimed this recently is kept even with nobody in it yet: the claim comes
#: before admission's store reads, and the session is registered only after them
#: (milliseconds; a second leaves room for a slow store)
CLAIM_GRACE = 1.0

# Claim a room, refresh our own claim, or take over the lease of a node whose
# liveness key has expired, or of an earlier process under our own node id
# (restarted, perhaps at another address); in one atomic step. Returns the
# owner's value and, when the room is ours now, whether it has a copy
# (KEYS[2], signalling/room_state.py: 1 or 0). ARGV: our value, the lease TTL
# (ms), the liveness key prefix, our node id.
_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {owner, redis.call('EXISTS', KEYS[2])}
end
if owner then
  local node = string.match(owner, '^([^|]*)')
  if node ~= ARGV[4] and redis.call('EXISTS', ARGV[3] .. node) == 1 then return {owner, 0} end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {ARGV[1], redis.call('EXISTS', KEYS[2])}
"""

# Renew a lease that is ours ("="), re-claim it if the key is gone ("+": Redis
# lost it), else return the value of the node that holds it now.
_RENEW = """
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return '='
end
if not owner then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return '+'
end
return owner
"""

# Take a dead node's people: its sessions hash, only if its liveness key is gone
# (KEYS[1] the hash, KEYS[2] its node's liveness key), deleted in the same step.
_REAP = """
if redis.call('EXISTS', KEYS[2]) == 1 then return {} end
local people = redis.call('HVALS', KEYS[1])
redis.call('DEL', KEYS[1])
return people
"""

# Release a lease only if it is still ours: never delete another node's. The
# room is empty, so its copy (signalling/room_state.py, KEYS[2]) goes with it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# Hand a lease of ours to another node (drain), and tell that node in its
# hand-over list. KEYS[1] the lease, KEYS[2] the list; ARGV: our value, the
# other node's value, the lease TTL (ms), the room id.
_HAND_OVER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('RPUSH', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
"""


def owner_key(room_id: str, prefix: str = "vst:") -> str:
    """The Redis key holding a room's lease."""
    return f"{prefix}room-owner:{room_id}"


def alive_key(node_id: str, prefix: str = "vst:") -> str:
    """The Redis key that says a node is alive (expires ALIVE_TTL after its last beat)."""
    return f"{prefix}node-alive:{node_id}"


def sessions_key(node_id: str, prefix: str = "vst:") -> str:
    """The Redis hash of the people a node serves (participant id -> JSON)."""
    return f"{prefix}node-sessions:{node_id}"


def state_key(room_id: str, prefix: str = "vst:") -> str:
    """The Redis hash holding a room's copy (signalling/room_state.py)."""
    return f"{prefix}room-state:{room_id}"


def handover_key(node_id: str, prefix: str = "vst:") -> str:
    """The Redis list of rooms another node handed to this one while draining."""
    return f"{prefix}node-handover:{node_id}"


def owner_url(value: str) -> str:
    """The public URL in a lease value ``<node_id>|<url>``."""
    return value.split("|", 1)[1] if "|" in value else value


class RoomLeases:
    """The lease-based Placement (signalling/placement.py) of one node.

    ``in_use`` returns the ids of the rooms this node has people in (sessions,
    attached or within their resume window, and live rooms); leases of other
    rooms are released at the next pass. ``on_lost(room_id, url)`` is called when
    another node (at ``url``) turns out to hold a room this node has people in.
    """

    def __init__(
        self,
        url: str,
        node_id: str,
        public_url: str,
        in_use: Callable[[], set[str]],
        *,
        ttl: float = LEASE_TTL,
        grace: float = CLAIM_GRACE,
        remember: float = CLAIM_REMEMBER,
        prefix: str = "vst:",
        on_lost: Callable[[str, str], None] = lambda room_id, url: None,
        alive_ttl: float = ALIVE_TTL,
        alive_every: float = ALIVE_EVERY,
        people: Callable[[], Collection[str]] = tuple,
        describe: Callable[[str], str | None] = lambda pid: None,
        on_orphans: Callable[[list[dict[str, Any]]], None] = lambda orphans: None,
        on_handed: Callable[[list[str]], None] = lambda rooms: None,
        on_reclaimed: Callable[[str], None] = lambda room_id: None,
    ) -> None:
        self.url = url
        #: called with a room whose lease Redis had lost and this node set again
        #: (its copy was lost with it: signalling/room_state.py writes it again)
        self.on_reclaimed = on_reclaimed
        self.node_id = node_id
        self.on_lost = on_lost
        #: the participant ids this node serves, and who one of them is (JSON)
        self._people = people
        self._describe = describe
        #: what the sessions hash holds, as this node last wrote it
        self._published: set[str] = set()
        self._published_at = 0.0
        self._reaped_at = 0.0
        self.on_orphans = on_orphans
        #: called with the rooms another node handed to this one (it drains)
        self.on_handed = on_handed
        self.sessions_key = sessions_key(node_id, prefix)
        self.handover_key = handover_key(node_id, prefix)

        self.alive_key = alive_key(node_id, prefix)
        self.alive_ttl_ms = int(alive_ttl * 1000)
        self.alive_every = alive_every
        self.alive_ttl = alive_ttl
        self._alive_at = 0.0
        #: when the last liveness write that Redis acknowledged was sent (its key
        #: expires no earlier than alive_ttl after this)
        self._alive_sent = 0.0
        #: the last pass failed (Redis unreachable): log the outage once, and its end
        self._failing = False
        self.value = f"{node_id}|{public_url.rstrip('/')}"
        self.ttl_ms = int(ttl * 1000)
        #: a third of the TTL, so two renewals in a row may fail (a busy loop, a
        #: Redis blip) before the lease is at risk
        self.renew_every = ttl / 3
        self.grace = grace
        self.prefix = prefix
        self._in_use = in_use
        #: rooms whose lease this node holds -> when it last claimed or renewed it
        self.held: dict[str, float] = {}
        #: when each held room was last claimed (a hello for it was being admitted)
        self._claimed: dict[str, float] = {}
        #: held rooms whose last claim found no copy in Redis (without_copy)
        self._no_copy: set[str] = set()
        #: room -> until when its last claim stands for another (claim)
        self._remembered: dict[str, float] = {}
        self.remember = remember
        self._wake = asyncio.Event()
        self._redis: Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        #: claims made while one batch of them is in flight go together, one
        #: pipeline (each claim its own script run: atomic on its own)
        self._claims: GroupCommit[ScriptCall, Any] = GroupCommit(self._claim_batch)

    # -- the Placement protocol ------------------------------------------------------

    async def claim(self, room_id: str) -> str | None:
        """None if this node owns the room (now, or already); else the owner's URL.

        A room this node claimed less than ``remember`` seconds ago is its own
        without asking Redis again, as long as this node's liveness key, as last
        written before that claim, has not expired since: until then no other
        node can have taken the lease over (a Redis that lost its keys meanwhile
        is found out by the next renewal, as for the people already here)."""
        now = time.monotonic()
        if now < self._remembered.get(room_id, 0.0) and room_id in self.held:
            return None
        # a beat Redis acknowledged before this claim was sent: the liveness key
        # exists from before the claim until at least alive_sent + alive_ttl
        alive_sent = self._alive_sent
        keys = [owner_key(room_id, self.prefix), state_key(room_id, self.prefix)]
        alive_prefix = f"{self.prefix}node-alive:"
        try:
            answer = await self._claims(
                (keys, [self.value, self.ttl_ms, alive_prefix, self.node_id])
            )
            if isinstance(answer, RedisError):
                raise answer
        except RedisError as err:
            log.warning("room lease unavailable", room=room_id, error=str(err))
            raise Busy("rooms cannot be placed right now", retry_after=1) from None
        raw, copy = answer
        owner = raw.decode() if isinstance(raw, bytes) else str(raw)
        if owner == self.value:
            if room_id not in self.held:
                log.info("room lease", room=room_id, change="none -> held")
            self.held[room_id] = self._claimed[room_id] = time.monotonic()
            # trusted for `remember` from the claim's start, and never past the
            # earliest expiry of the liveness key as it stood before the claim
            self._remembered[room_id] = min(now + self.remember, alive_sent + self.alive_ttl)
            if copy:
                self._no_copy.discard(room_id)
            else:
                self._no_copy.add(room_id)
            return None
        self._lost(room_id, owner)
        return owner_url(owner)

    def _forget(self, room_id: str) -> None:
        """The lease is gone (lost, handed over or released): no claim of it stands."""
        self._no_copy.discard(room_id)
        self._remembered.pop(room_id, None)

    def without_copy(self, room_id: str) -> bool:
        """Whether this node's last claim of the room found no copy of it in Redis;
        asked once (the answer is forgotten). Nobody else writes the copy of a room
        whose lease this node holds (signalling/room_state.py is fenced), so there
        is nothing to load: the room starts on this node."""
        if room_id in self._no_copy:
            self._no_copy.discard(room_id)
            return room_id in self.held
        return False

    def _lost(self, room_id: str, owner: str) -> None:
        """Another node holds the room: forget the lease, and if it was ours, send
        the people still here to that node (a room is never split)."""
        self._claimed.pop(room_id, None)
        self._forget(room_id)
        if self.held.pop(room_id, None) is not None:
            log.warning("room lease lost to another node", room=room_id, change="held -> none")
            self.on_lost(room_id, owner_url(owner))

    def people_changed(self) -> None:
        """Someone new is served here: publish the sessions hash now if it was not
        written within the last ALIVE_EVERY (else the next beat does)."""
        if time.monotonic() - self._published_at >= self.alive_every:
            self._wake.set()

    def release_if_empty(self, room_id: str) -> None:
        """The room's last person left this node: release at once if still empty."""
        if room_id in self.held:
            self._wake.set()

    # -- the lease task --------------------------------------------------------------

    async def start(self) -> None:
        self._redis = Redis.from_url(self.url)
        await self._redis.ping()
        self._scripts = {
            src: self._redis.register_script(src)
            for src in (_CLAIM, _RENEW, _RELEASE, _REAP, _HAND_OVER)
        }
        # alive before the first claim: nobody may take over a room we just took
        await self.beat()

    async def beat(self) -> None:
        """Say this node is alive for another ALIVE_TTL."""
        sent = time.monotonic()
        await self._client().set(self.alive_key, self.value, px=self.alive_ttl_ms)
        self._alive_at = time.monotonic()
        self._alive_sent = sent

    async def run(self) -> None:
        """Beat, renew and release leases forever (owned by the cleanup context)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.alive_every)
            self._wake.clear()
            try:
                if time.monotonic() - self._alive_at >= self.alive_every * 0.9:
                    await self.beat()
                now = time.monotonic()
                if now - self._published_at >= self.alive_every * 0.9:
                    await self.publish_people()
                if now - self._reaped_at >= self.alive_ttl:
                    self._reaped_at = now
                    await self.reap()
                await self.take_handed()
                await self.tend()
            except Exception as err:  # the task must outlive any one failed pass
                # The next pass retries; a lease lives TTL = 3 renewal periods.
                if not self._failing:
                    log.warning("room leases cannot be renewed", error=str(err))
                self._failing = True
            else:
                if self._failing:
                    log.info("room leases renewed again")
                self._failing = False

    async def tend(self) -> None:
        """One pass: release the leases of rooms nobody is in, renew the rest."""
        if not self.held:
            return
        in_use = self._in_use()
        now = time.monotonic()
        # A room claimed a moment ago may not have its session registered yet:
        # admission still has store reads to make between the claim and that.
        recent = now - self.grace
        empty = [r for r in self.held if r not in in_use and self._claimed.get(r, 0.0) < recent]
        await self._release(empty)
        # Renew what was not renewed (or claimed) in the last half period: a pass
        # woken early by a room emptying does not renew everything again.
        due = [r for r, at in self.held.items() if at <= now - self.renew_every / 2]
        if not due:
            return
        calls: list[ScriptCall] = [
            ([owner_key(room_id, self.prefix)], [self.value, self.ttl_ms]) for room_id in due
        ]
        answers = await evalsha_all(self._client(), self._script(_RENEW), calls)
        for room_id, raw in zip(due, answers, strict=True):
            answer = raw.decode() if isinstance(raw, bytes) else str(raw)
            if answer in ("=", "+"):
                if answer == "+":
                    log.info("room lease re-claimed", room=room_id, change="held -> held")
                    self.on_reclaimed(room_id)
                self.held[room_id] = now
            else:
                self._lost(room_id, answer)

    async def release_all(self) -> None:
        """Release every lease this node holds, and say it is gone (shutdown)."""
        await self._release(list(self.held))
        await self._client().delete(self.alive_key, self.sessions_key)

    async def take_handed(self) -> None:
        """Take the rooms a draining node handed to this one (one LPOP a beat)."""
        raw = await self._client().lpop(self.handover_key, 1000)
        if raw:
            rooms = [r.decode() if isinstance(r, bytes) else str(r) for r in raw]
            log.info("rooms handed over", rooms=len(rooms))
            self.on_handed(rooms)

    async def live_nodes(self) -> list[str]:
        """The lease values (``<node_id>|<url>``) of the other nodes alive now."""
        client = self._client()
        keys = [k async for k in client.scan_iter(match=f"{self.prefix}node-alive:*", count=100)]
        if not keys:
            return []
        values = await client.mget(keys)
        found = {v.decode() if isinstance(v, bytes) else str(v) for v in values if v is not None}
        found.discard(self.value)
        return sorted(found)

    async def hand_over(self, to: dict[str, str]) -> list[str]:
        """Give each room's lease (room id -> the other node's value) to that node,
        if it is still ours; the rooms handed over. The node stops renewing them."""
        if not to:
            return []
        rooms = list(to)
        calls: list[ScriptCall] = []
        for room_id in rooms:
            node = to[room_id].split("|", 1)[0]
            keys = [owner_key(room_id, self.prefix), handover_key(node, self.prefix)]
            calls.append((keys, [self.value, to[room_id], self.ttl_ms, room_id]))
        answers = await evalsha_all(self._client(), self._script(_HAND_OVER), calls)
        handed = [room for room, done in zip(rooms, answers, strict=True) if done == 1]
        for room_id in handed:
            self.held.pop(room_id, None)
            self._claimed.pop(room_id, None)
            self._forget(room_id)
        return handed

    async def publish_people(self) -> None:
        """Bring this node's sessions hash up to date: only who came and went since
        the last time (at most every ALIVE_EVERY, so a burst of joins costs one
        write per beat, not one per join)."""
        self._published_at = time.monotonic()
        now = set(self._people())
        gone = self._published - now
        new: dict[Any, Any] = {}
        for pid in now - self._published:
            who = self._describe(pid)
            if who is not None:
                new[pid] = who
        if not gone and not new:
            return
        pipe = self._client().pipeline(transaction=False)
        if gone:
            pipe.hdel(self.sessions_key, *gone)
        if new:
            pipe.hset(self.sessions_key, mapping=new)
        await pipe.execute()
        self._published = (self._published - gone) | set(new)

    async def reap(self) -> None:
        """Take the people of dead nodes and report those no live node serves now."""
        client = self._client()
        reap = self._script(_REAP)
        orphans: list[dict[str, Any]] = []
        live_keys: list[str] = []
        found = [k.decode() if isinstance(k, bytes) else str(k) async for k in client.scan_iter(
            match=f"{self.prefix}node-sessions:*", count=100
        )]  # fmt: skip
        for key in found:
            node = key.rsplit(":", 1)[1]
            if key == self.sessions_key:
                live_keys.append(key)
                continue
            taken = await reap(keys=[key, alive_key(node, self.prefix)])
            if not taken:
                live_keys.append(key)
                continue
            for raw in taken:
                with contextlib.suppress(ValueError):
                    orphans.append(json.loads(raw))
        if not orphans:
            return
        # someone who came back on a live node (a rejoin) is not gone
        pipe = client.pipeline(transaction=False)
        for orphan in orphans:
            for key in live_keys:
                pipe.hexists(key, str(orphan.get("participant", "")))
        present = await pipe.execute()
        width = len(live_keys)
        gone = [
            orphan
            for i, orphan in enumerate(orphans)
            if not any(present[i * width : (i + 1) * width])
        ]
        log.warning("sessions of a dead node", people=len(orphans), left=len(gone))
        if gone:
            self.on_orphans(gone)

    async def stop(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def _release(self, rooms: list[str]) -> None:
        if not rooms:
            return
        started = time.monotonic()
        for room_id in rooms:  # a claim meanwhile asks Redis, and is seen below
            self._remembered.pop(room_id, None)
        calls: list[ScriptCall] = [
            ([owner_key(room_id, self.prefix), state_key(room_id, self.prefix)], [self.value])
            for room_id in rooms
        ]
        await evalsha_all(self._client(), self._script(_RELEASE), calls)
        again: list[str] = []
        for room_id in rooms:
            if self._claimed.get(room_id, 0.0) >= started:
                # A hello claimed it while the release was on its way: take it back.
                again.append(room_id)
                continue
            self.held.pop(room_id, None)
            self._claimed.pop(room_id, None)
            self._forget(room_id)
            log.info("room lease", room=room_id, change="held -> none")
        for room_id in again:
            # that claim may have reached Redis before the release: ask Redis again
            self._remembered.pop(room_id, None)
            await self.claim(room_id)  # another owner by now: claim() moves our people

    async def _claim_batch(self, calls: Sequence[ScriptCall]) -> list[Any]:
        """The batch's claims in one round trip; a claim Redis refused is answered
        with its error, the others stand."""
        return await evalsha_all(
            self._client(), self._script(_CLAIM), list(calls), raise_on_error=False
        )

    def _script(self, source: str) -> AsyncScript:
        if not self._scripts:
            raise RuntimeError("RoomLeases is not started")
        return self._scripts[source]

    def _client(self) -> Redis:
        if self._redis is None:
            raise RuntimeError("RoomLeases is not started")
        return self._redis
