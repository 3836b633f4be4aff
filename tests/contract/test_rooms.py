"""Contract: rooms (slugs unique) and meeting types."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from rooms.errors import Conflict, NotFound
from rooms.meeting import MeetingKind, MeetingType
from rooms.room import Room, RoomKind

from .records import World


async def test_room_round_trip_and_slug_lookup(world: World) -> None:
    store = world.store
    assert await store.get_room(world.room.id) == world.room
    assert await store.get_room(world.shared.id) == world.shared
    assert await store.find_room_by_slug("harbour-reception") == world.shared
    assert await store.find_room_by_slug("nowhere") is None
    assert await store.list_rooms(world.team.id) == [world.room, world.shared]
    with pytest.raises(NotFound):
        await store.get_room("ghost")


async def test_slugs_are_unique(world: World) -> None:
    clash = Room("r9", world.team.id, world.room.slug, "Other", RoomKind.CUSTOM)
    with pytest.raises(Conflict):
        await world.store.add_room(clash)
    with pytest.raises(Conflict):
        await world.store.add_room(dataclasses.replace(world.room, slug="fresh"))  # same id
    assert await world.store.find_room_by_slug("fresh") is None


async def test_update_room_moves_the_slug(world: World) -> None:
    store = world.store
    renamed = dataclasses.replace(world.shared, slug="front-desk", capacity=12, show_position=True)
    await store.update_room(renamed)
    assert await store.get_room(world.shared.id) == renamed
    assert await store.find_room_by_slug("front-desk") == renamed
    assert await store.find_room_by_slug("harbour-reception") is None
    with pytest.raises(Conflict):
        await store.update_room(dataclasses.replace(renamed, slug=world.room.slug))
    with pytest.raises(NotFound):
        await store.update_room(dataclasses.replace(renamed, id="ghost", slug="ghost"))


async def test_room_parents_must_exist(world: World) -> None:
    with pytest.raises(NotFound):
        await world.store.add_room(Room("r8", "ghost-team", "r8", "x", RoomKind.CUSTOM))
    with pytest.raises(NotFound):
        await world.store.add_room(
            Room("r8", world.team.id, "r8", "x", RoomKind.USER, owner_id="ghost")
        )
    assert await world.store.find_room_by_slug("r8") is None


async def test_meeting_types(world: World) -> None:
    store = world.store
    assert await store.get_meeting_type(world.mtype.id) == world.mtype
    brief = MeetingType("mt0", world.team.id, "Check-in", timedelta(minutes=10))
    await store.add_meeting_type(brief)
    assert await store.list_meeting_types(world.team.id) == [brief, world.mtype]
    changed = dataclasses.replace(
        brief, duration=timedelta(minutes=15, microseconds=1), kinds=frozenset(MeetingKind)
    )
    await store.update_meeting_type(changed)
    assert await store.get_meeting_type("mt0") == changed
    with pytest.raises(NotFound):
        await store.get_meeting_type("ghost")
    with pytest.raises(NotFound):
        await store.update_meeting_type(dataclasses.replace(changed, id="ghost"))
    with pytest.raises(Conflict):
        await store.add_meeting_type(brief)


async def test_room_settings_and_archive_round_trip(world: World) -> None:
    store = world.store
    changed = dataclasses.replace(
        world.shared, name="Front desk", walk_ins=False, archived=True, show_position=False
    )
    await store.update_room(changed)
    assert await store.get_room(world.shared.id) == changed
    assert await store.find_room_by_slug(world.shared.slug) == changed
    assert changed in await store.list_rooms(world.team.id)
    restored = dataclasses.replace(changed, walk_ins=True, archived=False)
    await store.update_room(restored)
    assert await store.get_room(world.shared.id) == restored
