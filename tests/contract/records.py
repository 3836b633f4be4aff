"""Records and helpers of the contract suite (imported by its conftest and tests)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rooms.accounts import Organisation, StaffAccount, Team
from rooms.credentials import Credential
from rooms.meeting import Guest, Meeting, MeetingType
from rooms.room import Room
from signalling.store.base import Store
from signalling.store.redis import RedisStore
from signalling.store.sqlite import SQLiteStore

#: a fixed "now" with microseconds, to show timestamps survive exactly
NOW = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Backend:
    """Opens store instances that share one backing; closes them all at the end."""

    def __init__(self, kind: str, target: str, prefix: str = "") -> None:
        self.kind = kind
        self.target = target
        self.prefix = prefix
        self._opened: list[Any] = []

    async def open(self) -> Store:
        store: Any = (
            SQLiteStore(self.target)
            if self.kind == "sqlite"
            else RedisStore(self.target, prefix=self.prefix)
        )
        await store.open()
        self._opened.append(store)
        result: Store = store
        return result

    async def close_all(self) -> None:
        for store in self._opened:
            await store.close()


@dataclass
class World:
    """Seeded records, and builders for meetings and credentials."""

    store: Store
    org: Organisation
    team: Team
    host: StaffAccount
    other: StaffAccount
    room: Room
    shared: Room
    mtype: MeetingType
    _n: int = field(default=0)

    def meeting(self, **changes: Any) -> Meeting:
        """A meeting with every field set (override any with keywords)."""
        self._n += 1
        values: dict[str, Any] = {
            "id": f"m{self._n:03d}",
            "team_id": self.team.id,
            "host_id": self.host.id,
            "room_id": self.room.id,
            "type_id": self.mtype.id,
            "guest": Guest("Pat Example", "pat@example.org", "+44 20 7946 0000"),
            "duration": timedelta(minutes=45),
            "created_at": NOW - timedelta(days=3),
            "start": NOW + timedelta(hours=self._n),
            "proposed_slots": (NOW + timedelta(days=1), NOW + timedelta(days=2, microseconds=7)),
            "description": "follow-up",
            "series_id": "series-1",
            "cancelled_at": None,
            "cancelled_by": None,
            "review": "very helpful",
            "review_rating": 5,
            "summary": "keep doing the exercises",
        }
        values.update(changes)
        return Meeting(**values)

    def credential(self, meeting: Meeting, tag: str = "", **changes: Any) -> Credential:
        """A live credential for ``meeting``: window NOW-15min .. NOW+2h."""
        tag = tag or meeting.id
        values: dict[str, Any] = {
            "id": f"c-{tag}",
            "meeting_id": meeting.id,
            "team_id": meeting.team_id,
            "room_id": meeting.room_id,
            "link_digest": sha(f"link-{tag}"),
            "key_digest": sha(f"{meeting.room_id}:KEY-{tag}"),
            "not_before": NOW - timedelta(minutes=15),
            "not_after": NOW + timedelta(hours=2),
            "link_sealed": f"v1.sealed-link-{tag}",
            "key_sealed": f"v1.sealed-key-{tag}",
        }
        values.update(changes)
        return Credential(**values)
