"""Contract: the outbox of messages to guests (both stores), its atomic claim,
settling an attempt, cancelling, and a team's messaging choices."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from rooms.errors import Conflict, NotFound
from rooms.outbox import (
    MessageState,
    OutboxMessage,
    TeamMessaging,
    Trigger,
    plan_review_request,
    review_request_id,
)

from .records import NOW, Backend, World

LEASE = timedelta(minutes=5)


def message(meeting_id: str, n: int, **changes: Any) -> OutboxMessage:
    """A scheduled message with every field set (override any with keywords)."""
    values: dict[str, Any] = {
        "id": f"msg-{meeting_id}-{n}",
        "team_id": "team1",
        "meeting_id": meeting_id,
        "trigger": Trigger.REMINDER,
        "recipient": "pat@example.org",
        "due_at": NOW + timedelta(minutes=n),
        "created_at": NOW - timedelta(days=1),
        "offset": timedelta(hours=24),
    }
    values.update(changes)
    return OutboxMessage(**values)


async def _meeting(world: World) -> str:
    m = world.meeting()
    await world.store.add_meetings([m], [])
    return m.id


async def test_messages_round_trip_in_due_order(world: World) -> None:
    mid = await _meeting(world)
    later = message(mid, 5, trigger=Trigger.CONFIRMATION, offset=None)
    sooner = message(
        mid,
        1,
        state=MessageState.FAILED,
        attempts=3,
        last_error="SMTPResponseException 554",
        sent_at=NOW,
    )
    await world.store.add_messages([later, sooner])
    assert await world.store.list_messages(mid) == [sooner, later]
    assert await world.store.list_messages("ghost") == []


async def test_a_message_needs_its_meeting_and_a_fresh_id(world: World) -> None:
    with pytest.raises(NotFound):
        await world.store.add_messages([message("ghost", 1)])
    mid = await _meeting(world)
    await world.store.add_messages([message(mid, 1)])
    with pytest.raises(Conflict):
        await world.store.add_messages([message(mid, 2), message(mid, 1)])
    assert [m.id for m in await world.store.list_messages(mid)] == [message(mid, 1).id]


async def test_a_review_request_is_queued_once_across_instances(
    world: World, backend: Backend
) -> None:
    """Two nodes (two connections) that see one meeting completed at the same
    instant each add its review request, under its one id: exactly one write
    is taken, the other is refused as a reused id, and one request is queued."""
    mid = await _meeting(world)
    meeting = await world.store.get_meeting(mid)
    stores = [world.store, await backend.open()]

    async def attempt(i: int) -> bool:
        request = plan_review_request(meeting, NOW + timedelta(minutes=30 + i), NOW)
        try:
            await stores[i % 2].add_messages([request])
        except Conflict:
            return False
        return True

    results = await asyncio.wait_for(asyncio.gather(*(attempt(i) for i in range(10))), 30)
    assert results.count(True) == 1
    (queued,) = await stores[1].list_messages(mid)
    assert (queued.id, queued.trigger) == (review_request_id(mid), Trigger.REVIEW_REQUEST)
    assert queued.due_at == NOW + timedelta(minutes=30 + results.index(True))


async def test_claim_takes_due_messages_once(world: World) -> None:
    store = world.store
    mid = await _meeting(world)
    await store.add_messages([message(mid, n) for n in (1, 2, 3)])
    at = NOW + timedelta(minutes=2)
    claimed = await store.claim_messages(at, "node-a", at + LEASE, 10)
    assert [m.id for m in claimed] == [message(mid, 1).id, message(mid, 2).id]
    assert all(m.claimed_by == "node-a" and m.claimed_until == at + LEASE for m in claimed)
    assert all(m.attempts == 1 and m.state is MessageState.SCHEDULED for m in claimed)
    # held: nobody else gets them, and the third is not due yet
    assert await store.claim_messages(at, "node-b", at + LEASE, 10) == []
    assert await store.next_message_due() == NOW + timedelta(minutes=3)


async def test_claim_respects_the_limit(world: World) -> None:
    mid = await _meeting(world)
    await world.store.add_messages([message(mid, n) for n in (1, 2, 3)])
    at = NOW + timedelta(hours=1)
    first = await world.store.claim_messages(at, "a", at + LEASE, 2)
    second = await world.store.claim_messages(at, "b", at + LEASE, 2)
    assert [m.id for m in first] == [message(mid, 1).id, message(mid, 2).id]
    assert [m.id for m in second] == [message(mid, 3).id]


async def test_an_expired_claim_is_taken_again(world: World) -> None:
    store = world.store
    mid = await _meeting(world)
    await store.add_messages([message(mid, 1)])
    at = NOW + timedelta(minutes=1)
    (first,) = await store.claim_messages(at, "dead-node", at + LEASE, 10)
    assert await store.next_message_due() == at + LEASE
    (again,) = await store.claim_messages(at + LEASE, "node-b", at + 2 * LEASE, 10)
    assert again.claimed_by == "node-b" and again.attempts == 2
    # the node that lost its claim can no longer settle it
    sent = dataclasses.replace(first, state=MessageState.SENT, sent_at=at)
    assert not await store.settle_message(sent, "dead-node")
    (stored,) = await store.list_messages(mid)
    assert stored.state is MessageState.SCHEDULED and stored.claimed_by == "node-b"


async def test_settle_sent_retry_and_failed(world: World) -> None:
    store = world.store
    mid = await _meeting(world)
    await store.add_messages([message(mid, n) for n in (1, 2, 3)])
    at = NOW + timedelta(minutes=5)
    one, two, three = await store.claim_messages(at, "a", at + LEASE, 10)
    assert await store.settle_message(
        dataclasses.replace(one, state=MessageState.SENT, sent_at=at), "a"
    )
    retry_at = at + timedelta(seconds=30)
    assert await store.settle_message(
        dataclasses.replace(two, due_at=retry_at, last_error="SMTPResponseException 451"), "a"
    )
    assert await store.settle_message(
        dataclasses.replace(three, state=MessageState.FAILED, last_error="OSError"), "a"
    )
    by_id = {m.id: m for m in await store.list_messages(mid)}
    assert by_id[one.id] == dataclasses.replace(
        one, state=MessageState.SENT, sent_at=at, claimed_by=None, claimed_until=None
    )
    assert by_id[two.id].state is MessageState.SCHEDULED
    assert by_id[two.id].due_at == retry_at and by_id[two.id].attempts == 1
    assert by_id[two.id].last_error == "SMTPResponseException 451"
    assert by_id[three.id].state is MessageState.FAILED
    # only the retry is left to claim, and only once it is due again
    assert await store.next_message_due() == retry_at
    assert await store.claim_messages(at, "a", at + LEASE, 10) == []
    (again,) = await store.claim_messages(retry_at, "a", retry_at + LEASE, 10)
    assert again.id == two.id and again.attempts == 2


async def test_cancel_leaves_sent_and_claimed_messages(world: World) -> None:
    store = world.store
    mid = await _meeting(world)
    confirmation = message(mid, 0, trigger=Trigger.CONFIRMATION, offset=None)
    reminders = [message(mid, n) for n in (1, 2, 30)]
    await store.add_messages([confirmation, *reminders])
    at = NOW + timedelta(minutes=1)
    claimed = await store.claim_messages(at, "a", at + LEASE, 1)
    assert [m.id for m in claimed] == [confirmation.id]
    assert await store.cancel_messages(mid, at, {Trigger.REMINDER}) == 3
    states = {m.id: m.state for m in await store.list_messages(mid)}
    assert states[confirmation.id] is MessageState.SCHEDULED  # being sent: left alone
    assert {states[r.id] for r in reminders} == {MessageState.CANCELLED}
    assert await store.cancel_messages(mid, at) == 0
    assert await store.claim_messages(at + timedelta(minutes=4), "b", at + LEASE, 10) == []
    # an expired claim no longer protects it
    assert await store.cancel_messages(mid, at + LEASE) == 1
    assert await store.next_message_due() is None


async def test_concurrent_claimers_on_two_stores_share_the_messages(
    world: World, backend: Backend
) -> None:
    mid = await _meeting(world)
    await world.store.add_messages([message(mid, n) for n in range(20)])
    other = await backend.open()
    at = NOW + timedelta(hours=1)

    async def claim(store: Any, name: str) -> list[str]:
        got: list[str] = []
        while batch := await store.claim_messages(at, name, at + LEASE, 3):
            got.extend(m.id for m in batch)
        return got

    results = await asyncio.gather(
        *(claim(store, f"n{i}") for i, store in enumerate([world.store, other] * 4))
    )
    every = [mid for got in results for mid in got]
    assert sorted(every) == sorted(message(mid, n).id for n in range(20))


async def test_team_messaging_round_trip(world: World) -> None:
    store = world.store
    assert await store.get_messaging(world.team.id) is None
    chosen = TeamMessaging(
        world.team.id,
        (timedelta(days=2), timedelta(minutes=30)),
        {"reminder": {"subject": "See you {{ start }}"}},
    )
    await store.put_messaging(chosen)
    assert await store.get_messaging(world.team.id) == chosen
    changed = dataclasses.replace(chosen, reminder_offsets=(timedelta(hours=3),), templates={})
    await store.put_messaging(changed)
    assert await store.get_messaging(world.team.id) == changed
    with pytest.raises(NotFound):
        await store.put_messaging(TeamMessaging("ghost"))


async def test_live_credentials_of_many_meetings(world: World) -> None:
    store = world.store
    a, b, c = world.meeting(), world.meeting(), world.meeting()
    ca, cb = world.credential(a), world.credential(b)
    await store.add_meetings([a, b, c], [ca, cb])
    await store.replace_credential(b.id, None, NOW)
    assert await store.live_credentials([a.id, b.id, c.id, "ghost"]) == {a.id: ca}
