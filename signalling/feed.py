"""The per-team feed behind the dashboards: ordered, gap-free, one wake-up per entry.

**No gap, no duplicate.** A subscriber is registered with its team's feed
*before* anything is read from the store; until it has caught up, live entries
are held in its own bounded queue. Catch-up reads ``log_since`` page by page,
then drains the held entries, dropping those with ``seq <= last sent``; the
switch to live happens with no ``await`` between "held queue empty" and
"live", so nothing can fall between the two. A live entry whose ``seq`` is not
``last + 1`` (an entry of another node still on its way) sends the subscriber
back to catching up from the store, which has every entry in order.

**One wake-up per entry, not per subscriber.** The bus calls each team feed
synchronously; the feed's one task encodes an entry once per encoding and
writes it straight to every live subscriber's socket (wake-ups cost
70-110 µs each, docs/architecture.md, so 1,000 subscriber tasks per event would blow the 50 ms p99).
A server's websocket frame is not masked (RFC 6455 5.1), so the whole frame,
header included, is the same bytes for every subscriber of an encoding: it is
built once, and the fan-out is a plain loop of ``transport.write`` calls with
no coroutine, await or encoding per subscriber (docs/benchmarks.md "fanout").

**Nothing missed, provably.** A subscriber receives only the entries its scope
includes, so the seqs it sees have gaps. Whenever the feed has handled entries
a subscriber was not sent (at the end of a burst, and when a catch-up goes
live), it sends ``{"type":"watermark","seq":N}``: every entry up to N that the
scope includes has been sent. A client that saw seq a, then the watermark N,
knows that nothing in (a, N] was its to see.

**Backpressure.** A subscriber that stops reading is closed 1013
``slow_consumer`` when its held queue passes its bound or its transport's write
buffer passes ``Connection.max_buffer``; it resumes with ``since``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine
from typing import Any, Protocol

import structlog

from rooms.errors import NotFound
from rooms.meeting import Meeting
from rooms.presence import LogEntry, MeetingChange
from signalling import protocol as p
from signalling.bus import Bus
from signalling.connection import Connection
from signalling.frames import ws_frame
from signalling.metrics import Metrics
from signalling.store.base import Store
from signalling.views import iso

log = structlog.get_logger("vestibule.dashboard")

#: entries read from the store per catch-up page
PAGE = 500
#: after the bus came back, the first wait before asking the store again, doubled
#: up to RESYNC_MAX (about 15 s of tries in all: the store comes back with the bus)
RESYNC_FIRST = 0.1
RESYNC_MAX = 8.0
#: held (not yet sent) entries per subscriber while it catches up, as a multiple
#: of the outgoing queue bound (settings.send_queue, docs/protocol.md "Limits"):
#: a catch-up reads the store while live entries keep coming, so it may fall
#: behind by more than one queue's worth before it overtakes them.
HELD_FACTOR = 4
#: meeting id -> host cache per team feed, cleared when it passes this size
HOST_CACHE = 10_000


class FeedOwner(Protocol):
    """What the feeds need of the dashboard that owns them (signalling.dashboard)."""

    store: Store
    bus: Bus
    metrics: Metrics

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None: ...
    def slow(self, sub: Subscriber) -> None: ...
    def unsubscribe(self, conn: Connection) -> None: ...
    async def snapshot(self, feed: TeamFeed, hosts: frozenset[str]) -> list[dict[str, Any]]: ...
    async def view_of(self, meeting_id: str) -> dict[str, Any] | None: ...


class Outgoing:
    """One log entry as dashboards see it, framed at most once per encoding."""

    __slots__ = ("_frames", "body", "entry", "hosts", "kind")

    def __init__(self, entry: LogEntry, body: dict[str, Any] | None, hosts: frozenset[str]):
        self.entry = entry
        #: the wire message; None when no dashboard shows it (no meeting)
        self.body = body
        #: its ``type`` (the messages_out metric's label)
        self.kind = "" if body is None else str(body["type"])
        #: the members whose meetings it concerns (host, and the previous host on reassign)
        self.hosts = hosts
        self._frames: dict[bool, bytes] = {}

    def frame(self, binary: bool) -> bytes:
        """The complete websocket frame (header and JSON or msgpack payload)."""
        frame = self._frames.get(binary)
        if frame is None:
            assert self.body is not None
            payload = p.encode(self.body, binary=binary)
            frame = self._frames[binary] = ws_frame(payload, binary=binary)
        return frame


class Subscriber:
    """One subscribed dashboard connection: its scope, last seq and held entries."""

    __slots__ = (
        "active",
        "conn",
        "feed",
        "held",
        "held_limit",
        "hosts",
        "last",
        "live",
        "told",
    )

    def __init__(self, conn: Connection, feed: TeamFeed, hosts: frozenset[str], held_limit: int):
        self.conn = conn
        self.feed = feed
        self.hosts = hosts
        self.held_limit = held_limit
        #: the highest seq handled (sent, or skipped as out of scope)
        self.last = 0
        #: the highest seq the client has been told of (an entry, a snapshot or a
        #: watermark); a watermark is due when ``last`` is past it
        self.told = 0
        self.live = False
        #: False once unsubscribed: a catch-up still running for it stops
        self.active = True
        self.held: deque[Outgoing] = deque()

    def hold(self, out: Outgoing) -> None:
        """Keep a live entry until catch-up reaches it (bounded)."""
        if len(self.held) >= self.held_limit:
            self.feed.dashboard.slow(self)
            return
        self.held.append(out)

    def offer(self, out: Outgoing) -> None:
        """A live entry, in order: send it if in scope; on a gap, catch up first."""
        seq = out.entry.seq
        if seq <= self.last:
            return
        if seq > self.last + 1:
            self.live = False
            self.hold(out)
            self.feed.dashboard.spawn(self.catch_up())
            return
        self._deliver(out)

    def _deliver(self, out: Outgoing) -> None:
        self.last = out.entry.seq
        if out.body is not None and not self.hosts.isdisjoint(out.hosts) and self.write(out):
            self.told = self.last
            self.feed.dashboard.metrics.messages_out.counts[out.kind] += 1

    def mark(self) -> None:
        """Tell the client everything up to ``last`` in its scope has been sent,
        if entries it was not sent came after the last thing it was told."""
        if self.last <= self.told:
            return
        conn = self.conn
        transport = conn.transport
        if conn.closed or conn.ws.closed or transport is None or transport.is_closing():
            return
        self.told = self.last
        body = {"type": "watermark", "seq": self.last}
        conn.write_frame(ws_frame(p.encode(body, binary=conn.binary), binary=conn.binary))
        self.feed.dashboard.metrics.messages_out.counts["watermark"] += 1

    def write(self, out: Outgoing) -> bool:
        """Write the entry's frame now; False (and unsubscribed) if the socket is gone
        or its write buffer is past ``max_buffer`` (then closed as a slow consumer).

        Synchronous on purpose: the frame goes whole into the transport's buffer, so
        it cannot interleave with aiohttp's own frames (pings, close). Frames the
        connection still holds for this loop iteration (a snapshot, catch-up
        entries) go first: Connection.write_frame keeps that order."""
        conn = self.conn
        transport = conn.transport  # frames are written to it directly (module docstring)
        if conn.closed or conn.ws.closed or transport is None or transport.is_closing():
            self.feed.dashboard.unsubscribe(conn)
            return False
        if transport.get_write_buffer_size() > conn.max_buffer:
            self.feed.dashboard.slow(self)
            return False
        conn.write_frame(out.frame(conn.binary))
        return True

    async def start(self, since: int | None, ref: p.Ref) -> None:
        """Snapshot (fresh, or empty before a catch-up), then go live."""
        feed = self.feed
        low, high = await feed.dashboard.store.log_bounds(feed.team_id)
        if since is None or since < low - 1 or since > high:
            await self._fresh(high, ref)
        else:
            self.last = self.told = since
            body: dict[str, Any] = {"type": "snapshot", "seq": since, "fresh": False}
            body["meetings"] = []
            if ref is not None:
                body["ref"] = ref
            await self.conn.send(body)
        await self.catch_up()

    async def _fresh(self, high: int, ref: p.Ref) -> None:
        """A full snapshot as of ``high`` (read before the meetings, so an entry
        appended meanwhile is sent again rather than missed: entries set state,
        so applying one twice is harmless)."""
        meetings = await self.feed.dashboard.snapshot(self.feed, self.hosts)
        self.last = self.told = high
        body: dict[str, Any] = {"type": "snapshot", "seq": high, "fresh": True}
        body["meetings"] = meetings
        if ref is not None:
            body["ref"] = ref
        await self.conn.send(body)

    async def catch_up(self) -> None:
        """Send what the store has after ``last``, then the held entries; go live."""
        store = self.feed.dashboard.store
        while self.active:
            page = await store.log_since(self.feed.team_id, self.last, PAGE)
            if page and page[0].seq > self.last + 1:
                # trimmed past us while we read: start over from a fresh snapshot
                await self._fresh((await store.log_bounds(self.feed.team_id))[1], None)
                continue
            for entry in page:
                self._deliver(await self.feed.outgoing(entry))
            if len(page) == PAGE:
                continue
            while self.held and self.held[0].entry.seq <= self.last + 1:
                out = self.held.popleft()
                if out.entry.seq == self.last + 1:
                    self._deliver(out)
            if not self.held:
                self.live = True  # no await since the check: nothing slips between
                self.mark()
                return
            # the oldest held entry is ahead of us: the store has what lies between


class TeamFeed:
    """A team's live entries on this node, fanned out to its subscribers."""

    def __init__(self, dashboard: FeedOwner, team_id: str) -> None:
        self.dashboard = dashboard
        self.team_id = team_id
        self.subscribers: set[Subscriber] = set()
        self.queue: deque[LogEntry] = deque()
        self.hosts: dict[str, str] = {}
        self.idle = asyncio.Event()
        self.idle.set()
        self._wake = asyncio.Event()
        self._unsubscribe = dashboard.bus.subscribe(team_id, self._on_entry)
        self._task = asyncio.get_running_loop().create_task(self._drain())

    def close(self) -> None:
        self._unsubscribe()
        self._task.cancel()

    async def resync(self) -> None:
        """Entries may have been published while the bus was away: a live subscriber
        behind the store's last seq catches up from the store (retried while the
        store, coming back with the bus, still refuses)."""
        wait = RESYNC_FIRST
        while True:
            try:
                _, high = await self.dashboard.store.log_bounds(self.team_id)
                break
            except Exception as err:
                if wait > RESYNC_MAX:
                    log.warning("dashboard catch-up after the bus came back failed", error=str(err))
                    return
                await asyncio.sleep(wait)
                wait *= 2
        for sub in list(self.subscribers):
            if sub.live and sub.active and sub.last < high:
                sub.live = False
                self.dashboard.spawn(sub.catch_up())

    def _on_entry(self, entry: LogEntry) -> None:
        self.queue.append(entry)
        self.idle.clear()
        self._wake.set()

    async def _drain(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.queue:
                entry = self.queue.popleft()
                try:
                    self.fan_out(await self.outgoing(entry))
                except Exception:  # one bad entry must not stop the feed
                    log.exception("dashboard entry not delivered", team=self.team_id)
                if self.queue:
                    # a fan-out to 1,000 sockets holds the loop ~10 ms (docs/benchmarks.md
                    # "fanout"): let other connections in between two, not after a burst
                    await asyncio.sleep(0)
            for sub in list(self.subscribers):
                if sub.live:
                    sub.mark()
            self.idle.set()

    def fan_out(self, out: Outgoing) -> None:
        """Hand one live entry to every subscriber, synchronously.

        The common case (live, next in sequence) is inlined: per subscriber it is a
        seq check, a scope check and :meth:`Subscriber.write`. Anything else (caught
        up not yet, a duplicate, a gap) takes the careful path through ``offer``."""
        seq = out.entry.seq
        visible = out.body is not None
        hosts = out.hosts
        sent = 0
        for sub in list(self.subscribers):  # a copy: slow ones leave the set meanwhile
            if not sub.live:
                sub.hold(out)
            elif seq != sub.last + 1:
                sub.offer(out)
            else:
                sub.last = seq
                if visible and not sub.hosts.isdisjoint(hosts) and sub.write(out):
                    sub.told = seq
                    sent += 1
        if sent:
            self.dashboard.metrics.messages_out.counts[out.kind] += sent

    def remember(self, meeting: Meeting) -> None:
        if len(self.hosts) >= HOST_CACHE:
            self.hosts.clear()
        self.hosts[meeting.id] = meeting.host_id

    async def _host_of(self, meeting_id: str) -> str | None:
        host = self.hosts.get(meeting_id)
        if host is None:
            try:
                meeting = await self.dashboard.store.get_meeting(meeting_id)
            except NotFound:
                return None
            if meeting.team_id != self.team_id:
                return None
            self.remember(meeting)
            host = meeting.host_id
        return host

    async def outgoing(self, entry: LogEntry) -> Outgoing:
        """The wire form of ``entry`` and whose scopes it falls in."""
        mid = entry.meeting_id
        if mid is None:
            return Outgoing(entry, None, frozenset())
        data = entry.data
        at = iso(entry.at)
        if entry.topic != "meeting":
            host = await self._host_of(mid)
            body = {
                "type": "presence",
                "seq": entry.seq,
                "meeting": mid,
                "participant": data.get("participant"),
                "role": data.get("role"),
                "kind": entry.kind,
                "indicator": data.get("indicator"),
                "at": at,
                "detail": data.get("detail", {}),
            }
            return Outgoing(entry, body, frozenset() if host is None else frozenset({host}))
        hosts = set()
        previous = self.hosts.get(mid)
        if entry.kind == MeetingChange.REASSIGNED and previous is not None:
            hosts.add(previous)
        body = {
            "type": "meeting",
            "seq": entry.seq,
            "meeting": mid,
            "change": entry.kind,
            "status": data.get("status"),
            "at": at,
        }
        if "was" in data:
            body["was"] = data["was"]
        if entry.kind != MeetingChange.STATUS_CHANGED:
            # the record changed: send it whole, so a dashboard needs no REST call
            view = await self.dashboard.view_of(mid)
            if view is not None:
                body["view"] = view
                self.hosts[mid] = view["host"]
        host = data.get("host") if isinstance(data.get("host"), str) else None
        host = host or await self._host_of(mid)
        if host is not None:
            hosts.add(host)
            body["host"] = host
        return Outgoing(entry, body, frozenset(hosts))
