"""The presence recorder: every presence event into its team's ordered log.

``record`` is synchronous and only enqueues, so room logic never waits on the
store; one writer task drains the queue in order, so a team's entries are
appended (and published) in the order they happened on this node. For each
event about a meeting it folds the meeting's facts (rooms.status), keeps them
beside the meeting, and appends a ``status_changed`` entry when the status
moved.

Hosts join rooms, not meetings: a host's event (no meeting id) counts for the
meetings of that room whose link is valid at that moment (the window from
``link_before`` before the start to ``link_grace`` after the end).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog

from rooms.errors import NotFound
from rooms.meeting import Meeting
from rooms.presence import LogEntry, MeetingChange, PresenceEvent, PresenceKind
from rooms.status import MeetingFacts, MeetingStatus, fold, guest_indicator, meeting_status
from signalling.bus import Bus
from signalling.clock import Clock
from signalling.metrics import Metrics
from signalling.settings import Settings
from signalling.store.base import Store

log = structlog.get_logger("vestibule.presence")

#: longest meeting the room lookup considers (meeting types cap duration at 8 h)
_LONGEST = timedelta(hours=8)


class PresenceLog:
    def __init__(
        self, store: Store, bus: Bus, clock: Clock, metrics: Metrics, settings: Settings
    ) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock
        self.metrics = metrics
        self.settings = settings
        self._queue: asyncio.Queue[PresenceEvent | None] = asyncio.Queue()
        self._facts: dict[str, MeetingFacts] = {}
        self._status: dict[str, MeetingStatus] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._appended: dict[str, int] = {}
        #: called with a meeting whenever its record changed (the status scheduler)
        self.change_listeners: list[Callable[[Meeting], None]] = []

    # -- the hub's side (synchronous) ------------------------------------------------

    def record(self, event: PresenceEvent) -> None:
        self._idle.clear()
        self._queue.put_nowait(event)

    def indicator(self, meeting_id: str | None) -> str:
        if meeting_id is None:
            return "not_entered"
        facts = self._facts.get(meeting_id)
        return str(guest_indicator(facts if facts is not None else MeetingFacts()))

    # -- the writer ------------------------------------------------------------------

    async def run(self) -> None:
        """Drain the queue forever (owned by the app's cleanup context)."""
        while True:
            event = await self._queue.get()
            try:
                if event is not None:
                    await self._write(event)
            except Exception:  # one bad event must not stop the log for everyone
                log.exception("presence event not recorded", team=event.team_id if event else None)
            finally:
                if self._queue.empty():
                    self._idle.set()

    async def flush(self) -> None:
        """Wait until everything recorded so far is in the log."""
        await self._idle.wait()

    async def _write(self, event: PresenceEvent) -> None:
        meetings = await self._meetings_for(event)
        data: dict[str, Any] = {
            "participant": event.participant_id,
            "role": str(event.role),
            "room": event.room_id,
            "detail": dict(event.detail),
        }
        targets: list[Meeting | None] = list(meetings) if meetings else [None]
        for meeting in targets:
            mid = meeting.id if meeting is not None else None
            if meeting is not None:
                facts = await self._facts_of(meeting.id)
                facts = fold(facts, event)
                self._facts[meeting.id] = facts
                await self.store.put_meeting_facts(meeting.id, facts.to_dict())
                data = {**data, "indicator": str(guest_indicator(facts))}
            await self.append(event.team_id, event.at, "presence", str(event.kind), mid, data)
            if meeting is not None:
                await self.refresh_status(meeting, event.at)

    async def _meetings_for(self, event: PresenceEvent) -> list[Meeting]:
        if event.meeting_id is not None:
            try:
                return [await self.store.get_meeting(event.meeting_id)]
            except NotFound:
                return []
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
            team_id, start_from=at - grace - _LONGEST, start_to=at + before
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
        facts = self._facts.get(meeting_id)
        if facts is None:
            stored = await self.store.get_meeting_facts(meeting_id)
            facts = MeetingFacts.from_dict(stored) if stored else MeetingFacts()
            self._facts[meeting_id] = facts
        return facts

    async def refresh_status(self, meeting: Meeting, now: datetime) -> MeetingStatus:
        """Recompute a meeting's status; log ``status_changed`` if it moved."""
        facts = await self._facts_of(meeting.id)
        decision = meeting_status(meeting, facts, now, grace=self.settings.link_grace)
        old = self._status.get(meeting.id)
        self._status[meeting.id] = decision.status
        if old is not None and old != decision.status:
            log.info(
                "meeting status",
                change=f"{old} -> {decision.status}",
                meeting=meeting.id,
                team=meeting.team_id,
            )
            await self.append(
                meeting.team_id,
                now,
                "meeting",
                str(MeetingChange.STATUS_CHANGED),
                meeting.id,
                {"status": str(decision.status), "was": str(old)},
            )
        return decision.status

    async def append(
        self,
        team_id: str,
        at: datetime,
        topic: str,
        kind: str,
        meeting_id: str | None,
        data: Mapping[str, Any],
    ) -> LogEntry:
        """Append to the team's log and publish it (the only way entries are made)."""
        entry = await self.store.append_log(team_id, at, topic, kind, meeting_id, data)
        self.metrics.presence_events.labels(topic).inc()
        await self.bus.publish(entry)
        count = self._appended.get(team_id, 0) + 1
        self._appended[team_id] = count
        if count % 1000 == 0:  # trim now and then, not on every append
            await self.store.trim_log(team_id, self.settings.log_retention)
        return entry

    async def meeting_changed(
        self, meeting: Meeting, change: MeetingChange, now: datetime, **data: Any
    ) -> LogEntry:
        """Log a change to a meeting's record (created, cancelled, ...) and its
        status if that moved. REST handlers call this after storing the change."""
        entry = await self.append(
            meeting.team_id,
            now,
            "meeting",
            str(change),
            meeting.id,
            {"status": str(self.status_of(meeting, now)), **data},
        )
        await self.refresh_status(meeting, now)
        for listener in self.change_listeners:
            listener(meeting)
        return entry

    def status_of(self, meeting: Meeting, now: datetime) -> MeetingStatus:
        facts = self._facts.get(meeting.id, MeetingFacts())
        return meeting_status(meeting, facts, now, grace=self.settings.link_grace).status
