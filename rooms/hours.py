"""A clinician's weekly working hours, their days off, and the free slots they leave.

Working hours are wall-clock ranges per weekday in the clinician's own time
zone (an IANA name such as ``Europe/Berlin``), so 09:00 stays 09:00 across a
change to or from summer time. The shell resolves the zone name to a
``tzinfo`` (reading the time-zone database is I/O) and passes it in.

Free slots (:func:`free_slots`) are the starts, stepped by one meeting type's
duration from the beginning of each range, of the slots that fit wholly in a
range of a day that is not a day off, start after ``now`` and before
``until``, and overlap none of the clinician's meetings.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from rooms.errors import Invalid
from rooms.validate import check_aware

#: minutes in a day: a range ends at most at midnight (1440)
DAY_MINUTES = 24 * 60
#: ranges start and end on the five-minute grid of the booking form
RANGE_STEP = 5
#: ranges per weekday: a split shift, a long lunch and then some
RANGES_PER_DAY_MAX = 6
#: days off kept at once: a year and a bit of single days
DAYS_OFF_MAX = 400
ZONE_NAME_MAX = 64
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, slots=True)
class DayRange:
    """From ``start`` to ``end`` minutes after local midnight, on ``weekday``
    (0 = Monday ... 6 = Sunday)."""

    weekday: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """When a member of a team can be booked online."""

    staff_id: str
    team_id: str
    timezone: str = "UTC"
    ranges: tuple[DayRange, ...] = ()
    #: ISO dates (``2030-12-24``) on which nobody can book, whatever the ranges
    days_off: frozenset[str] = frozenset()


def make_working_hours(
    *,
    staff_id: str,
    team_id: str,
    timezone: str,
    ranges: Iterable[DayRange],
    days_off: Iterable[str] = (),
) -> WorkingHours:
    """Validated working hours: every range within one day on the 5-minute grid,
    ranges of one weekday not overlapping (at most 6 a day, sorted), days off
    real ISO dates (at most 400, kept once each). The zone name is checked for
    shape only; the shell checks that it names a zone."""
    zone = timezone.strip()
    if not zone or len(zone) > ZONE_NAME_MAX or any(c.isspace() for c in zone):
        raise Invalid("timezone must be a time-zone name such as Europe/Berlin")
    checked = sorted(ranges, key=lambda r: (r.weekday, r.start))
    per_day: dict[int, int] = {}
    for index, r in enumerate(checked):
        if isinstance(r.weekday, bool) or not 0 <= r.weekday <= 6:
            raise Invalid("weekday must be 0 (Monday) to 6 (Sunday)")
        if not 0 <= r.start < r.end <= DAY_MINUTES:
            raise Invalid("a range starts before it ends, within one day (00:00 to 24:00)")
        if r.start % RANGE_STEP or r.end % RANGE_STEP:
            raise Invalid("ranges start and end on a multiple of 5 minutes")
        previous = checked[index - 1] if index else None
        if previous is not None and previous.weekday == r.weekday and previous.end > r.start:
            raise Invalid(f"two ranges on {WEEKDAYS[r.weekday]} overlap")
        per_day[r.weekday] = per_day.get(r.weekday, 0) + 1
        if per_day[r.weekday] > RANGES_PER_DAY_MAX:
            raise Invalid(f"at most {RANGES_PER_DAY_MAX} ranges a day")
    days: set[str] = set()
    for raw in days_off:
        try:
            days.add(date.fromisoformat(raw.strip()).isoformat())
        except ValueError:
            raise Invalid("days off must be dates such as 2030-12-24") from None
    if len(days) > DAYS_OFF_MAX:
        raise Invalid(f"at most {DAYS_OFF_MAX} days off")
    return WorkingHours(
        staff_id=staff_id,
        team_id=team_id,
        timezone=zone,
        ranges=tuple(checked),
        days_off=frozenset(days),
    )


def _instant(day: date, minutes: int, zone: tzinfo) -> datetime:
    """The instant of wall-clock ``minutes`` after midnight on ``day`` in ``zone``
    (24:00 is the next midnight; a time skipped by a change to summer time is
    read with the offset before the change, as ``datetime`` does)."""
    if minutes == DAY_MINUTES:
        local = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    else:
        local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=zone)
    return local.astimezone(UTC)


def _exists(instant: datetime, day: date, minutes: int, zone: tzinfo) -> bool:
    """Whether the wall clock in ``zone`` ever shows ``minutes`` on ``day`` (not
    in the hour skipped when summer time starts)."""
    shown = instant.astimezone(zone)
    return shown.date() == day and shown.hour * 60 + shown.minute == minutes


def free_slots(
    hours: WorkingHours,
    zone: tzinfo,
    duration: timedelta,
    busy: Sequence[tuple[datetime, datetime]],
    now: datetime,
    until: datetime,
) -> list[datetime]:
    """The starts (UTC, ascending) of the free slots of ``duration`` from ``now``
    to ``until``: within the working hours of days that are not days off,
    stepped by ``duration`` from each range's start, overlapping no interval
    of ``busy`` (the clinician's meetings, [start, end))."""
    check_aware(now, field="now")
    check_aware(until, field="until")
    if duration <= timedelta(0):
        raise Invalid("a slot needs a duration")
    taken = sorted(busy)
    starts = [b_start for b_start, _ in taken]
    # latest end among the meetings up to each index: a slot overlaps a meeting
    # iff some meeting starting before the slot ends ends after the slot starts
    latest_end: list[datetime] = []
    for _, b_end in taken:
        latest_end.append(b_end if not latest_end else max(latest_end[-1], b_end))
    by_day: dict[int, list[DayRange]] = {}
    for r in hours.ranges:
        by_day.setdefault(r.weekday, []).append(r)
    step = max(1, int(duration.total_seconds() // 60))
    day = now.astimezone(zone).date() - timedelta(days=1)
    last = until.astimezone(zone).date()
    out: list[datetime] = []
    while day <= last:
        if day.isoformat() not in hours.days_off:
            for r in by_day.get(day.weekday(), ()):
                range_end = _instant(day, r.end, zone)
                for minute in range(r.start, r.end, step):
                    start = _instant(day, minute, zone)
                    end = start + duration
                    if end > range_end or not _exists(start, day, minute, zone):
                        continue
                    if start <= now or start >= until:
                        continue
                    before = bisect_left(starts, end)
                    if before == 0 or latest_end[before - 1] <= start:
                        out.append(start)
        day += timedelta(days=1)
    return sorted(set(out))
