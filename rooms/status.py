"""Meeting status and the guest indicator, computed from presence and the clock.

Presence events about one meeting are folded into :class:`MeetingFacts`; the
status is a pure function of the meeting, its facts and ``now``
(:func:`meeting_status`), and says when it would next change by the clock
alone (``next_change_at``), so the server sets one timer instead of polling.

**Order does not matter.** Events reach a meeting's facts from several nodes
and may be replayed, so the fold commutes: every fact is either a union (who
ever entered, who ever reported a failure, whether a call ever connected,
whether a guest was ever admitted) or a maximum under a total order (each
participant's latest event, the latest check verdict). Folding the same
events in any order, or folding one twice, gives equal facts.

"Host" below is a participant with role HOST; an invited colleague (MEMBER)
is neither side of the meeting.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, cast

from rooms.errors import BadTransition
from rooms.meeting import Meeting
from rooms.presence import PresenceEvent, PresenceKind, Role


class MeetingStatus(enum.StrEnum):
    PLANNING = "planning"
    SCHEDULED = "scheduled"
    STARTING_SOON = "starting_soon"
    LIVE = "live"
    COMPLETED = "completed"
    MISSED = "missed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class GuestIndicator(enum.StrEnum):
    NOT_ENTERED = "not_entered"
    ENTERED = "entered"
    CHECK_FAILED = "check_failed"
    CHECK_PASSED = "check_passed"


class CheckVerdict(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"


# -- facts ----------------------------------------------------------------------

#: Tie-break between two events of one participant at the same instant: the
#: one later in a normal lifecycle wins, and leaving wins over everything (a
#: person who entered and left in the same instant has left). Every kind has
#: its own rank, so (at, rank) orders any two distinct kinds totally.
_KIND_RANK: Mapping[PresenceKind, int] = MappingProxyType(
    {
        PresenceKind.ENTERED: 0,
        PresenceKind.CHECKED: 1,
        PresenceKind.MOVED: 2,
        PresenceKind.PUT_BACK: 3,
        PresenceKind.WAITING: 4,
        PresenceKind.ADMITTED: 5,
        PresenceKind.IN_CALL: 6,
        PresenceKind.CALL_FAILED: 7,
        PresenceKind.CALL_CONNECTED: 8,
        PresenceKind.DENIED: 9,
        PresenceKind.LEFT: 10,
    }
)

#: kinds after which the participant is no longer in the meeting's rooms.
#: MOVED is not one: the moved guest arrives in the target room at once.
_GONE = frozenset({PresenceKind.LEFT, PresenceKind.DENIED})
#: latest events that mean "in the call" (a peer's own connection reports come
#: from inside the call)
_IN_CALL = frozenset(
    {
        PresenceKind.ADMITTED,
        PresenceKind.IN_CALL,
        PresenceKind.CALL_CONNECTED,
        PresenceKind.CALL_FAILED,
    }
)

#: the two sides of a meeting
_SIDES = (Role.HOST, Role.GUEST)


@dataclass(frozen=True, slots=True, order=True)
class Mark:
    """A participant's latest event; compared by (at, rank) then role."""

    at: datetime
    rank: int
    role: Role

    @property
    def kind(self) -> PresenceKind:
        return _KIND_BY_RANK[self.rank]

    @property
    def present(self) -> bool:
        return self.kind not in _GONE

    @property
    def in_call(self) -> bool:
        return self.kind in _IN_CALL


_KIND_BY_RANK: Mapping[int, PresenceKind] = MappingProxyType(
    {rank: kind for kind, rank in _KIND_RANK.items()}
)


class Marks(Mapping[str, Mark]):
    """Participant id -> their latest :class:`Mark`, immutable, as one flat tuple
    ``(pid, mark, pid, mark, ...)``.

    A meeting has a host or two and a guest, so a lookup scans a few items; a
    read-only dict would be a dict and its proxy, ~0.25 KB against this ~0.1 KB,
    for every meeting whose facts a node keeps."""

    __slots__ = ("_flat",)

    def __init__(self, flat: tuple[str | Mark, ...] = ()) -> None:
        self._flat = flat

    @classmethod
    def of(cls, marks: Mapping[str, Mark]) -> Marks:
        return cls(tuple(item for pair in marks.items() for item in pair))

    def with_mark(self, participant_id: str, mark: Mark) -> Marks:
        """These marks with ``participant_id``'s replaced (or added) by ``mark``."""
        flat = self._flat
        for i in range(0, len(flat), 2):
            if flat[i] == participant_id:
                return Marks((*flat[:i], participant_id, mark, *flat[i + 2 :]))
        return Marks((*flat, participant_id, mark))

    def __getitem__(self, participant_id: str) -> Mark:
        flat = self._flat
        for i in range(0, len(flat), 2):
            if flat[i] == participant_id:
                return cast(Mark, flat[i + 1])
        raise KeyError(participant_id)

    def __iter__(self) -> Iterator[str]:
        for pid in self._flat[::2]:
            yield cast(str, pid)

    def __len__(self) -> int:
        return len(self._flat) // 2

    def __repr__(self) -> str:
        return f"Marks({dict(self.items())!r})"


_NO_MARKS = Marks()


@dataclass(frozen=True, slots=True, order=True)
class CheckMark:
    """The latest media check verdict; at one instant, FAILED < PASSED (total)."""

    at: datetime
    passed: bool


@dataclass(frozen=True, slots=True)
class MeetingFacts:
    """What presence has told us about one meeting (order-independent)."""

    #: participant id -> their latest event (only HOST and GUEST participants)
    latest: Mapping[str, Mark] = field(default_factory=lambda: _NO_MARKS)
    #: whether any peer ever reported its call connected
    ever_connected: bool = False
    host_failed: bool = False
    guest_failed: bool = False
    #: whether a guest was ever admitted (only a host in the room can admit,
    #: so host and guest met)
    guest_admitted: bool = False
    last_check: CheckMark | None = None

    def _entered(self, role: Role) -> bool:
        return any(m.role is role for m in self.latest.values())

    def _present(self, role: Role) -> bool:
        return any(m.role is role and m.present for m in self.latest.values())

    def _in_call(self, role: Role) -> bool:
        return any(m.role is role and m.in_call for m in self.latest.values())

    @property
    def in_call_together(self) -> bool:
        """A host and the guest are both in the call now (the meeting is live)."""
        return self._in_call(Role.HOST) and self._in_call(Role.GUEST)

    @property
    def host_entered(self) -> bool:
        return self._entered(Role.HOST)

    @property
    def guest_entered(self) -> bool:
        return self._entered(Role.GUEST)

    @property
    def host_present(self) -> bool:
        """A host of the meeting is in one of its rooms now."""
        return self._present(Role.HOST)

    @property
    def guest_present(self) -> bool:
        """The guest is in one of the meeting's rooms now (waiting or in the call)."""
        return self._present(Role.GUEST)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able mapping (the store keeps it beside the meeting)."""
        return {
            "latest": {
                pid: {"at": m.at.isoformat(), "kind": m.kind.value, "role": m.role.value}
                for pid, m in sorted(self.latest.items())
            },
            "ever_connected": self.ever_connected,
            "host_failed": self.host_failed,
            "guest_failed": self.guest_failed,
            "guest_admitted": self.guest_admitted,
            "last_check": None
            if self.last_check is None
            else {
                "at": self.last_check.at.isoformat(),
                "verdict": (
                    CheckVerdict.PASSED if self.last_check.passed else CheckVerdict.FAILED
                ).value,
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MeetingFacts:
        """The inverse of :meth:`to_dict`."""
        latest = Marks.of(
            {
                pid: Mark(
                    at=datetime.fromisoformat(m["at"]),
                    rank=_KIND_RANK[PresenceKind(m["kind"])],
                    role=Role(m["role"]),
                )
                for pid, m in data.get("latest", {}).items()
            }
        )
        check = data.get("last_check")
        return cls(
            latest=latest,
            ever_connected=bool(data.get("ever_connected", False)),
            host_failed=bool(data.get("host_failed", False)),
            guest_failed=bool(data.get("guest_failed", False)),
            guest_admitted=bool(data.get("guest_admitted", False)),
            last_check=None
            if check is None
            else CheckMark(
                at=datetime.fromisoformat(check["at"]),
                passed=CheckVerdict(check["verdict"]) is CheckVerdict.PASSED,
            ),
        )


def fold(facts: MeetingFacts, event: PresenceEvent) -> MeetingFacts:
    """``facts`` with ``event`` taken into account (commutative, idempotent).

    Events of MEMBER participants change nothing. A CHECKED event's verdict is
    ``detail["verdict"]`` ("passed" or "failed"); a CHECKED event without a
    recognisable verdict counts as failed (a check that says nothing did not pass).
    """
    if event.role not in _SIDES:
        return facts
    mark = Mark(at=event.at, rank=_KIND_RANK[event.kind], role=event.role)
    latest = facts.latest
    old = latest.get(event.participant_id)
    if old is None or mark > old:
        marks = latest if isinstance(latest, Marks) else Marks.of(latest)
        latest = marks.with_mark(event.participant_id, mark)
    is_host = event.role is Role.HOST
    failed = event.kind is PresenceKind.CALL_FAILED
    check = facts.last_check
    if event.kind is PresenceKind.CHECKED and event.role is Role.GUEST:
        new_check = CheckMark(event.at, event.detail.get("verdict") == CheckVerdict.PASSED.value)
        if check is None or new_check > check:
            check = new_check
    return MeetingFacts(
        latest=latest,
        ever_connected=facts.ever_connected or event.kind is PresenceKind.CALL_CONNECTED,
        host_failed=facts.host_failed or (failed and is_host),
        guest_failed=facts.guest_failed or (failed and not is_host),
        guest_admitted=facts.guest_admitted
        or (not is_host and event.kind in (PresenceKind.ADMITTED, PresenceKind.IN_CALL)),
        last_check=check,
    )


def facts_from(events: Iterable[PresenceEvent], facts: MeetingFacts | None = None) -> MeetingFacts:
    """Fold ``events`` (in any order) into ``facts`` (default: none yet)."""
    result = MeetingFacts() if facts is None else facts
    for event in events:
        result = fold(result, event)
    return result


# -- guest indicator ------------------------------------------------------------


def guest_indicator(facts: MeetingFacts) -> GuestIndicator:
    """The dashboard's four-symbol guest indicator (docs/domain.md).

    The latest check verdict wins: a guest who failed and then passed a retry
    shows green. A check result implies the guest entered.
    """
    if facts.last_check is not None:
        return (
            GuestIndicator.CHECK_PASSED if facts.last_check.passed else GuestIndicator.CHECK_FAILED
        )
    if facts.guest_entered:
        return GuestIndicator.ENTERED
    return GuestIndicator.NOT_ENTERED


# -- meeting status ---------------------------------------------------------------

#: A meeting is *over* at end + GRACE: until then a late guest may still come
#: (the link stays valid until end + grace too, docs/domain.md, "Guest credentials").
DEFAULT_GRACE = timedelta(hours=2)
#: "starting soon" begins this long before the start (docs/domain.md: "within the hour").
DEFAULT_SOON = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class StatusDecision:
    status: MeetingStatus
    #: the instant the status would change with no further event; None if only
    #: an event (or an edit of the meeting) can change it
    next_change_at: datetime | None = None


def meeting_status(
    meeting: Meeting,
    facts: MeetingFacts,
    now: datetime,
    *,
    grace: timedelta = DEFAULT_GRACE,
    soon: timedelta = DEFAULT_SOON,
) -> StatusDecision:
    """The status of ``meeting`` at ``now``, and when the clock alone changes it.

    Precedence, first matching row wins ("over" = now >= end + grace; "met" =
    a guest was admitted into a call, which only a host in the room can do):

    ====  ==============  =====================================================
    #     status          when
    ====  ==============  =====================================================
    1     cancelled       the meeting was cancelled (whatever happened)
    2     planning        no start chosen yet (proposed slots only)
    3     live            a host and the guest are both in the call now ("in
                          progress": a host with the guest still queued is not)
    4     failed          both entered, (met or over), never connected, and
                          both a host and the guest reported call failure
    5     completed       both entered and (met or over)
    6     missed          over, and the host or the guest never entered
    7     scheduled       now < start - soon
    8     starting_soon   otherwise (start - soon <= now < end + grace)
    ====  ==============  =====================================================

    Why "met or over" for completed/failed: both may have entered at different
    moments before meeting (host prepares early, guest arrives later); that is
    not a completed meeting until they met or the meeting is over. While both
    are present the status is live even if their peers reported failure: they
    may still connect (an ICE restart), and failed is an outcome.
    """
    if meeting.cancelled:
        return StatusDecision(MeetingStatus.CANCELLED)
    if meeting.start is None:
        return StatusDecision(MeetingStatus.PLANNING)
    if facts.in_call_together:
        return StatusDecision(MeetingStatus.LIVE)
    over_at = meeting.start + meeting.duration + grace
    over = now >= over_at
    both_entered = facts.host_entered and facts.guest_entered
    if both_entered and (facts.guest_admitted or over):
        if not facts.ever_connected and facts.host_failed and facts.guest_failed:
            return StatusDecision(MeetingStatus.FAILED)
        return StatusDecision(MeetingStatus.COMPLETED)
    if over:
        return StatusDecision(MeetingStatus.MISSED)
    soon_at = meeting.start - soon
    if now < soon_at:
        return StatusDecision(MeetingStatus.SCHEDULED, soon_at)
    return StatusDecision(MeetingStatus.STARTING_SOON, over_at)


# -- which status may follow which --------------------------------------------------

_M = MeetingStatus

#: Documentation of the status lifecycle, checked by the tests against
#: :func:`meeting_status`: which status may follow which as time passes and
#: presence arrives, and when the meeting is cancelled or rescheduled.
#:
#: - planning leaves only by a slot being chosen (or a cancel); no guest can
#:   be present before then (no link is valid without a start);
#: - scheduled -> starting_soon by the clock; presence can also make it live,
#:   completed or failed early (everyone came more than an hour ahead);
#: - live -> completed / failed when one of them goes; back to
#:   scheduled / starting_soon when they leave without having met (the guest
#:   never admitted);
#: - completed, failed and missed are outcomes, but presence may revise them:
#:   they come back (live), a late connection clears a failure, a failure
#:   report without any connection turns completed into failed, a host arriving
#:   after the end finds the guest still waiting (missed -> live);
#: - rescheduling moves scheduled / starting_soon / missed to scheduled or
#:   starting_soon (a meeting that is live, took place or was cancelled is
#:   not rescheduled; the API refuses that);
#: - cancelled is terminal; anything else may be cancelled.
STATUS_FOLLOWS: Mapping[MeetingStatus, frozenset[MeetingStatus]] = MappingProxyType(
    {
        _M.PLANNING: frozenset({_M.SCHEDULED, _M.STARTING_SOON, _M.CANCELLED}),
        _M.SCHEDULED: frozenset(
            {_M.STARTING_SOON, _M.LIVE, _M.COMPLETED, _M.FAILED, _M.PLANNING, _M.CANCELLED}
        ),
        _M.STARTING_SOON: frozenset(
            {_M.SCHEDULED, _M.LIVE, _M.COMPLETED, _M.FAILED, _M.MISSED, _M.PLANNING, _M.CANCELLED}
        ),
        _M.LIVE: frozenset({_M.SCHEDULED, _M.STARTING_SOON, _M.COMPLETED, _M.FAILED, _M.CANCELLED}),
        _M.COMPLETED: frozenset({_M.LIVE, _M.FAILED, _M.CANCELLED}),
        _M.FAILED: frozenset({_M.LIVE, _M.COMPLETED, _M.CANCELLED}),
        _M.MISSED: frozenset(
            {_M.LIVE, _M.COMPLETED, _M.FAILED, _M.SCHEDULED, _M.STARTING_SOON, _M.CANCELLED}
        ),
        _M.CANCELLED: frozenset(),
    }
)


def status_may_follow(old: MeetingStatus, new: MeetingStatus) -> bool:
    """Whether ``new`` may follow ``old`` (staying the same always may)."""
    return old is new or new in STATUS_FOLLOWS[old]


def check_status_change(old: MeetingStatus, new: MeetingStatus) -> None:
    """Raise BadTransition (naming ``old``) if ``new`` may not follow ``old``."""
    if not status_may_follow(old, new):
        raise BadTransition("meeting status", old.value, f"become {new.value}")
