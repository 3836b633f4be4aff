"""Contract: the room a link leads to, read in one step without spending the link
(RedisStore.find_link_room), answers exactly what find_link, the single-use rule
(rooms.tokens.redeemable) and get_meeting answer together. Stores without the
one-step read (SQLite: it serves one node, which places no one) are skipped."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from rooms.errors import NotFound
from rooms.tokens import redeemable

from .records import NOW, Backend, World, sha


async def reference(store: Any, digest: str, now: datetime) -> str | None:
    """The answer in several reads, as admission made it before."""
    found = await store.find_link(digest)
    if found is None or not redeemable(found, now):
        return None
    try:
        return str((await store.get_meeting(found.meeting_id)).room_id)
    except NotFound:
        return None


def one_step(world: World) -> Any:
    find = getattr(world.store, "find_link_room", None)
    if find is None:
        pytest.skip("this store has no one-step link lookup")
    return find


async def test_a_good_link_leads_to_its_meetings_room_and_stays_unspent(world: World) -> None:
    find = one_step(world)
    store = world.store
    m = world.meeting(room_id=world.shared.id)
    c = world.credential(m)
    await store.add_meetings([m], [c])
    for now in (c.not_before, NOW, c.not_after - timedelta(microseconds=1)):
        assert await find(c.link_digest, now) == world.shared.id
        assert await reference(store, c.link_digest, now) == world.shared.id
    # nothing was spent: the link redeems after any number of lookups
    assert await store.find_link(c.link_digest) == c
    assert await store.redeem_link(c.link_digest, sha("device"), NOW) is not None


async def test_unusable_links_lead_nowhere_exactly_as_the_reads_say(world: World) -> None:
    find = one_step(world)
    store = world.store
    early, used, revoked, late = (world.meeting() for _ in range(4))
    creds = {m.id: world.credential(m) for m in (early, used, revoked, late)}
    await store.add_meetings([early, used, revoked, late], list(creds.values()))
    await store.redeem_link(creds[used.id].link_digest, sha("device"), NOW)
    await store.replace_credential(revoked.id, None, NOW)
    cases: list[tuple[str, datetime]] = [
        (creds[early.id].link_digest, creds[early.id].not_before - timedelta(microseconds=1)),
        (creds[used.id].link_digest, NOW),
        (creds[revoked.id].link_digest, NOW),
        (creds[late.id].link_digest, creds[late.id].not_after),
        (sha("no such link"), NOW),
        (creds[late.id].key_digest, NOW),  # a key's digest is not a link's
    ]
    for digest, now in cases:
        assert await find(digest, now) is None
        assert await reference(store, digest, now) is None
    # the early link is good later on, and still unspent
    assert await find(creds[early.id].link_digest, NOW) == world.room.id


async def test_a_link_follows_its_meeting_to_another_room(world: World) -> None:
    find = one_step(world)
    store = world.store
    m = world.meeting()
    c = world.credential(m)
    await store.add_meetings([m], [c])
    assert await find(c.link_digest, NOW) == world.room.id
    await store.update_meeting(dataclasses.replace(m, room_id=world.shared.id))
    assert (
        await find(c.link_digest, NOW)
        == world.shared.id
        == await reference(store, c.link_digest, NOW)
    )


async def test_scripts_forgotten_by_redis_are_loaded_again(world: World, backend: Backend) -> None:
    """After SCRIPT FLUSH (a Redis restart keeps data but not scripts), the
    one-step reads and the presence batch answer as before."""
    find = one_step(world)
    store = world.store
    m = world.meeting()
    c = world.credential(m)
    await store.add_meetings([m], [c])
    client = Redis.from_url(backend.target)
    try:
        await client.script_flush()
        assert await find(c.link_digest, NOW) == world.room.id
        await client.script_flush()
        batch = [("team1", NOW, "presence", "entered", m.id, {"n": 1})]
        entries = await store.write_presence(batch, {m.id: {"status": "live"}})
        assert [e.seq for e in entries] == [1]
        assert await store.get_meeting_facts(m.id) == {"status": "live"}
    finally:
        await client.aclose()
