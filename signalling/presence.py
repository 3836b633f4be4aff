"""The presence recorder: every presence event into its team's ordered log.

``record`` is synchronous and only enqueues; one writer task drains the queue
in order, so a team's entries are appended (and published) in the order they
happened on this node. ``record`` returns a future that is done once the event
is in the log: whoever tells a client that something happened (``welcome``,
``admitted``, a ``left`` to the others) awaits it first, so nothing a client
was told about is ever missing from the log.

**Nothing is dropped.** A write that fails because the store cannot be reached
is retried, with a backoff capped at ``RETRY_MAX``, until the store takes it
(``vestibule_presence_retries_total`` counts the retries, the
``vestibule_presence_backlog`` gauge shows what waits). Retrying an event is
safe: the facts fold is idempotent and an entry already appended for one of
its meetings is not appended again. The backlog is bounded: past
``BACKLOG_LIMIT`` events, new work that would record more is refused
``unavailable`` (:meth:`PresenceLog.check_capacity`) before anything is done. For each
event about a meeting it folds the meeting's facts (rooms.status), keeps them
beside the meeting, and appends a ``status_changed`` entry when the status
moved.

Hosts join rooms, not meetings: a host's event (no meeting id) counts for the
meetings of that room whose link is valid at that moment (the window from
``link_before`` before the start to ``link_grace`` after the end).

**Order.** The store hands out a team's sequence numbers; ``append`` holds the
team (signalling/locks.py) from taking the number to publishing the entry, so on one node
entries are published in sequence order and a subscriber never sees 7 before 6
(a dashboard still fills gaps from the store, for entries of other nodes).

**Status across restarts.** The last status this server logged for a meeting is
kept with its facts (key ``"status"``), so after a restart a change that
happened while it was down is still logged as ``status_changed`` (the status
scheduler refreshes every pending meeting at start-up).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from rooms.errors import NotFound, Unavailable
from rooms.meeting import Meeting
from rooms.presence import LogEntry, MeetingChange, PresenceEvent, PresenceKind, Role
from rooms.status import (
    GuestIndicator,
    MeetingFacts,
    MeetingStatus,
    StatusDecision,
    fold,
    guest_indicator,
    meeting_status,
)
from signalling.bus import Bus
from signalling.cache import RecordCache
from signalling.clock import Clock
from signalling.locks import KeyedLocks
from signalling.metrics import Metrics
from signalling.outage import is_outage
from signalling.settings import Settings
from signalling.store.base import LogAppend, Store

log = structlog.get_logger("vestibule.presence")

#: how long a meeting read from the store is reused (see PresenceLog.meetings)
MEETING_TTL = 2.0
#: a meeting's facts as this node last read or wrote them are trusted this long;
#: another node may have folded events into them since (a REST change, a room
#: that moved), so past it they are read again before the next fold
FACTS_TTL = 2.0
#: meetings whose facts and status this node keeps in memory; the least recently
#: used go first (the store has them all)
FACTS_MAX = 20_000
#: longest meeting the room lookup considers (meeting types cap duration at 8 h)
LONGEST = timedelta(hours=8)
#: the key under which the last logged status is kept beside a meeting's facts
_STATUS_KEY = "status"

#: first wait before retrying a write the store refused, doubled up to RETRY_MAX:
#: a Redis restart or failover takes seconds, and a retry every 2 s at most finds
#: it back promptly without hammering a store that is coming up
RETRY_FIRST = 0.05
RETRY_MAX = 2.0
#: events waiting to be written past which new work is refused (bounded memory
#: through a long outage: about 1 KB each, so tens of MB at most)
BACKLOG_LIMIT = 50_000

#: events written in one store transaction at most (group commit)
BATCH_MAX = 500

StatusListener = Callable[[Meeting, StatusDecision], None]
_Item = tuple[PresenceEvent, "asyncio.Future[None]", int]


class PresenceLog:
    """The ordered writer of every team's log (see the module docstring)."""

    def __init__(
        self, store: Store, bus: Bus, clock: Clock, metrics: Metrics, settings: Settings
    ) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock
        self.metrics = metrics
        self.settings = settings
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        #: meetings as recently read, shared with admission: a guest's hello just
        #: read the meeting its ENTERED event is about. Short-lived, because another
        #: node may change a meeting; this node's own changes replace the entry.
        self.meetings: RecordCache[Meeting] = RecordCache(ttl=MEETING_TTL)
        self._facts: dict[str, MeetingFacts] = {}
        self._status: dict[str, MeetingStatus] = {}
        #: when this node's copy of a meeting's facts was last in step with the store
        self._synced: dict[str, float] = {}
        #: events recorded and not yet written, by their number (see record)
        self._pending: set[int] = set()
        self._recorded = 0
        #: futures of written(): (number of the last event before it, future)
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        #: meetings and teams held by a write of their entries or facts
        self._meeting_holds = KeyedLocks()
        self._team_holds = KeyedLocks()
        self._appended: dict[str, int] = {}
        self._status_listeners: list[StatusListener] = []
        self._entry_listeners: list[Callable[[LogEntry], None]] = []
        # another node changed a meeting (its record or its status): this node's
        # copies of it are stale; after the bus was away, any copy may be
        bus.on_meeting_change(self.forget_meeting)
        bus.on_reconnect(self._forget_meetings)

    def forget_meeting(self, meeting_id: str) -> None:
        """Read the meeting and its facts from the store next time they are needed."""
        self.meetings.forget(meeting_id)
        self._synced.pop(meeting_id, None)

    def _forget_meetings(self) -> None:
        self.meetings.clear()
        self._synced.clear()

    def on_status(self, listener: StatusListener) -> None:
        """Call ``listener`` with every status decision computed (the status
        scheduler keeps one wake-up per meeting at ``decision.next_change_at``)."""
        self._status_listeners.append(listener)

    def on_entry(self, listener: Callable[[LogEntry], None]) -> None:
        """Call ``listener`` with every entry this node appends, once published
        (webhooks: each entry is posted once, by the node that made it)."""
        self._entry_listeners.append(listener)

    # -- the hub's side (synchronous) ------------------------------------------------

    def record(self, event: PresenceEvent) -> asyncio.Future[None]:
        """Queue ``event``; the future is done once it is in the log.

        Events are written in the order recorded, in batches: whatever has
        queued up while the previous batch was written goes in one store
        transaction (group commit), so a burst of joins costs a few round trips,
        not three per join."""
        stored = asyncio.get_running_loop().create_future()
        self._recorded += 1
        self._pending.add(self._recorded)
        self._queue.put_nowait((event, stored, self._recorded))
        return stored

    def written(self) -> asyncio.Future[None]:
        """A future done once everything recorded so far is in the log."""
        done = asyncio.get_running_loop().create_future()
        if self._pending and min(self._pending) <= self._recorded:
            self._waiters.append((self._recorded, done))
        else:
            done.set_result(None)
        return done

    def check_capacity(self) -> None:
        """Unavailable when the backlog of unwritten events is at its bound."""
        if len(self._pending) >= BACKLOG_LIMIT:
            raise Unavailable("presence cannot be recorded right now", retry_after=RETRY_MAX)

    def indicator(self, meeting_id: str | None) -> str:
        if meeting_id is None:
            return "not_entered"
        facts = self._facts.get(meeting_id)
        return str(guest_indicator(facts if facts is not None else MeetingFacts()))

    # -- the writer ------------------------------------------------------------------

    async def run(self) -> None:
        """Write what was recorded, batch by batch, forever (owned by the app's
        cleanup context)."""
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH_MAX and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._store([event for event, _, _ in batch])
            finally:
                for _, stored, number in batch:
                    if not stored.done():
                        stored.set_result(None)
                    self._written(number)

    def _written(self, number: int) -> None:
        self._pending.discard(number)
        self.metrics.presence_backlog.set(len(self._pending))
        low = min(self._pending) if self._pending else self._recorded + 1
        if self._waiters and self._waiters[0][0] < low:
            waiting = []
            for last, done in self._waiters:
                if last < low:
                    if not done.done():
                        done.set_result(None)
                else:
                    waiting.append((last, done))
            self._waiters = waiting

    async def _store(self, events: list[PresenceEvent]) -> None:
        """Write a batch, retrying while the store cannot be reached.

        What the events mean (entries, folded facts, status changes) is worked
        out once, from the store's facts; only the write is retried, so a retry
        never folds an event twice."""
        delay = RETRY_FIRST
        composed: _Batch | None = None
        while True:
            try:
                if composed is None:
                    composed = await self._compose(events)
                await self._commit(composed)
                return
            except Exception as exc:
                if not is_outage(exc):
                    # a fault of ours: trying again cannot help, and the log must go on
                    log.exception("presence events not recorded", events=len(events))
                    return
                self.metrics.presence_retries.inc()
                log.warning(
                    "presence write failed; retrying",
                    events=len(events),
                    error=type(exc).__name__,
                    retry_in=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)

    async def flush(self) -> None:
        """Wait until everything recorded so far is in the log."""
        await self.written()

    async def _compose(self, events: list[PresenceEvent]) -> _Batch:
        """The entries and facts a batch writes. Everything read from the store
        is read first; only then is this node's memory changed."""
        meetings = [await self._meetings_for(event) for event in events]
        now = time.monotonic()
        stale = {
            m.id
            for found in meetings
            for m in found
            if m.id not in self._facts or now - self._synced.get(m.id, 0.0) > FACTS_TTL
        }
        stored = await self.store.get_meeting_facts_many(stale) if stale else {}
        for meeting_id in stale:
            self._load(meeting_id, stored.get(meeting_id), now)
        batch = _Batch()
        for event, found in zip(events, meetings, strict=True):
            data: dict[str, Any] = {
                "participant": event.participant_id,
                "role": str(event.role),
                "room": event.room_id,
                "detail": dict(event.detail),
            }
            kind = str(event.kind)
            if not found:
                batch.appends.append((event.team_id, event.at, "presence", kind, None, data))
                continue
            for meeting in found:
                facts = fold(self._facts.get(meeting.id, MeetingFacts()), event)
                self._remember(meeting.id, facts, now)
                indicator = str(guest_indicator(facts))
                batch.appends.append(
                    (
                        event.team_id,
                        event.at,
                        "presence",
                        kind,
                        meeting.id,
                        {**data, "indicator": indicator},
                    )
                )
                decision = meeting_status(meeting, facts, event.at, grace=self.settings.link_grace)
                batch.decisions.append((meeting, decision))
                old = self._status.get(meeting.id)
                if old != decision.status:
                    if old is not None:
                        batch.appends.append(_status_entry(meeting, event.at, old, decision.status))
                    self._status[meeting.id] = decision.status
                batch.touched.add(meeting.id)
        batch.facts = {mid: self._stored_facts(mid) for mid in batch.touched}
        return batch

    async def _commit(self, batch: _Batch) -> None:
        """One store transaction for the batch, then publish its entries in order.

        Every meeting and team it touches is held (signalling/locks.py), so a
        REST change of the same meeting or team cannot interleave its own
        entries or facts with the batch's."""
        async with (
            self._meeting_holds.hold(batch.touched),
            self._team_holds.hold({a[0] for a in batch.appends}),
        ):
            entries = await self.store.write_presence(batch.appends, batch.facts)
            synced = time.monotonic()
            for meeting_id in batch.touched:
                self._synced[meeting_id] = synced
            await self._published(entries)
        for meeting, decision in batch.decisions:
            for listener in self._status_listeners:
                listener(meeting, decision)
        await self._trim_after(entries)

    async def _meetings_for(self, event: PresenceEvent) -> list[Meeting]:
        if event.meeting_id is not None:
            try:
                return [await self.meetings.get(event.meeting_id, self.store.get_meeting)]
            except NotFound:
                return []
        if event.role is Role.GUEST:
            return []  # a walk-in: no meeting, and none of the room's meetings is theirs
        if event.kind in (
            PresenceKind.CALL_CONNECTED,
            PresenceKind.CALL_FAILED,
            PresenceKind.ENTERED,
            PresenceKind.IN_CALL,
            PresenceKind.LEFT,
        ):
            return await self.current_meetings(event.team_id, event.room_id, event.at)
        return []

    async def current_meetings(self, team_id: str, room_id: str, at: datetime) -> list[Meeting]:
        """Meetings in a room whose link is valid at ``at``."""
        before, grace = self.settings.link_before, self.settings.link_grace
        found = await self.store.list_meetings(
            team_id, start_from=at - grace - LONGEST, start_to=at + before
        )
        return [
            m
            for m in found
            if m.room_id == room_id
            and not m.cancelled
            and m.start is not None
            and m.start - before <= at < m.start + m.duration + grace
        ]

    async def _facts_of(self, meeting_id: str) -> MeetingFacts:
        """The meeting's facts: this node's copy while it is fresh (FACTS_TTL),
        else as stored (with the last logged status), which another node may
        have moved on."""
        facts = self._facts.get(meeting_id)
        now = time.monotonic()
        if facts is None or now - self._synced.get(meeting_id, 0.0) > FACTS_TTL:
            return self._load(meeting_id, await self.store.get_meeting_facts(meeting_id), now)
        return facts

    def _load(self, meeting_id: str, stored: Mapping[str, Any] | None, now: float) -> MeetingFacts:
        """Take a meeting's stored facts (and last logged status) as this node's copy."""
        facts = MeetingFacts.from_dict(stored) if stored else MeetingFacts()
        self._remember(meeting_id, facts, now)
        status = stored.get(_STATUS_KEY) if stored else None
        if isinstance(status, str):
            # an unknown value (a newer version wrote it) is recomputed instead
            with contextlib.suppress(ValueError):
                self._status[meeting_id] = MeetingStatus(status)
        return facts

    def _remember(self, meeting_id: str, facts: MeetingFacts, synced: float) -> None:
        """Keep ``facts`` as the meeting's, most recently used; forget the least
        recently used meeting past FACTS_MAX (the store keeps it)."""
        self._facts.pop(meeting_id, None)
        self._facts[meeting_id] = facts
        self._synced[meeting_id] = synced
        while len(self._facts) > FACTS_MAX:
            oldest = next(iter(self._facts))
            del self._facts[oldest]
            self._status.pop(oldest, None)
            self._synced.pop(oldest, None)

    def _stored_facts(self, meeting_id: str) -> dict[str, Any]:
        """The meeting's facts and last logged status, as kept beside it in the store."""
        facts = self._facts.get(meeting_id, MeetingFacts())
        stored: dict[str, Any] = facts.to_dict()
        status = self._status.get(meeting_id)
        if status is not None:
            stored[_STATUS_KEY] = str(status)
        return stored

    async def refresh_status(self, meeting: Meeting, now: datetime) -> MeetingStatus:
        """Recompute a meeting's status; log ``status_changed`` if it moved.

        The first status computed for a meeting this server never logged one
        for is recorded silently (there is no "was" to report). Every decision
        goes to the status listeners, so the scheduler always holds the next
        instant the clock alone changes it.
        """
        async with self._meeting_holds.hold((meeting.id,)):
            return (await self._refresh_held((meeting,), now))[meeting.id]

    async def refresh_statuses(self, meetings: Sequence[Meeting], now: datetime) -> None:
        """:meth:`refresh_status` of many meetings (the scheduler's start-up load):
        per BATCH_MAX of them, one store read for the facts this node does not
        hold fresh and one write for the statuses that moved and their
        ``status_changed`` entries, instead of a read and a write per meeting."""
        for start in range(0, len(meetings), BATCH_MAX):
            chunk = meetings[start : start + BATCH_MAX]
            async with self._meeting_holds.hold({m.id for m in chunk}):
                await self._refresh_held(chunk, now)

    async def _refresh_held(
        self, meetings: Sequence[Meeting], now: datetime
    ) -> dict[str, MeetingStatus]:
        """refresh_statuses of meetings whose locks the caller holds; each one's
        status, as decided now."""
        synced = time.monotonic()
        stale = {
            m.id
            for m in meetings
            if m.id not in self._facts or synced - self._synced.get(m.id, 0.0) > FACTS_TTL
        }
        stored = await self.store.get_meeting_facts_many(stale) if stale else {}
        for meeting_id in stale:
            self._load(meeting_id, stored.get(meeting_id), synced)
        appends: list[LogAppend] = []
        moved: dict[str, MeetingStatus] = {}
        decided: dict[str, MeetingStatus] = {}
        for meeting in meetings:
            facts = self._facts.get(meeting.id, MeetingFacts())
            decision = meeting_status(meeting, facts, now, grace=self.settings.link_grace)
            decided[meeting.id] = decision.status
            for listener in self._status_listeners:
                listener(meeting, decision)
            old = self._status.get(meeting.id)
            if old == decision.status:
                continue
            if old is not None:
                appends.append(_status_entry(meeting, now, old, decision.status))
            moved[meeting.id] = decision.status
        if not moved:
            return decided
        # the new statuses go into memory only once written: a write that fails
        # is tried again by the next load, which must see the change again
        facts_rows = {
            mid: {**self._stored_facts(mid), _STATUS_KEY: str(status)}
            for mid, status in moved.items()
        }
        async with self._team_holds.hold({a[0] for a in appends}):
            entries = await self.store.write_presence(appends, facts_rows)
            written = time.monotonic()
            for meeting_id, status in moved.items():
                self._status[meeting_id] = status
                self._synced[meeting_id] = written
            await self._published(entries)
        await self._trim_after(entries)
        return decided

    async def describe(
        self, meeting: Meeting, now: datetime
    ) -> tuple[MeetingStatus, GuestIndicator]:
        """Status and guest indicator of a meeting from its stored facts (correct
        after a restart, unlike the synchronous :meth:`status_of`)."""
        facts = await self._facts_of(meeting.id)
        decision = meeting_status(meeting, facts, now, grace=self.settings.link_grace)
        return decision.status, guest_indicator(facts)

    async def prime(self, meeting_ids: Iterable[str]) -> None:
        """Load stored facts so :meth:`status_of` and :meth:`indicator` are right
        for these meetings (REST lists after a restart)."""
        for meeting_id in meeting_ids:
            await self._facts_of(meeting_id)

    async def append(
        self,
        team_id: str,
        at: datetime,
        topic: str,
        kind: str,
        meeting_id: str | None,
        data: Mapping[str, Any],
    ) -> LogEntry:
        """Append to the team's log and publish it (the only way entries are made).

        The team's lock spans numbering and publishing, so this node publishes a
        team's entries in sequence order."""
        async with self._team_holds.hold((team_id,)):
            entry = await self.store.append_log(team_id, at, topic, kind, meeting_id, data)
            await self._published([entry])
        await self._maybe_trim(team_id, 1)
        return entry

    async def _published(self, entries: Sequence[LogEntry]) -> None:
        """Entries are in the store: count them, publish them (one bus call for
        the batch), tell the listeners (called under the teams' locks, in
        sequence order)."""
        for entry in entries:
            self.metrics.presence_events.labels(entry.topic).inc()
        await self.bus.publish(entries)
        for entry in entries:
            for listener in self._entry_listeners:
                listener(entry)

    async def _trim_after(self, entries: Sequence[LogEntry]) -> None:
        """_maybe_trim each team a batch appended to."""
        for team_id in {entry.team_id for entry in entries}:
            await self._maybe_trim(team_id, sum(1 for e in entries if e.team_id == team_id))

    async def _maybe_trim(self, team_id: str, appended: int) -> None:
        """Trim the team's log after every 1,000 entries or so, not on every append."""
        before = self._appended.get(team_id, 0)
        count = self._appended[team_id] = before + appended
        if count // 1000 != before // 1000:
            await self.store.trim_log(team_id, self.settings.log_retention)

    async def meeting_changed(
        self, meeting: Meeting, change: MeetingChange, now: datetime, **data: Any
    ) -> LogEntry:
        """Log a change to a meeting's record (created, cancelled, ...) and its
        status if that moved. REST handlers call this after storing the change."""
        self.meetings.put(meeting.id, meeting)
        status, _ = await self.describe(meeting, now)
        entry = await self.append(
            meeting.team_id,
            now,
            "meeting",
            str(change),
            meeting.id,
            {"status": str(status), "host": meeting.host_id, **data},
        )
        await self.refresh_status(meeting, now)
        return entry

    def status_of(self, meeting: Meeting, now: datetime) -> MeetingStatus:
        """The status from the facts in memory (see :meth:`describe` after a restart)."""
        facts = self._facts.get(meeting.id, MeetingFacts())
        return meeting_status(meeting, facts, now, grace=self.settings.link_grace).status


@dataclass
class _Batch:
    """What one group commit writes, worked out before the write."""

    appends: list[LogAppend] = field(default_factory=list)
    facts: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    #: the meetings whose facts it writes
    touched: set[str] = field(default_factory=set)
    #: every status decision made, for the status listeners once written
    decisions: list[tuple[Meeting, StatusDecision]] = field(default_factory=list)


def _status_entry(
    meeting: Meeting, at: datetime, was: MeetingStatus, status: MeetingStatus
) -> LogAppend:
    """The ``status_changed`` entry of a meeting whose status moved (logged here:
    the one place a status change is made)."""
    log.info(
        "meeting status", change=f"{was} -> {status}", meeting=meeting.id, team=meeting.team_id
    )
    data = {"status": str(status), "was": str(was), "host": meeting.host_id}
    return (meeting.team_id, at, "meeting", str(MeetingChange.STATUS_CHANGED), meeting.id, data)
