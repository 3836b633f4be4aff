"""Contract: a proposed slot is stored once (Store.store_chosen_slot), and a
link's credential is read without being spent (Store.find_link)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from rooms.errors import NotFound

from .records import NOW, Backend, World, sha


async def test_a_chosen_slot_is_stored_with_its_credential(world: World) -> None:
    store = world.store
    planning = world.meeting(start=None)
    await store.add_meetings([planning], [])
    chosen = dataclasses.replace(planning, start=planning.proposed_slots[1], proposed_slots=())
    credential = world.credential(chosen)
    assert await store.store_chosen_slot(chosen, credential, NOW)
    assert await store.get_meeting(planning.id) == chosen
    assert await store.get_credential_for_meeting(planning.id) == credential
    # dated now: listed by its start, no longer among the undated
    dated = await store.list_meetings(world.team.id, start_from=NOW)
    assert planning.id in [m.id for m in dated]
    # a second choice writes nothing
    other = dataclasses.replace(chosen, start=planning.proposed_slots[0])
    assert not await store.store_chosen_slot(other, world.credential(other, "again"), NOW)
    assert await store.get_meeting(planning.id) == chosen
    assert await store.get_credential_for_meeting(planning.id) == credential
    assert await store.find_link(sha("link-again")) is None


async def test_a_cancelled_or_missing_meeting_takes_no_slot(world: World) -> None:
    store = world.store
    cancelled = world.meeting(start=None, cancelled_at=NOW, cancelled_by="h")
    await store.add_meetings([cancelled], [])
    chosen = dataclasses.replace(cancelled, start=cancelled.proposed_slots[0], proposed_slots=())
    assert not await store.store_chosen_slot(chosen, world.credential(chosen), NOW)
    assert await store.get_meeting(cancelled.id) == cancelled
    ghost = world.meeting()
    with pytest.raises(NotFound):
        await store.store_chosen_slot(ghost, world.credential(ghost), NOW)


@pytest.mark.parametrize("instances", [1, 2])
async def test_concurrent_choices_one_winner(
    world: World, backend: Backend, instances: int
) -> None:
    """Twenty picks of one meeting at once, over one or two connections:
    exactly one is stored, with its credential, and no other credential lives."""
    planning = world.meeting(start=None)
    await world.store.add_meetings([planning], [])
    stores = [world.store] + [await backend.open() for _ in range(instances - 1)]

    async def attempt(i: int) -> tuple[int, bool]:
        slot = planning.proposed_slots[i % 2] + timedelta(minutes=i)
        chosen = dataclasses.replace(planning, start=slot, proposed_slots=())
        store = stores[i % len(stores)]
        return i, await store.store_chosen_slot(chosen, world.credential(chosen, f"t{i}"), NOW)

    results = await asyncio.wait_for(asyncio.gather(*(attempt(i) for i in range(20))), 30)
    winners = [i for i, won in results if won]
    assert len(winners) == 1
    (i,) = winners
    stored = await world.store.get_meeting(planning.id)
    assert stored.start == planning.proposed_slots[i % 2] + timedelta(minutes=i)
    live = await world.store.get_credential_for_meeting(planning.id)
    assert live is not None and live.id == f"c-t{i}"


async def test_find_link_reads_without_spending(world: World) -> None:
    store = world.store
    m = world.meeting()
    c = world.credential(m)
    await store.add_meetings([m], [c])
    assert await store.find_link(c.link_digest) == c
    assert await store.find_link(sha("no such link")) is None
    assert await store.redeem_link(c.link_digest, sha("device"), NOW) is not None
    found = await store.find_link(c.link_digest)
    assert found is not None and found.redeemed_at == NOW
