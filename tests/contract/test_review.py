"""Contract: a meeting keeps its first review (Store.store_review), whoever
sends the next one, on one connection or another."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from rooms.errors import NotFound

from .records import NOW, Backend, World


async def test_the_first_review_is_kept_and_nothing_else_is_written(world: World) -> None:
    store = world.store
    unreviewed = world.meeting(review=None, review_rating=None)
    await store.add_meetings([unreviewed], [])
    reviewed = dataclasses.replace(unreviewed, review="clear advice", review_rating=4)
    assert await store.store_review(reviewed) == reviewed
    assert await store.get_meeting(unreviewed.id) == reviewed
    again = dataclasses.replace(unreviewed, review="changed my mind", review_rating=1)
    assert await store.store_review(again) is None
    assert await store.get_meeting(unreviewed.id) == reviewed


async def test_a_review_touches_only_the_review(world: World) -> None:
    """A meeting changed meanwhile (here: its summary) keeps the change."""
    store = world.store
    unreviewed = world.meeting(review=None, review_rating=None, summary=None)
    await store.add_meetings([unreviewed], [])
    summarised = dataclasses.replace(unreviewed, summary="rest the knee")
    await store.update_meeting(summarised)
    stale = dataclasses.replace(unreviewed, review="", review_rating=3)
    stored = await store.store_review(stale)
    assert stored == dataclasses.replace(summarised, review="", review_rating=3)
    assert await store.get_meeting(unreviewed.id) == stored


async def test_a_review_of_a_missing_meeting_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        await world.store.store_review(world.meeting(review="x", review_rating=2))


async def test_concurrent_reviews_on_two_instances_one_kept(world: World, backend: Backend) -> None:
    """Twenty reviews of one meeting at once over two connections (two nodes'
    view of one store): exactly one is stored, and it is the one that won."""
    unreviewed = world.meeting(review=None, review_rating=None, start=NOW)
    await world.store.add_meetings([unreviewed], [])
    stores = [world.store, await backend.open()]

    async def attempt(i: int) -> tuple[int, bool]:
        review = dataclasses.replace(unreviewed, review=f"review {i}", review_rating=1 + i % 5)
        return i, await stores[i % 2].store_review(review) is not None

    results = await asyncio.wait_for(asyncio.gather(*(attempt(i) for i in range(20))), 30)
    winners = [i for i, won in results if won]
    assert len(winners) == 1
    (i,) = winners
    stored = await stores[1].get_meeting(unreviewed.id)
    assert (stored.review, stored.review_rating) == (f"review {i}", 1 + i % 5)
