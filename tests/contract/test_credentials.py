"""Contract: guest credentials, atomic single-use redemption, rejoin by device."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from rooms.errors import Conflict, NotFound

from .records import NOW, Backend, World, sha


async def test_current_credential_round_trip(world: World) -> None:
    m = world.meeting()
    stored = world.credential(m)
    await world.store.add_meetings([m], [stored])
    assert await world.store.get_credential_for_meeting(m.id) == stored
    assert await world.store.get_credential_for_meeting("ghost") is None


async def test_two_live_credentials_for_one_meeting_conflict(world: World) -> None:
    m = world.meeting()
    with pytest.raises(Conflict):
        await world.store.add_meetings([m], [world.credential(m, "a"), world.credential(m, "b")])
    with pytest.raises(NotFound):
        await world.store.get_meeting(m.id)


async def test_redeem_link_consumes_it_once(world: World) -> None:
    store = world.store
    m = world.meeting()
    c = world.credential(m)
    await store.add_meetings([m], [c])
    got = await store.redeem_link(c.link_digest, sha("device-1"), NOW)
    assert got == dataclasses.replace(c, redeemed_at=NOW, device_digest=sha("device-1"))
    assert await store.get_credential_for_meeting(m.id) == got
    # used: by anyone, by the same device, and through its second spelling
    assert await store.redeem_link(c.link_digest, sha("device-2"), NOW) is None
    assert await store.redeem_link(c.link_digest, sha("device-1"), NOW) is None
    assert await store.redeem_key(c.key_digest, sha("device-2"), NOW) is None


async def test_redeem_key_consumes_the_link_too(world: World) -> None:
    store = world.store
    m = world.meeting()
    c = world.credential(m)
    await store.add_meetings([m], [c])
    got = await store.redeem_key(c.key_digest, sha("device-1"), NOW)
    assert got is not None and got.redeemed_at == NOW
    assert await store.redeem_link(c.link_digest, sha("device-2"), NOW) is None


async def test_redemption_window_is_half_open(world: World) -> None:
    store = world.store
    m = world.meeting()
    c = world.credential(m)
    await store.add_meetings([m], [c])
    dev = sha("device")
    just_before = c.not_before - timedelta(microseconds=1)
    assert await store.redeem_link(c.link_digest, dev, just_before) is None
    assert await store.redeem_link(c.link_digest, dev, c.not_after) is None
    assert await store.redeem_link(c.link_digest, dev, c.not_after + timedelta(days=1)) is None
    assert await store.redeem_link(sha("wrong"), dev, NOW) is None
    assert await store.redeem_key(sha("wrong"), dev, NOW) is None
    got = await store.redeem_link(c.link_digest, dev, c.not_before)
    assert got is not None and got.redeemed_at == c.not_before


async def test_replace_credential_revokes_old_and_adds_new(world: World) -> None:
    store = world.store
    m = world.meeting()
    old = world.credential(m, "old")
    await store.add_meetings([m], [old])
    new = world.credential(m, "new", not_after=NOW + timedelta(days=7))
    await store.replace_credential(m.id, new, NOW)
    assert await store.get_credential_for_meeting(m.id) == new
    assert await store.redeem_link(old.link_digest, sha("d"), NOW) is None
    assert await store.redeem_key(old.key_digest, sha("d"), NOW) is None
    assert await store.redeem_link(new.link_digest, sha("d"), NOW) is not None
    # cancelling: revoke, add nothing; the redeemed device loses its rejoin
    later = NOW + timedelta(minutes=1)
    await store.replace_credential(m.id, None, later)
    assert await store.get_credential_for_meeting(m.id) is None
    assert await store.find_by_device(sha("d"), later) is None


async def test_replace_credential_is_atomic(world: World) -> None:
    store = world.store
    m, n = world.meeting(), world.meeting()
    old = world.credential(m)
    await store.add_meetings([m, n], [old, world.credential(n)])
    clash = world.credential(m, "x", link_digest=world.credential(n).link_digest)
    with pytest.raises(Conflict):
        await store.replace_credential(m.id, clash, NOW)
    assert await store.get_credential_for_meeting(m.id) == old  # not revoked either
    with pytest.raises(NotFound):
        await store.replace_credential("ghost", None, NOW)
    with pytest.raises(ValueError, match="another meeting"):
        await store.replace_credential(n.id, world.credential(m, "y"), NOW)


async def test_revoked_credential_cannot_be_redeemed(world: World) -> None:
    store = world.store
    m = world.meeting()
    c = world.credential(m)
    await store.add_meetings([m], [c])
    await store.replace_credential(m.id, None, NOW - timedelta(minutes=1))
    assert await store.redeem_link(c.link_digest, sha("d"), NOW) is None
    assert await store.redeem_key(c.key_digest, sha("d"), NOW) is None


async def test_find_by_device(world: World) -> None:
    store = world.store
    m = world.meeting()
    c = world.credential(m)
    await store.add_meetings([m], [c])
    assert await store.find_by_device(sha("d"), NOW) is None
    got = await store.redeem_link(c.link_digest, sha("d"), NOW)
    assert await store.find_by_device(sha("d"), NOW + timedelta(hours=1)) == got
    assert await store.find_by_device(sha("other"), NOW) is None
    assert await store.find_by_device(sha("d"), c.not_after) is None


@pytest.mark.parametrize("instances", [1, 2])
async def test_fifty_concurrent_redemptions_one_winner(
    world: World, backend: Backend, instances: int
) -> None:
    """One token, 50 callers at once (over two instances: two connections or
    two SQLite connections on one file): exactly one gets it."""
    m = world.meeting()
    c = world.credential(m)
    await world.store.add_meetings([m], [c])
    stores = [world.store] + [await backend.open() for _ in range(instances - 1)]

    async def attempt(i: int):  # type: ignore[no-untyped-def]
        store = stores[i % len(stores)]
        if i % 2:
            return i, await store.redeem_key(c.key_digest, sha(f"device-{i}"), NOW)
        return i, await store.redeem_link(c.link_digest, sha(f"device-{i}"), NOW)

    results = await asyncio.wait_for(asyncio.gather(*(attempt(i) for i in range(50))), 30)
    winners = [(i, got) for i, got in results if got is not None]
    assert len(winners) == 1
    i, got = winners[0]
    assert got.device_digest == sha(f"device-{i}")
    assert await world.store.find_by_device(sha(f"device-{i}"), NOW) == got


async def test_redeem_link_entry_consumes_it_once_and_reads_its_meeting_and_room(
    world: World,
) -> None:
    store = world.store
    m = world.meeting(room_id=world.shared.id)
    c = world.credential(m)
    await store.add_meetings([m], [c])
    entry = await store.redeem_link_entry(c.link_digest, sha("device-1"), NOW)
    assert entry is not None
    assert entry.credential == dataclasses.replace(
        c, redeemed_at=NOW, device_digest=sha("device-1")
    )
    # every field as the store reads it one record at a time
    assert entry.meeting == await store.get_meeting(m.id)
    assert entry.room == await store.get_room(world.shared.id)
    assert await store.find_by_device(sha("device-1"), NOW) == entry.credential
    # spent for both ways in, whichever was used
    assert await store.redeem_link_entry(c.link_digest, sha("device-2"), NOW) is None
    assert await store.redeem_link(c.link_digest, sha("device-2"), NOW) is None


async def test_redeem_link_entry_follows_redeem_links_rule(world: World) -> None:
    store = world.store
    m = world.meeting()
    c = world.credential(m)
    await store.add_meetings([m], [c])
    dev = sha("device")
    just_before = c.not_before - timedelta(microseconds=1)
    assert await store.redeem_link_entry(c.link_digest, dev, just_before) is None
    assert await store.redeem_link_entry(c.link_digest, dev, c.not_after) is None
    assert await store.redeem_link_entry(sha("wrong"), dev, NOW) is None
    assert await store.redeem_link_entry(c.key_digest, dev, NOW) is None  # a key is not a link
    await store.replace_credential(m.id, None, NOW)  # cancelled: revoked
    assert await store.redeem_link_entry(c.link_digest, dev, NOW) is None
    assert (await store.get_credential_for_meeting(m.id)) is None


async def test_redeem_link_entry_has_one_winner_among_concurrent_callers(
    backend: Backend, world: World
) -> None:
    m = world.meeting()
    c = world.credential(m)
    await world.store.add_meetings([m], [c])
    other = await backend.open()
    got = await asyncio.gather(
        *(
            (world.store if i % 2 else other).redeem_link_entry(c.link_digest, sha(f"d{i}"), NOW)
            for i in range(8)
        )
    )
    winners = [e for e in got if e is not None]
    assert len(winners) == 1 and winners[0].meeting.id == m.id


async def test_redemptions_asked_for_together_each_get_their_own_answer(
    world: World,
) -> None:
    """Many joins at once (group-committed on SQLite): each link is redeemed once,
    by one of the callers who asked for it, with its own meeting; a wrong link
    gets nothing and costs nobody else theirs."""
    store = world.store
    meetings = [world.meeting() for _ in range(10)]
    creds = [world.credential(m) for m in meetings]
    await store.add_meetings(meetings, creds)
    asks = [(c, f"d{i}-{n}") for i, c in enumerate(creds) for n in range(3)]
    got = await asyncio.gather(
        *(store.redeem_link_entry(c.link_digest, sha(dev), NOW) for c, dev in asks),
        *(store.redeem_link_entry(sha(f"wrong-{n}"), sha("x"), NOW) for n in range(5)),
    )
    assert got[len(asks) :] == [None] * 5
    for i, (m, c) in enumerate(zip(meetings, creds, strict=True)):
        answers = got[i * 3 : i * 3 + 3]
        winners = [e for e in answers if e is not None]
        assert len(winners) == 1, f"link {i}: {len(winners)} winners"
        assert winners[0].meeting.id == m.id and winners[0].credential.id == c.id
        assert await store.find_by_device(winners[0].credential.device_digest or "", NOW) == (
            winners[0].credential
        )
