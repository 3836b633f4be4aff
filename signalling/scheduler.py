"""The status scheduler: publishes a meeting's status when the clock changes it.

``rooms.status.meeting_status`` says when a meeting's status would next change
by the clock alone (``next_change_at``: starting_soon one hour before the
start, missed / completed at end + grace). The presence log hands every status
decision it computes to :meth:`StatusScheduler.watch`, which keeps one pending
wake-up per meeting in a heap of ``(when, meeting id)``; one task sleeps until
the earliest and then refreshes the meetings that are due, which logs a
``status_changed`` entry when the status moved (and hands the new decision
back here for the next wake-up). Nothing polls.

Tests drive time with :class:`signalling.clock.FixedClock`: they set the clock
and ``await scheduler.run_due(now)``; production sleeps until the next instant
(and is woken early whenever an earlier one is added).

Start-up (also after a restart) loads every meeting whose status can still
change by the clock, from every team (``Store.list_team_ids``), and refreshes
it: changes that fell due while the server was down are logged then, and the
heap is filled. Only meetings starting within :data:`HORIZON` are loaded; a
reload every half horizon picks up the next ones (meetings created or changed
meanwhile reach ``watch`` through the presence log anyway).

Several nodes sharing one Redis each run a scheduler; the last status each
logged is kept with the meeting's facts, so a change is logged by whichever
node refreshes first, and possibly once more by another (an idempotent
"status is X" event, never a wrong one).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from datetime import datetime, timedelta

import structlog

from rooms.errors import NotFound
from rooms.meeting import Meeting
from rooms.status import StatusDecision
from signalling.clock import Clock
from signalling.presence import LONGEST, PresenceLog
from signalling.store.base import Store

log = structlog.get_logger("vestibule.scheduler")

#: how far ahead start-up (and each reload) looks for meetings. A meeting's first
#: clock change is one hour before its start (starting_soon), so reloading every
#: HORIZON / 2 = 12 h finds every meeting long before that.
HORIZON = timedelta(hours=24)

#: heap entries with this id are the periodic reload, not a meeting
_RELOAD = ""


class StatusScheduler:
    """One timer for every meeting's next clock-driven status change."""

    def __init__(
        self, presence: PresenceLog, store: Store, clock: Clock, *, horizon: timedelta = HORIZON
    ) -> None:
        self.presence = presence
        self.store = store
        self.clock = clock
        self.horizon = horizon
        self._heap: list[tuple[datetime, str]] = []
        #: meeting id -> its one pending wake-up (heap entries that differ are stale)
        self._due: dict[str, datetime] = {}
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        #: set once the start-up load is done
        self.ready = asyncio.Event()

    # -- what is pending ---------------------------------------------------------------

    def watch(self, meeting: Meeting, decision: StatusDecision) -> None:
        """Keep ``meeting``'s wake-up at ``decision.next_change_at`` (a status listener)."""
        when = decision.next_change_at
        if when is None:
            self._due.pop(meeting.id, None)
            return
        if self._due.get(meeting.id) == when:
            return
        self._due[meeting.id] = when
        self._push(when, meeting.id)

    def pending(self) -> dict[str, datetime]:
        """Meeting id -> when it is next due (a copy)."""
        return dict(self._due)

    def next_at(self) -> datetime | None:
        """The earliest pending instant (meeting or reload), if any."""
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def _push(self, when: datetime, key: str) -> None:
        earliest = self._heap[0][0] if self._heap else None
        heapq.heappush(self._heap, (when, key))
        if earliest is None or when < earliest:
            self._wake.set()  # the sleeping task must wake earlier than it planned

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap and heap[0][1] != _RELOAD and self._due.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)

    # -- doing what is due ----------------------------------------------------------------

    async def load(self, now: datetime) -> int:
        """Refresh every meeting whose status the clock may still change, starting
        before ``now + horizon``; returns how many. Schedules the next reload."""
        count = 0
        # A meeting can still change by the clock until end + grace, and lasts
        # at most LONGEST: anything starting earlier than this is settled.
        start_from = now - LONGEST - self.presence.settings.link_grace
        for team_id in await self.store.list_team_ids():
            meetings = await self.store.list_meetings(
                team_id, start_from=start_from, start_to=now + self.horizon
            )
            pending = [meeting for meeting in meetings if not meeting.cancelled]
            await self.presence.refresh_statuses(pending, now)
            count += len(pending)
        self._push(now + self.horizon / 2, _RELOAD)
        log.info("status scheduler loaded", meetings=count, pending=len(self._due))
        return count

    async def run_due(self, now: datetime) -> int:
        """Refresh every meeting due at or before ``now``; returns how many."""
        async with self._lock:
            done = 0
            while True:
                self._drop_stale()
                if not self._heap or self._heap[0][0] > now:
                    return done
                _, key = heapq.heappop(self._heap)
                if key == _RELOAD:
                    await self.load(now)
                    continue
                del self._due[key]
                try:
                    meeting = await self.store.get_meeting(key)
                except NotFound:
                    continue
                try:
                    await self.presence.refresh_status(meeting, now)
                except Exception:  # one meeting's failure must not stop the others
                    log.exception("status refresh failed", meeting=key, team=meeting.team_id)
                done += 1

    async def run(self) -> None:
        """Load, then sleep until the earliest wake-up, forever (owned by the app)."""
        try:
            await self.load(self.clock.now())
        except Exception:  # keep scheduling what changes from now on; reload retries
            log.exception("status scheduler could not load pending meetings")
            self._push(self.clock.now() + timedelta(minutes=1), _RELOAD)
        self.ready.set()
        while True:
            self._wake.clear()
            await self.run_due(self.clock.now())
            nxt = self.next_at()
            timeout = None if nxt is None else max(0.0, (nxt - self.clock.now()).total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
