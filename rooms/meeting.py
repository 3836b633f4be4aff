"""Meeting types and meetings."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta


class MeetingKind(enum.StrEnum):
    VIDEO = "video"
    PHONE = "phone"
    IN_PERSON = "in_person"


class Frequency(enum.StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    FORTNIGHTLY = "fortnightly"
    MONTHLY = "monthly"


@dataclass(frozen=True, slots=True)
class MeetingType:
    id: str
    team_id: str
    label: str
    duration: timedelta
    colour: str = "#3b82f6"
    online_bookable: bool = False
    known_patients_only: bool = False
    kinds: frozenset[MeetingKind] = frozenset({MeetingKind.VIDEO})
    address: str = ""
    instructions: str = ""
    description: str = ""
    #: a retired type is kept for the meetings that use it but offered no more
    retired: bool = False


@dataclass(frozen=True, slots=True)
class Guest:
    name: str
    email: str
    phone: str = ""


@dataclass(frozen=True, slots=True)
class Meeting:
    """One meeting. ``start`` is None while the guest has not yet chosen one of
    ``proposed_slots`` (status *planning*). Every occurrence of a recurring
    series is its own Meeting sharing ``series_id``."""

    id: str
    team_id: str
    host_id: str
    room_id: str
    type_id: str | None
    guest: Guest
    duration: timedelta
    created_at: datetime
    start: datetime | None = None
    proposed_slots: tuple[datetime, ...] = ()
    description: str = ""
    series_id: str | None = None
    cancelled_at: datetime | None = None
    cancelled_by: str | None = None
    review: str | None = None
    review_rating: int | None = None
    summary: str | None = None
    #: booked by the patient on the clinician's public booking page (rooms.booking)
    booked_online: bool = False

    @property
    def end(self) -> datetime | None:
        return None if self.start is None else self.start + self.duration

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None


@dataclass(frozen=True, slots=True)
class Series:
    """A recurring booking: the same slot at ``frequency`` until ``until`` or ``count``."""

    id: str
    frequency: Frequency
    until: datetime | None = None
    count: int | None = None
    occurrence_ids: tuple[str, ...] = field(default_factory=tuple)
