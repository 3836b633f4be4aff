"""RedisStore: the scale-out store, shared by every hub process through Redis.

Layout (every key starts with ``prefix``, "vst:" by default):

- ``r:<kind>:<id>``      a record, msgpack of its codec plain dict; a credential
                         is a hash instead (see below)
- ``u:<name>:<value>``   a unique index -> record id: slug, email (normalised),
                         link digest, guest-key digest, device digest, API-key digest
- ``i:<name>:<owner>``   a set of member ids (org -> teams, team -> rooms...) or a
                         sorted set scored by time (team -> dated meetings, org -> audit)
- ``log:<team>`` / ``logseq:<team>``   the team's log stream and its seq counter
- ``facts:<meeting>``    the meeting's presence facts (msgpack)
- ``r:msg:<id>``         an outbox message, a hash like a credential's (below)
- ``i:outbox``           scheduled messages, scored by when each is claimable
                         (its due time, or the end of the claim holding it)
- ``i:msgs:<meeting>``   the ids of a meeting's messages
- ``r:invite:<id>``, ``u:invite:<digest>``   a new member's invitation, by link digest
- ``messaging:<team>``   the team's reminder offsets and templates (msgpack)
- ``hours:<staff>``      a member's working hours for online booking (msgpack)

Writes that must be all-or-nothing or unique run as WATCH / MULTI / EXEC:
watch every key the write claims and every parent it names, check that none
of the claimed keys exists (Conflict) and that every parent does (NotFound),
then write in one MULTI; a concurrent writer touching a watched key makes EXEC
fail and the whole check is retried. The only record ever deleted is a meeting
type no meeting uses (delete_meeting_type); watching the parents is what
keeps a meeting from being added with a type deleted meanwhile.

Credentials are hashes: ``r`` holds the immutable part (msgpack) and the
fields the redemption rule reads or writes are plain numbers (``nb``/``na``:
window, ``rev``/``red``: revoked/redeemed at, ``dev``: device digest), so one
Lua script can check the rule and consume the credential in one atomic step on
the server, whichever node calls it. Outbox messages are hashes for the same
reason: ``r`` holds the immutable part, and state (``st``), due time
(``due``), attempts (``att``), last error (``err``), sent at (``sent``) and the
claim (``cb``/``cu``) are plain fields that the claim, settle and cancel
scripts read and write atomically.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import WatchError

from rooms.accounts import ApiKey, AuditEntry, Group, Organisation, StaffAccount, Team
from rooms.credentials import Credential
from rooms.errors import Conflict, NotFound
from rooms.hours import WorkingHours
from rooms.invitations import Invitation, usable
from rooms.meeting import Meeting, MeetingType
from rooms.outbox import MessageState, OutboxMessage, TeamMessaging, Trigger
from rooms.presence import LogEntry
from rooms.room import Room
from rooms.schedule import DURATION_MAX
from rooms.validate import email_key
from signalling.store import codec
from signalling.store.base import Entry, LogAppend
from signalling.store.group_commit import GroupCommit
from signalling.store.scripts import ScriptCall, evalsha_all

if TYPE_CHECKING:
    from signalling.store.base import Store

__all__ = ["RedisStore"]

R = TypeVar("R")

# The single-use rule of rooms.tokens.redeemable, checked and applied in one
# step: Redis runs a script atomically, so of any number of concurrent callers
# on any number of nodes exactly one sees `red` unset. Times are integer
# microseconds (exact as Lua doubles until 2**53, i.e. year 2255).
# It reads the record key named by the index, which a Redis Cluster would
# refuse (undeclared key); Vestibule targets one Redis (or a replicated pair).
_REDEEM = """
local id = redis.call('GET', KEYS[1])
if not id then return false end
local key = ARGV[3] .. id
local f = redis.call('HMGET', key, 'nb', 'na', 'rev', 'red')
if not f[1] or f[3] or f[4] then return false end
local now = tonumber(ARGV[1])
if tonumber(f[1]) > now or tonumber(f[2]) <= now then return false end
redis.call('HSET', key, 'red', ARGV[1], 'dev', ARGV[2])
redis.call('SET', ARGV[4] .. ARGV[2], id)
return redis.call('HGETALL', key)
"""

# _REDEEM, and the credential's meeting and room read in the same script (Redis's
# Lua has cmsgpack: the ids are read out of the packed records), so a guest's
# join is one round trip. Returns {credential fields, meeting blob, room blob}.
_REDEEM_ENTRY = """
local id = redis.call('GET', KEYS[1])
if not id then return false end
local key = ARGV[3] .. id
local f = redis.call('HMGET', key, 'nb', 'na', 'rev', 'red', 'r')
if not f[1] or f[3] or f[4] then return false end
local now = tonumber(ARGV[1])
if tonumber(f[1]) > now or tonumber(f[2]) <= now then return false end
redis.call('HSET', key, 'red', ARGV[1], 'dev', ARGV[2])
redis.call('SET', ARGV[4] .. ARGV[2], id)
local meeting = redis.call('GET', ARGV[5] .. cmsgpack.unpack(f[5])['meeting_id'])
local room = false
if meeting then
  room = redis.call('GET', ARGV[6] .. cmsgpack.unpack(meeting)['room_id'])
end
return {redis.call('HGETALL', key), meeting, room}
"""

# Where a link leads, read without spending it: the room id of the link's
# meeting, only while the link is redeemable (the rule of _REDEEM, nothing
# written), else false. One round trip for what was find_link + get_meeting.
_LINK_ROOM = """
local id = redis.call('GET', KEYS[1])
if not id then return false end
local f = redis.call('HMGET', ARGV[2] .. id, 'nb', 'na', 'rev', 'red', 'r')
if not f[1] or f[3] or f[4] then return false end
local now = tonumber(ARGV[1])
if tonumber(f[1]) > now or tonumber(f[2]) <= now then return false end
local meeting = redis.call('GET', ARGV[3] .. cmsgpack.unpack(f[5])['meeting_id'])
if not meeting then return false end
return cmsgpack.unpack(meeting)['room_id']
"""

# seq and stream entry in one step, so two appenders can never take seqs in
# one order and add entries in the other; the explicit id "<seq>-1" makes
# stream order seq order, and XADD refuses an id lower than the last one.
_APPEND = """
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], string.format('%d-1', seq), 'e', ARGV[1])
return seq
"""

# A batch of presence writes in one atomic step: each entry numbered and
# appended as _APPEND does (KEYS: its seq counter and stream, in pairs), then
# each meeting's facts set (the remaining KEYS). ARGV[1] the number of entries,
# then their blobs, then the facts' blobs. Returns the entries' seqs in order.
_PRESENCE = """
local n = tonumber(ARGV[1])
local seqs = {}
for i = 1, n do
  local seq = redis.call('INCR', KEYS[2 * i - 1])
  redis.call('XADD', KEYS[2 * i], string.format('%d-1', seq), 'e', ARGV[i + 1])
  seqs[i] = seq
end
for j = 2 * n + 1, #KEYS do
  redis.call('SET', KEYS[j], ARGV[j - n + 1])
end
return seqs
"""

# Claim the due messages: the outbox index is scored by when a message can be
# claimed, so one range read finds both due messages and expired claims; each
# is claimed (and re-scored at the claim's end) in this one atomic script.
_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[4]))
local out = {}
for _, id in ipairs(ids) do
  local key = ARGV[5] .. id
  if redis.call('HGET', key, 'st') == 'scheduled' then
    redis.call('HSET', key, 'cb', ARGV[3], 'cu', ARGV[2])
    redis.call('HINCRBY', key, 'att', 1)
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    table.insert(out, redis.call('HGETALL', key))
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"""

# Settle a claimed attempt, only if the caller still holds the claim.
_SETTLE = """
if redis.call('HGET', KEYS[2], 'cb') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], 'st', ARGV[2], 'due', ARGV[3])
redis.call('HDEL', KEYS[2], 'cb', 'cu')
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], 'err', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], 'sent', ARGV[5]) end
if ARGV[2] == 'scheduled' then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[6])
else
  redis.call('ZREM', KEYS[1], ARGV[6])
end
return 1
"""

# Cancel a meeting's scheduled messages that no live claim holds.
_CANCEL = """
local n = 0
local now = tonumber(ARGV[1])
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local key = ARGV[2] .. id
  local f = redis.call('HMGET', key, 'st', 'cu', 'tr')
  local free = (not f[2]) or tonumber(f[2]) <= now
  local wanted = ARGV[3] == '' or string.find(ARGV[3], ',' .. f[3] .. ',', 1, true)
  if f[1] == 'scheduled' and free and wanted then
    redis.call('HSET', key, 'st', 'cancelled')
    redis.call('HDEL', key, 'cb', 'cu')
    redis.call('ZREM', KEYS[1], id)
    n = n + 1
  end
end
return n
"""

#: the fields of an outbox message that live outside its immutable part
_MSG_MUTABLE = (
    "state",
    "due_at",
    "attempts",
    "last_error",
    "sent_at",
    "claimed_by",
    "claimed_until",
)

_KINDS: dict[type[Any], str] = {
    Organisation: "org",
    Team: "team",
    StaffAccount: "staff",
    Group: "group",
    Room: "room",
    MeetingType: "mtype",
    Meeting: "meeting",
    Credential: "cred",
    ApiKey: "apikey",
    AuditEntry: "audit",
    OutboxMessage: "msg",
    Invitation: "invite",
}


def _b(value: bytes | str) -> bytes:
    """A response as bytes (the client never decodes; this narrows redis-py's types)."""
    return value if isinstance(value, bytes) else value.encode()


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class _Keys:
    """The keys one record occupies or refers to."""

    record: str
    parents: list[str] = field(default_factory=list)
    uniques: list[str] = field(default_factory=list)
    #: (set key, None) or (sorted set key, score)
    members: list[tuple[str, float | None]] = field(default_factory=list)


class RedisStore:
    """The Store interface (signalling.store.base) on Redis (redis.asyncio).

    Several instances (processes, nodes) with the same ``url`` and ``prefix``
    share one store; tests give each store its own prefix.
    """

    def __init__(self, url: str, *, prefix: str = "vst:") -> None:
        self._url = url
        self._p = prefix
        self._client: Redis | None = None

    async def open(self) -> None:
        """Connect and check Redis answers (no schema to migrate: keys are self-describing)."""
        client = Redis.from_url(self._url)
        try:
            await client.ping()
        except BaseException:
            await client.aclose()
            raise
        self._client = client
        self._redeem_script = client.register_script(_REDEEM)
        self._redeem_entry_script = client.register_script(_REDEEM_ENTRY)
        self._link_room_script = client.register_script(_LINK_ROOM)
        self._append_script = client.register_script(_APPEND)
        self._presence_script = client.register_script(_PRESENCE)
        self._claim_script = client.register_script(_CLAIM)
        self._settle_script = client.register_script(_SETTLE)
        self._cancel_script = client.register_script(_CANCEL)
        # a guest's join makes these two calls: those of joins arriving together
        # go to Redis in one round trip (group commit: each script still runs
        # alone and atomically, in order)
        self._redemptions: GroupCommit[ScriptCall, Any] = GroupCommit(
            partial(self._scripts, self._redeem_entry_script)
        )
        self._link_rooms: GroupCommit[ScriptCall, Any] = GroupCommit(
            partial(self._scripts, self._link_room_script)
        )

    async def _scripts(self, script: AsyncScript, calls: Sequence[ScriptCall]) -> list[Any]:
        """Each call's answer, or the error Redis gave that call alone (raised to
        its caller only); an error of the round trip itself reaches them all."""
        return await evalsha_all(self._r, script, list(calls), raise_on_error=False)

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    # -- keys ----------------------------------------------------------------------

    @property
    def _r(self) -> Redis:
        if self._client is None:
            raise RuntimeError("RedisStore is not open")
        return self._client

    def _rec(self, cls: type[Any], record_id: str) -> str:
        return f"{self._p}r:{_KINDS[cls]}:{record_id}"

    def _uniq(self, name: str, value: str) -> str:
        return f"{self._p}u:{name}:{value}"

    def _idx(self, name: str, owner: str) -> str:
        return f"{self._p}i:{name}:{owner}"

    def _keys(self, r: Any) -> _Keys:
        key = self._rec(type(r), r.id)
        match r:
            case Organisation():
                return _Keys(key)
            case Team():
                return _Keys(
                    key,
                    [self._rec(Organisation, r.org_id)],
                    [],
                    [(self._idx("teams", r.org_id), None)],
                )
            case StaffAccount():
                parents = [self._rec(Organisation, r.org_id)]
                members: list[tuple[str, float | None]] = []
                if r.team_id is not None:
                    parents.append(self._rec(Team, r.team_id))
                    members.append((self._idx("staff", r.team_id), None))
                emails = [self._uniq("email", email_key(r.email))]
                return _Keys(key, parents, emails, members)
            case Group():
                return _Keys(
                    key, [self._rec(Team, r.team_id)], [], [(self._idx("groups", r.team_id), None)]
                )
            case Room():
                parents = [self._rec(Team, r.team_id)]
                if r.owner_id is not None:
                    parents.append(self._rec(StaffAccount, r.owner_id))
                slugs = [self._uniq("slug", r.slug)]
                return _Keys(key, parents, slugs, [(self._idx("rooms", r.team_id), None)])
            case MeetingType():
                return _Keys(
                    key, [self._rec(Team, r.team_id)], [], [(self._idx("types", r.team_id), None)]
                )
            case Meeting():
                parents = [
                    self._rec(Team, r.team_id),
                    self._rec(StaffAccount, r.host_id),
                    self._rec(Room, r.room_id),
                ]
                if r.type_id is not None:
                    parents.append(self._rec(MeetingType, r.type_id))
                if r.start is None:
                    return _Keys(key, parents, [], [(self._idx("planning", r.team_id), None)])
                dated = (self._idx("meetings", r.team_id), float(codec.micros(r.start)))
                return _Keys(key, parents, [], [dated])
            case ApiKey():
                return _Keys(key, [self._rec(Team, r.team_id)], [self._uniq("apikey", r.digest)])
            case Invitation():
                parents = [self._rec(Team, r.team_id), self._rec(StaffAccount, r.staff_id)]
                return _Keys(key, parents, [self._uniq("invite", r.digest)])
            case AuditEntry():
                return _Keys(
                    key, [], [], [(self._idx("audit", r.org_id), float(codec.micros(r.at)))]
                )
        raise TypeError(f"not a stored record: {type(r).__name__}")

    # -- generic writes and reads ----------------------------------------------------

    def _write(self, pipe: Pipeline, record: Any, keys: _Keys) -> None:
        pipe.set(keys.record, codec.pack(record))
        for unique in keys.uniques:
            pipe.set(unique, record.id)
        for member_key, score in keys.members:
            if score is None:
                pipe.sadd(member_key, record.id)
            else:
                pipe.zadd(member_key, {record.id: score})

    def _cred_claims(self, c: Credential) -> list[str]:
        return [
            self._rec(Credential, c.id),
            self._uniq("link", c.link_digest),
            self._uniq("gkey", c.key_digest),
        ]

    def _write_credential(self, pipe: Pipeline, c: Credential) -> None:
        plain = codec.to_plain(c)
        fields: dict[Any, Any] = {
            "r": codec.pack_value(plain),
            "nb": plain["not_before"],
            "na": plain["not_after"],
        }
        for short, name in (
            ("rev", "revoked_at"),
            ("red", "redeemed_at"),
            ("dev", "device_digest"),
        ):
            if plain[name] is not None:
                fields[short] = plain[name]
        record, link, gkey = self._cred_claims(c)
        pipe.hset(record, mapping=fields)
        pipe.set(link, c.id)
        pipe.set(gkey, c.id)
        pipe.sadd(self._idx("creds", c.meeting_id), c.id)
        if c.device_digest is not None:
            pipe.set(self._uniq("device", c.device_digest), c.id)

    async def _insert(
        self,
        records: Sequence[Any],
        credentials: Sequence[Credential] = (),
        *,
        watch: Sequence[str] = (),
        guard: Callable[[Pipeline], Awaitable[bool]] | None = None,
    ) -> bool:
        """Add records (and credentials) all at once, or raise Conflict / NotFound.

        With ``guard``: also watch ``watch`` and write only if ``guard`` (run
        with the keys watched, before the write) returns True; returns whether
        it wrote."""
        keys = [self._keys(r) for r in records]
        claims = [k.record for k in keys] + [u for k in keys for u in k.uniques]
        claims += [key for c in credentials for key in self._cred_claims(c)]
        if len(set(claims)) != len(claims):
            raise Conflict("the same id or unique value twice in one write")
        parents = sorted({p for k in keys for p in k.parents} - {k.record for k in keys})
        async with self._r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(*claims, *parents, *watch)
                    await self._check_parents(pipe, parents)
                    if await pipe.exists(*claims):
                        raise Conflict("already exists")
                    if guard is not None and not await guard(pipe):
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        return False
                    pipe.multi()  # type: ignore[no-untyped-call]
                    for record, k in zip(records, keys, strict=True):
                        self._write(pipe, record, k)
                    for credential in credentials:
                        self._write_credential(pipe, credential)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue  # a watched key changed: check again

    @staticmethod
    async def _check_parents(pipe: Pipeline, parents: Sequence[str]) -> None:
        if parents and await pipe.exists(*parents) != len(parents):
            raise NotFound("refers to a record that does not exist")

    async def _update(self, record: Any) -> None:
        """Replace a record, moving its unique and index entries; NotFound / Conflict."""
        new = self._keys(record)
        async with self._r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(new.record, *new.uniques)
                    blob = await pipe.get(new.record)
                    if blob is None:
                        raise NotFound(f"no {type(record).__name__} {record.id}")
                    old = self._keys(codec.unpack(type(record), _b(blob)))
                    await self._check_parents(pipe, sorted(set(new.parents)))
                    claimed = [u for u in new.uniques if u not in old.uniques]
                    if claimed and await pipe.exists(*claimed):
                        raise Conflict("already exists")
                    pipe.multi()  # type: ignore[no-untyped-call]
                    for unique in old.uniques:
                        if unique not in new.uniques:
                            pipe.delete(unique)
                    kept = {member_key for member_key, _ in new.members}
                    for member_key, score in old.members:
                        if member_key not in kept:
                            if score is None:
                                pipe.srem(member_key, record.id)
                            else:
                                pipe.zrem(member_key, record.id)
                    self._write(pipe, record, new)
                    await pipe.execute()
                    return
                except WatchError:
                    continue

    async def _get(self, cls: type[R], record_id: str) -> R:
        blob = await self._r.get(self._rec(cls, record_id))
        if blob is None:
            raise NotFound(f"no {cls.__name__} {record_id}")
        return codec.unpack(cls, _b(blob))

    async def _find(self, cls: type[R], unique: str) -> R | None:
        record_id = await self._r.get(unique)
        if record_id is None:
            return None
        blob = await self._r.get(self._rec(cls, _s(record_id)))
        return None if blob is None else codec.unpack(cls, _b(blob))

    async def _many(self, cls: type[R], ids: Collection[bytes | str]) -> list[R]:
        if not ids:
            return []
        keys = [self._rec(cls, _s(i)) for i in ids]
        return [
            codec.unpack(cls, _b(blob)) for blob in await self._r.mget(keys) if blob is not None
        ]

    async def _members(self, cls: type[R], index: str) -> list[R]:
        return await self._many(cls, await self._r.smembers(index))

    # -- organisations, teams, staff, groups ---------------------------------

    async def add_organisation(self, org: Organisation) -> None:
        await self._insert([org])

    async def get_organisation(self, org_id: str) -> Organisation:
        return await self._get(Organisation, org_id)

    async def add_team(self, team: Team) -> None:
        await self._insert([team])

    async def get_team(self, team_id: str) -> Team:
        return await self._get(Team, team_id)

    async def update_team(self, team: Team) -> None:
        await self._update(team)

    async def list_teams(self, org_id: str) -> list[Team]:
        teams = await self._members(Team, self._idx("teams", org_id))
        return sorted(teams, key=lambda t: (t.name, t.id))

    async def list_team_ids(self) -> list[str]:
        """By SCAN over the team records (no global index to keep in step): it is
        called once at start-up, and SCAN never blocks Redis for long."""
        head = self._rec(Team, "")
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in head) + "*"
        found = {_s(key)[len(head) :] async for key in self._r.scan_iter(match=pattern, count=500)}
        return sorted(found)

    async def add_staff(self, account: StaffAccount) -> None:
        await self._insert([account])

    async def get_staff(self, staff_id: str) -> StaffAccount:
        return await self._get(StaffAccount, staff_id)

    async def update_staff(self, account: StaffAccount) -> None:
        await self._update(account)

    async def find_staff_by_email(self, email: str) -> StaffAccount | None:
        return await self._find(StaffAccount, self._uniq("email", email_key(email)))

    async def list_staff(self, team_id: str) -> list[StaffAccount]:
        staff = await self._members(StaffAccount, self._idx("staff", team_id))
        return sorted(staff, key=lambda s: (s.name, s.id))

    async def add_group(self, group: Group) -> None:
        await self._insert([group])

    async def update_group(self, group: Group) -> None:
        await self._update(group)

    async def list_groups(self, team_id: str) -> list[Group]:
        groups = await self._members(Group, self._idx("groups", team_id))
        return sorted(groups, key=lambda g: (g.name, g.id))

    # -- rooms and meeting types ---------------------------------------------

    async def add_room(self, room: Room) -> None:
        await self._insert([room])

    async def get_room(self, room_id: str) -> Room:
        return await self._get(Room, room_id)

    async def find_room_by_slug(self, slug: str) -> Room | None:
        return await self._find(Room, self._uniq("slug", slug))

    async def update_room(self, room: Room) -> None:
        await self._update(room)

    async def list_rooms(self, team_id: str) -> list[Room]:
        rooms = await self._members(Room, self._idx("rooms", team_id))
        return sorted(rooms, key=lambda r: (r.name, r.id))

    async def add_meeting_type(self, meeting_type: MeetingType) -> None:
        await self._insert([meeting_type])

    async def get_meeting_type(self, type_id: str) -> MeetingType:
        return await self._get(MeetingType, type_id)

    async def update_meeting_type(self, meeting_type: MeetingType) -> None:
        await self._update(meeting_type)

    async def list_meeting_types(self, team_id: str) -> list[MeetingType]:
        types = await self._members(MeetingType, self._idx("types", team_id))
        return sorted(types, key=lambda t: (t.label, t.id))

    async def _team_meetings(self, client: Redis | Pipeline, team_id: str) -> list[Meeting]:
        """Every meeting of the team, dated or in planning, in no order."""
        ids = [
            *await client.zrange(self._idx("meetings", team_id), 0, -1),
            *await client.smembers(self._idx("planning", team_id)),
        ]
        if not ids:
            return []
        blobs = await client.mget([self._rec(Meeting, _s(i)) for i in ids])
        return [codec.unpack(Meeting, _b(blob)) for blob in blobs if blob is not None]

    async def delete_meeting_type(self, type_id: str) -> bool:
        """Watches the type and the team's meeting indexes: a meeting added with
        the type meanwhile changes an index (the delete looks again), and a
        meeting being added watches the type, its parent (it is then refused)."""
        record = self._rec(MeetingType, type_id)
        async with self._r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(record)
                    blob = await pipe.get(record)
                    if blob is None:
                        raise NotFound(f"no MeetingType {type_id}")
                    team_id = codec.unpack(MeetingType, _b(blob)).team_id
                    await pipe.watch(self._idx("meetings", team_id), self._idx("planning", team_id))
                    if any(m.type_id == type_id for m in await self._team_meetings(pipe, team_id)):
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        return False
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.delete(record)
                    pipe.srem(self._idx("types", team_id), type_id)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue

    # -- online booking ----------------------------------------------------------

    def _hours_key(self, staff_id: str) -> str:
        return f"{self._p}hours:{staff_id}"

    async def get_working_hours(self, staff_id: str) -> WorkingHours | None:
        blob = await self._r.get(self._hours_key(staff_id))
        return None if blob is None else codec.unpack(WorkingHours, _b(blob))

    async def put_working_hours(self, hours: WorkingHours) -> None:
        # staff records are never deleted: one seen here stays
        if not await self._r.exists(self._rec(StaffAccount, hours.staff_id)):
            raise NotFound(f"no StaffAccount {hours.staff_id}")
        await self._r.set(self._hours_key(hours.staff_id), codec.pack(hours))

    async def book_if_free(self, meeting: Meeting, credential: Credential) -> bool:
        """See Store.book_if_free: the team's dated-meetings index is watched
        while the host's meetings around the time are read, so a meeting added
        or moved meanwhile (it changes the index) makes the check run again."""
        start, end = meeting.start, meeting.end
        if start is None or end is None:
            raise ValueError("book_if_free: the meeting needs a start")
        if credential.meeting_id != meeting.id:
            raise ValueError("book_if_free: the credential belongs to another meeting")
        index = self._idx("meetings", meeting.team_id)

        async def free(pipe: Pipeline) -> bool:
            # a meeting lasts at most DURATION_MAX: one starting earlier has ended
            low = codec.micros(start - DURATION_MAX)
            ids: list[Any] = list(await pipe.zrangebyscore(index, low, f"({codec.micros(end)}"))
            if not ids:
                return True
            blobs = await pipe.mget([self._rec(Meeting, _s(i)) for i in ids])
            for blob in blobs:
                if blob is None:
                    continue
                other = codec.unpack(Meeting, _b(blob))
                other_end = other.end
                if (
                    other.host_id == meeting.host_id
                    and not other.cancelled
                    and other.start is not None
                    and other_end is not None
                    and other.start < end
                    and start < other_end
                ):
                    return False
            return True

        return await self._insert([meeting], [credential], watch=[index], guard=free)

    async def knows_guest(self, team_id: str, email: str) -> bool:
        wanted = email_key(email)
        meetings = await self._team_meetings(self._r, team_id)
        return any(email_key(m.guest.email) == wanted and not m.booked_online for m in meetings)

    # -- meetings and credentials ----------------------------------------------

    async def add_meetings(
        self, meetings: Sequence[Meeting], credentials: Sequence[Credential]
    ) -> None:
        """All meetings and credentials, or none (rules as SQLiteStore.add_meetings)."""
        ids = {m.id for m in meetings}
        if any(c.meeting_id not in ids for c in credentials):
            raise ValueError("add_meetings: every credential must belong to a meeting of the call")
        live = [c.meeting_id for c in credentials if c.revoked_at is None]
        if len(set(live)) != len(live):
            raise Conflict("two live credentials for one meeting")
        await self._insert(meetings, credentials)

    async def get_meeting(self, meeting_id: str) -> Meeting:
        return await self._get(Meeting, meeting_id)

    async def update_meeting(self, meeting: Meeting) -> None:
        await self._update(meeting)

    async def list_meetings(
        self,
        team_id: str,
        *,
        host_ids: Collection[str] | None = None,
        start_from: datetime | None = None,
        start_to: datetime | None = None,
    ) -> list[Meeting]:
        """See Store.list_meetings; meetings in planning (no start) come last, by id."""
        dated = self._idx("meetings", team_id)
        if start_from is None and start_to is None:
            ids: list[Any] = [
                *await self._r.zrange(dated, 0, -1),
                *await self._r.smembers(self._idx("planning", team_id)),
            ]
        else:
            low = "-inf" if start_from is None else codec.micros(start_from)
            high = "+inf" if start_to is None else f"({codec.micros(start_to)}"
            ids = list(await self._r.zrangebyscore(dated, low, high))
        meetings = await self._many(Meeting, ids)
        if host_ids is not None:
            meetings = [m for m in meetings if m.host_id in host_ids]
        return sorted(
            meetings,
            key=lambda m: (m.start is None, 0 if m.start is None else codec.micros(m.start), m.id),
        )

    def _credential(self, fields: Mapping[bytes, bytes]) -> Credential:
        plain = codec.unpack_value(fields[b"r"])
        plain["not_before"] = int(fields[b"nb"])
        plain["not_after"] = int(fields[b"na"])
        plain["revoked_at"] = int(fields[b"rev"]) if b"rev" in fields else None
        plain["redeemed_at"] = int(fields[b"red"]) if b"red" in fields else None
        plain["device_digest"] = fields[b"dev"].decode() if b"dev" in fields else None
        return codec.from_plain(Credential, plain)

    async def _credentials_of(self, meeting_id: str) -> list[Credential]:
        ids = await self._r.smembers(self._idx("creds", meeting_id))
        pipe = self._r.pipeline(transaction=False)
        for cid in sorted(ids):
            pipe.hgetall(self._rec(Credential, _s(cid)))
        return [self._credential(h) for h in await pipe.execute() if h]

    async def replace_credential(
        self, meeting_id: str, new: Credential | None, now: datetime
    ) -> None:
        if new is not None and new.meeting_id != meeting_id:
            raise ValueError("replace_credential: the new credential is for another meeting")
        creds = self._idx("creds", meeting_id)
        claims = [] if new is None else self._cred_claims(new)
        async with self._r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(creds, *claims)
                    await self._check_parents(pipe, [self._rec(Meeting, meeting_id)])
                    if claims and await pipe.exists(*claims):
                        raise Conflict("already exists")
                    ids = await pipe.smembers(creds)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    for cid in ids:
                        # HSETNX: a credential revoked earlier keeps its revoked_at.
                        pipe.hsetnx(self._rec(Credential, _s(cid)), "rev", codec.micros(now))
                    if new is not None:
                        self._write_credential(pipe, new)
                    await pipe.execute()
                    return
                except WatchError:
                    continue

    async def store_chosen_slot(
        self, meeting: Meeting, credential: Credential, now: datetime
    ) -> bool:
        """See Store.store_chosen_slot: the meeting's record is watched, so of
        concurrent callers on any node only one transaction commits while it
        is still in planning; the others see it dated and write nothing."""
        if credential.meeting_id != meeting.id:
            raise ValueError("store_chosen_slot: the credential is for another meeting")
        new = self._keys(meeting)
        creds = self._idx("creds", meeting.id)
        claims = self._cred_claims(credential)
        async with self._r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(new.record, creds, *claims)
                    blob = await pipe.get(new.record)
                    if blob is None:
                        raise NotFound(f"no Meeting {meeting.id}")
                    stored = codec.unpack(Meeting, _b(blob))
                    if stored.start is not None or stored.cancelled:
                        return False
                    if await pipe.exists(*claims):
                        raise Conflict("already exists")
                    old = self._keys(stored)
                    ids = await pipe.smembers(creds)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    kept = {member_key for member_key, _ in new.members}
                    for member_key, score in old.members:
                        if member_key not in kept:
                            if score is None:
                                pipe.srem(member_key, meeting.id)
                            else:
                                pipe.zrem(member_key, meeting.id)
                    self._write(pipe, meeting, new)
                    for cid in ids:
                        pipe.hsetnx(self._rec(Credential, _s(cid)), "rev", codec.micros(now))
                    self._write_credential(pipe, credential)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue

    async def store_review(self, meeting: Meeting) -> Meeting | None:
        """See Store.store_review: the meeting's record is watched, so of
        concurrent callers on any node only one transaction commits while the
        meeting has no review; the others see the review and write nothing."""
        record = self._rec(Meeting, meeting.id)
        async with self._r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(record)
                    blob = await pipe.get(record)
                    if blob is None:
                        raise NotFound(f"no Meeting {meeting.id}")
                    stored = codec.unpack(Meeting, _b(blob))
                    if stored.review_rating is not None:
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        return None
                    reviewed = replace(
                        stored, review=meeting.review, review_rating=meeting.review_rating
                    )
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(record, codec.pack(reviewed))
                    await pipe.execute()
                    return reviewed
                except WatchError:
                    continue

    async def get_credential_for_meeting(self, meeting_id: str) -> Credential | None:
        live = [c for c in await self._credentials_of(meeting_id) if c.revoked_at is None]
        return live[0] if live else None

    async def live_credentials(self, meeting_ids: Collection[str]) -> dict[str, Credential]:
        found: dict[str, Credential] = {}
        for meeting_id in dict.fromkeys(meeting_ids):
            credential = await self.get_credential_for_meeting(meeting_id)
            if credential is not None:
                found[meeting_id] = credential
        return found

    async def _redeem(self, index: str, device_digest: str, now: datetime) -> Credential | None:
        result = await self._redeem_script(
            keys=[index],
            args=[
                codec.micros(now),
                device_digest,
                self._rec(Credential, ""),
                self._uniq("device", ""),
            ],
        )
        if not result:
            return None
        return self._credential(dict(zip(result[::2], result[1::2], strict=True)))

    async def redeem_link(
        self, link_digest: str, device_digest: str, now: datetime
    ) -> Credential | None:
        return await self._redeem(self._uniq("link", link_digest), device_digest, now)

    async def redeem_key(
        self, key_digest: str, device_digest: str, now: datetime
    ) -> Credential | None:
        return await self._redeem(self._uniq("gkey", key_digest), device_digest, now)

    async def redeem_link_entry(
        self, link_digest: str, device_digest: str, now: datetime
    ) -> Entry | None:
        result = await self._redemptions(
            (
                [self._uniq("link", link_digest)],
                [
                    codec.micros(now),
                    device_digest,
                    self._rec(Credential, ""),
                    self._uniq("device", ""),
                    self._rec(Meeting, ""),
                    self._rec(Room, ""),
                ],
            )
        )
        if isinstance(result, Exception):
            raise result
        if not result:
            return None
        fields, meeting, room = result
        credential = self._credential(dict(zip(fields[::2], fields[1::2], strict=True)))
        if meeting is None or room is None:  # pragma: no cover - parents are never deleted
            raise NotFound(f"no meeting or room for credential {credential.id}")
        return Entry(credential, codec.unpack(Meeting, _b(meeting)), codec.unpack(Room, _b(room)))

    async def find_link(self, link_digest: str) -> Credential | None:
        """The credential with this link digest as it stands, without redeeming it
        (signalling.cluster sends a guest's hello to the room's node before the
        credential is consumed there; admission reads when an early link opens)."""
        cid = await self._r.get(self._uniq("link", link_digest))
        if cid is None:
            return None
        fields: Any = await self._r.hgetall(self._rec(Credential, _s(cid)))
        return self._credential(fields) if fields else None

    async def find_link_room(self, link_digest: str, now: datetime) -> str | None:
        """The room a link leads to, only while it is redeemable (not revoked, not
        redeemed, ``now`` in its window), read in one round trip without spending
        it: what find_link, rooms.tokens.redeemable and get_meeting answer together
        (admission places a guest's hello with it)."""
        room_id = await self._link_rooms(
            (
                [self._uniq("link", link_digest)],
                [codec.micros(now), self._rec(Credential, ""), self._rec(Meeting, "")],
            )
        )
        if isinstance(room_id, Exception):
            raise room_id
        return None if room_id is None else _s(room_id)

    async def find_by_device(self, device_digest: str, now: datetime) -> Credential | None:
        cid = await self._r.get(self._uniq("device", device_digest))
        if cid is None:
            return None
        fields: Any = await self._r.hgetall(self._rec(Credential, _s(cid)))
        if not fields:
            return None
        c = self._credential(fields)
        usable = c.redeemed_at is not None and c.revoked_at is None and now < c.not_after
        return c if usable and c.device_digest == device_digest else None

    async def get_meeting_facts(self, meeting_id: str) -> Mapping[str, Any] | None:
        blob = await self._r.get(f"{self._p}facts:{meeting_id}")
        return None if blob is None else dict(codec.unpack_value(_b(blob)))

    async def put_meeting_facts(self, meeting_id: str, facts: Mapping[str, Any]) -> None:
        """Replace the meeting's facts (NotFound if there is no such meeting)."""
        if not await self._r.exists(self._rec(Meeting, meeting_id)):
            raise NotFound(f"no Meeting {meeting_id}")
        await self._r.set(f"{self._p}facts:{meeting_id}", codec.pack_value(facts))

    # -- the outbox ----------------------------------------------------------------

    def _message_fields(self, m: OutboxMessage) -> dict[Any, Any]:
        plain = codec.to_plain(m)
        fixed = {k: v for k, v in plain.items() if k not in _MSG_MUTABLE}
        fields: dict[Any, Any] = {
            "r": codec.pack_value(fixed),
            "tr": plain["trigger"],
            "st": plain["state"],
            "due": plain["due_at"],
            "att": plain["attempts"],
        }
        for short, name in (
            ("err", "last_error"),
            ("sent", "sent_at"),
            ("cb", "claimed_by"),
            ("cu", "claimed_until"),
        ):
            if plain[name] is not None:
                fields[short] = plain[name]
        return fields

    @staticmethod
    def _message(raw: Mapping[bytes, bytes]) -> OutboxMessage:
        plain = codec.unpack_value(raw[b"r"])
        plain["state"] = raw[b"st"].decode()
        plain["due_at"] = int(raw[b"due"])
        plain["attempts"] = int(raw[b"att"])
        plain["last_error"] = raw[b"err"].decode() if b"err" in raw else None
        plain["sent_at"] = int(raw[b"sent"]) if b"sent" in raw else None
        plain["claimed_by"] = raw[b"cb"].decode() if b"cb" in raw else None
        plain["claimed_until"] = int(raw[b"cu"]) if b"cu" in raw else None
        return codec.from_plain(OutboxMessage, plain)

    @staticmethod
    def _pairs(flat: Sequence[Any]) -> dict[bytes, bytes]:
        return {_b(k): _b(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}

    async def add_messages(self, messages: Sequence[OutboxMessage]) -> None:
        if not messages:
            return
        keys = [self._rec(OutboxMessage, m.id) for m in messages]
        if len(set(keys)) != len(keys):
            raise Conflict("the same message id twice in one write")
        meetings = sorted(
            {self._rec(Meeting, m.meeting_id) for m in messages if m.meeting_id is not None}
            | {
                self._rec(Invitation, m.invitation_id)
                for m in messages
                if m.invitation_id is not None
            }
        )
        async with self._r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(*keys)
                    await self._check_parents(pipe, meetings)
                    if await pipe.exists(*keys):
                        raise Conflict("already exists")
                    pipe.multi()  # type: ignore[no-untyped-call]
                    for key, message in zip(keys, messages, strict=True):
                        pipe.hset(key, mapping=self._message_fields(message))
                        if message.meeting_id is not None:
                            pipe.sadd(self._idx("msgs", message.meeting_id), message.id)
                        if message.state is MessageState.SCHEDULED:
                            ready = codec.micros(message.due_at)
                            pipe.zadd(self._idx("outbox", ""), {message.id: ready})
                    await pipe.execute()
                    return
                except WatchError:
                    continue

    async def list_messages(self, meeting_id: str) -> list[OutboxMessage]:
        ids = await self._r.smembers(self._idx("msgs", meeting_id))
        pipe = self._r.pipeline(transaction=False)
        for mid in sorted(ids):
            pipe.hgetall(self._rec(OutboxMessage, _s(mid)))
        found = [self._message(h) for h in await pipe.execute() if h]
        return sorted(found, key=lambda m: (m.due_at, m.id))

    async def claim_messages(
        self, now: datetime, claimer: str, until: datetime, limit: int
    ) -> list[OutboxMessage]:
        if limit <= 0:
            return []
        result = await self._claim_script(
            keys=[self._idx("outbox", "")],
            args=[
                codec.micros(now),
                codec.micros(until),
                claimer,
                limit,
                self._rec(OutboxMessage, ""),
            ],
        )
        claimed = [self._message(self._pairs(flat)) for flat in result]
        return sorted(claimed, key=lambda m: (m.due_at, m.id))

    async def settle_message(self, message: OutboxMessage, claimer: str) -> bool:
        done = await self._settle_script(
            keys=[self._idx("outbox", ""), self._rec(OutboxMessage, message.id)],
            args=[
                claimer,
                str(message.state),
                codec.micros(message.due_at),
                message.last_error or "",
                "" if message.sent_at is None else codec.micros(message.sent_at),
                message.id,
            ],
        )
        return bool(done)

    async def cancel_messages(
        self, meeting_id: str, now: datetime, triggers: Collection[Trigger] | None = None
    ) -> int:
        names = "" if triggers is None else "," + ",".join(str(t) for t in triggers) + ","
        count = await self._cancel_script(
            keys=[self._idx("outbox", ""), self._idx("msgs", meeting_id)],
            args=[codec.micros(now), self._rec(OutboxMessage, ""), names],
        )
        return int(count)

    async def next_message_due(self) -> datetime | None:
        first = await self._r.zrange(self._idx("outbox", ""), 0, 0, withscores=True)
        return codec.from_micros(int(first[0][1])) if first else None

    async def get_messaging(self, team_id: str) -> TeamMessaging | None:
        blob = await self._r.get(f"{self._p}messaging:{team_id}")
        return None if blob is None else codec.unpack(TeamMessaging, _b(blob))

    async def put_messaging(self, messaging: TeamMessaging) -> None:
        if not await self._r.exists(self._rec(Team, messaging.team_id)):
            raise NotFound(f"no Team {messaging.team_id}")
        await self._r.set(f"{self._p}messaging:{messaging.team_id}", codec.pack(messaging))

    # -- invitations of new members ----------------------------------------------

    async def add_invitation(self, invitation: Invitation) -> None:
        await self._insert([invitation])

    async def get_invitation(self, invitation_id: str) -> Invitation:
        return await self._get(Invitation, invitation_id)

    async def find_invitation(self, digest: str) -> Invitation | None:
        return await self._find(Invitation, self._uniq("invite", digest))

    async def consume_invitation(self, digest: str, now: datetime) -> Invitation | None:
        # WATCH the record, check the rule, write it used in one MULTI: a
        # concurrent consumer makes EXEC fail, and its retry sees it used.
        record_id = await self._r.get(self._uniq("invite", digest))
        if record_id is None:
            return None
        key = self._rec(Invitation, _s(record_id))
        async with self._r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    blob = await pipe.get(key)
                    if blob is None:
                        return None
                    found = codec.unpack(Invitation, _b(blob))
                    if not usable(found, now):
                        return None
                    used = replace(found, used_at=now)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(key, codec.pack(used))
                    await pipe.execute()
                    return used
                except WatchError:
                    continue

    # -- API keys and audit --------------------------------------------------

    async def add_api_key(self, key: ApiKey) -> None:
        await self._insert([key])

    async def find_api_key(self, digest: str) -> ApiKey | None:
        return await self._find(ApiKey, self._uniq("apikey", digest))

    async def append_audit(self, entry: AuditEntry) -> None:
        await self._insert([entry])

    # -- ended staff sessions ------------------------------------------------

    async def revoke_session(self, session_id: str, until: datetime, now: datetime) -> None:
        # The key expires when the cookie it names would have: Redis prunes it.
        # Relative to ``now`` (the server's clock), not to Redis's own.
        ttl_ms = (codec.micros(until) - codec.micros(now)) // 1000
        if ttl_ms > 0:
            await self._r.set(f"{self._p}revoked:{session_id}", b"1", px=ttl_ms)

    async def session_revoked(self, session_id: str) -> bool:
        return bool(await self._r.exists(f"{self._p}revoked:{session_id}"))

    async def list_audit(self, org_id: str, *, team_id: str | None = None) -> list[AuditEntry]:
        """Entries of the organisation (optionally of one team), by time then id."""
        ids: list[Any] = list(await self._r.zrange(self._idx("audit", org_id), 0, -1))
        entries = await self._many(AuditEntry, ids)
        if team_id is not None:
            entries = [e for e in entries if e.team_id == team_id]
        return sorted(entries, key=lambda e: (e.at, e.id))

    # -- the per-team ordered log ----------------------------------------------

    def _log_keys(self, team_id: str) -> tuple[str, str]:
        return f"{self._p}logseq:{team_id}", f"{self._p}log:{team_id}"

    async def append_log(
        self,
        team_id: str,
        at: datetime,
        topic: str,
        kind: str,
        meeting_id: str | None,
        data: Mapping[str, Any],
    ) -> LogEntry:
        blob = codec.pack_value(
            {"at": codec.micros(at), "topic": topic, "kind": kind, "m": meeting_id, "data": data}
        )
        seq = await self._append_script(keys=list(self._log_keys(team_id)), args=[blob])
        return self._entry(team_id, int(seq), blob)

    async def write_presence(
        self, appends: Sequence[LogAppend], facts: Mapping[str, Mapping[str, Any]]
    ) -> list[LogEntry]:
        # One script, so one round trip and one atomic step: every entry numbered
        # as append_log numbers it, then the facts; EVALSHA, and the script is
        # loaded again only if Redis answers NOSCRIPT (nothing ran then).
        if not appends and not facts:
            return []
        keys: list[str] = []
        args: list[Any] = [len(appends)]
        blobs: list[tuple[str, bytes]] = []
        for team_id, at, topic, kind, meeting_id, data in appends:
            blob = codec.pack_value(
                {
                    "at": codec.micros(at),
                    "topic": topic,
                    "kind": kind,
                    "m": meeting_id,
                    "data": data,
                }
            )
            blobs.append((team_id, blob))
            keys.extend(self._log_keys(team_id))
            args.append(blob)
        for meeting_id, meeting_facts in facts.items():
            keys.append(f"{self._p}facts:{meeting_id}")
            args.append(codec.pack_value(meeting_facts))
        seqs = await self._presence_script(keys=keys, args=args)
        return [
            self._entry(team_id, int(seq), blob)
            for (team_id, blob), seq in zip(blobs, seqs, strict=True)
        ]

    async def get_meeting_facts_many(
        self, meeting_ids: Collection[str]
    ) -> dict[str, Mapping[str, Any]]:
        ids = list(meeting_ids)
        if not ids:
            return {}
        blobs = await self._r.mget([f"{self._p}facts:{mid}" for mid in ids])
        return {
            mid: dict(codec.unpack_value(_b(blob)))
            for mid, blob in zip(ids, blobs, strict=True)
            if blob is not None
        }

    @staticmethod
    def _entry(team_id: str, seq: int, blob: bytes) -> LogEntry:
        e = codec.unpack_value(blob)
        at = codec.from_micros(e["at"])
        return LogEntry(seq, team_id, at, e["topic"], e["kind"], e["m"], e["data"])

    def _entries(self, team_id: str, raw: Sequence[Any]) -> list[LogEntry]:
        return [self._entry(team_id, int(sid.split(b"-")[0]), f[b"e"]) for sid, f in raw]

    async def log_since(self, team_id: str, after_seq: int, limit: int = 1000) -> list[LogEntry]:
        if limit <= 0:
            return []
        stream = self._log_keys(team_id)[1]
        raw: Any = await self._r.xrange(stream, f"({max(after_seq, 0)}-1", "+", count=limit)
        return self._entries(team_id, raw)

    async def log_bounds(self, team_id: str) -> tuple[int, int]:
        """As SQLiteStore.log_bounds: (0, 0) if never appended, (highest + 1,
        highest) when every entry has been trimmed."""
        counter, stream = self._log_keys(team_id)
        pipe = self._r.pipeline(transaction=True)
        pipe.get(counter)
        pipe.xrange(stream, "-", "+", count=1)
        highest_raw, first = await pipe.execute()
        if highest_raw is None:
            return (0, 0)
        highest = int(highest_raw)
        lowest = int(first[0][0].split(b"-")[0]) if first else highest + 1
        return (lowest, highest)

    async def log_for_meeting(self, team_id: str, meeting_id: str) -> list[LogEntry]:
        # A scan of the retained log: it is trimmed to a bounded length, and
        # status survives trimming through the meeting facts, not this.
        raw: Any = await self._r.xrange(self._log_keys(team_id)[1], "-", "+")
        return [e for e in self._entries(team_id, raw) if e.meeting_id == meeting_id]

    async def trim_log(self, team_id: str, keep_last: int) -> int:
        if keep_last < 0:
            raise ValueError("keep_last must be >= 0")
        # Exact MAXLEN keeps the newest keep_last entries in one atomic command
        # (MINID would need the id of the oldest kept entry first: two steps).
        removed = await self._r.xtrim(
            self._log_keys(team_id)[1], maxlen=keep_last, approximate=False
        )
        return int(removed)


if TYPE_CHECKING:  # mypy holds the class to the interface it implements

    def _implements(store: RedisStore) -> Store:
        return store
