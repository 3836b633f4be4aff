"""Contract: online booking's store operations. A slot goes to exactly one of
any number of concurrent bookers; meeting types in use are not deleted; working
hours round-trip; the guests a team knows."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from rooms.errors import NotFound
from rooms.hours import DayRange, WorkingHours
from rooms.meeting import Guest, MeetingType

from .records import NOW, Backend, World

SLOT = NOW + timedelta(days=2)


def _dated(world: World, **changes: object) -> dict[str, object]:
    base: dict[str, object] = {"start": SLOT, "series_id": None, "proposed_slots": ()}
    base.update(changes)
    return base


async def test_concurrent_bookings_of_one_slot_give_it_to_exactly_one(
    world: World, backend: Backend
) -> None:
    """Eight bookers on four store instances (four processes' views) take the
    same time, or overlapping times, of one host at once: one wins."""
    stores = [world.store, *[await backend.open() for _ in range(3)]]
    meetings = [
        world.meeting(**_dated(world, start=SLOT + timedelta(minutes=5 * (n % 3))))
        for n in range(8)
    ]
    results = await asyncio.gather(
        *(
            stores[n % len(stores)].book_if_free(m, world.credential(m))
            for n, m in enumerate(meetings)
        )
    )
    assert results.count(True) == 1
    winner = meetings[results.index(True)]
    stored = await world.store.list_meetings(world.team.id, start_from=NOW)
    assert [m.id for m in stored] == [winner.id]
    assert await world.store.get_credential_for_meeting(winner.id) is not None
    for loser in (m for m, won in zip(meetings, results, strict=True) if not won):
        assert await world.store.get_credential_for_meeting(loser.id) is None


async def test_a_slot_is_free_beside_cancelled_ended_and_other_hosts_meetings(
    world: World,
) -> None:
    store = world.store
    cancelled = world.meeting(**_dated(world, cancelled_at=NOW, cancelled_by="s1"))
    before = world.meeting(**_dated(world, start=SLOT - timedelta(minutes=45)))  # ends at SLOT
    colleague = world.meeting(**_dated(world, host_id=world.other.id, room_id=world.shared.id))
    await store.add_meetings([cancelled, before, colleague], [])
    mine = world.meeting(**_dated(world))
    assert await store.book_if_free(mine, world.credential(mine))
    # now taken: the same time again, a time starting inside it, one ending inside it
    for start in (SLOT, SLOT + timedelta(minutes=44), SLOT - timedelta(minutes=30)):
        clash = world.meeting(**_dated(world, start=start))
        assert not await store.book_if_free(clash, world.credential(clash))
    after = world.meeting(**_dated(world, start=SLOT + timedelta(minutes=45)))
    assert await store.book_if_free(after, world.credential(after))
    # a long meeting (8 hours) starting well before still blocks
    long_ago = world.meeting(
        **_dated(world, start=SLOT + timedelta(days=1), duration=timedelta(hours=8))
    )
    await store.add_meetings([long_ago], [])
    late = world.meeting(**_dated(world, start=SLOT + timedelta(days=1, hours=7, minutes=30)))
    assert not await store.book_if_free(late, world.credential(late))


async def test_delete_meeting_type_only_while_unused(world: World) -> None:
    store = world.store
    unused = MeetingType("mt2", world.team.id, "Quick check", timedelta(minutes=15))
    await store.add_meeting_type(unused)
    assert await store.delete_meeting_type(unused.id) is True
    assert [t.id for t in await store.list_meeting_types(world.team.id)] == [world.mtype.id]
    with pytest.raises(NotFound):
        await store.get_meeting_type(unused.id)
    with pytest.raises(NotFound):
        await store.delete_meeting_type(unused.id)
    # used by a meeting in planning only: kept
    await store.add_meetings([world.meeting(start=None)], [])
    assert await store.delete_meeting_type(world.mtype.id) is False
    assert await store.get_meeting_type(world.mtype.id) == world.mtype
    # a meeting naming a deleted type is refused
    again = MeetingType("mt3", world.team.id, "Gone", timedelta(minutes=15))
    await store.add_meeting_type(again)
    assert await store.delete_meeting_type(again.id)
    with pytest.raises(NotFound):
        await store.add_meetings([world.meeting(type_id=again.id)], [])


async def test_delete_races_a_booking_with_the_type(world: World, backend: Backend) -> None:
    """Deleting a type while a meeting with it is added: either the meeting is
    stored and the type kept, or the type is gone and the meeting refused."""
    other = await backend.open()
    for n in range(6):
        mtype = MeetingType(f"race{n}", world.team.id, "Race", timedelta(minutes=15))
        await world.store.add_meeting_type(mtype)
        meeting = world.meeting(type_id=mtype.id)
        added, deleted = await asyncio.gather(
            world.store.add_meetings([meeting], []),
            other.delete_meeting_type(mtype.id),
            return_exceptions=True,
        )
        if deleted is True:
            assert isinstance(added, NotFound)
        else:
            assert deleted is False and added is None
            assert (await world.store.get_meeting(meeting.id)).type_id == mtype.id


async def test_working_hours_round_trip(world: World) -> None:
    store = world.store
    assert await store.get_working_hours(world.host.id) is None
    hours = WorkingHours(
        world.host.id,
        world.team.id,
        "Europe/Berlin",
        (DayRange(0, 540, 720), DayRange(0, 780, 1020), DayRange(4, 480, 600)),
        frozenset({"2026-12-24", "2026-12-31"}),
    )
    await store.put_working_hours(hours)
    assert await store.get_working_hours(world.host.id) == hours
    changed = dataclasses.replace(hours, timezone="UTC", ranges=(), days_off=frozenset())
    await store.put_working_hours(changed)
    assert await store.get_working_hours(world.host.id) == changed
    assert await store.get_working_hours(world.other.id) is None
    with pytest.raises(NotFound):
        await store.put_working_hours(dataclasses.replace(hours, staff_id="ghost"))


async def test_knows_guest_by_email_from_meetings_the_practice_booked(world: World) -> None:
    store = world.store
    assert not await store.knows_guest(world.team.id, "pat@example.org")
    await store.add_meetings(
        [world.meeting(guest=Guest("Pat", "Pat@Example.org"), cancelled_at=NOW, cancelled_by="s1")],
        [],
    )
    assert await store.knows_guest(world.team.id, " pat@EXAMPLE.org ")
    assert not await store.knows_guest(world.team.id, "pat@example.com")
    assert not await store.knows_guest("other-team", "pat@example.org")
    # a meeting the patient booked online makes nobody known
    online = world.meeting(guest=Guest("Sam", "sam@example.org"), booked_online=True)
    await store.add_meetings([online], [])
    assert (await store.get_meeting(online.id)).booked_online
    assert not await store.knows_guest(world.team.id, "sam@example.org")
