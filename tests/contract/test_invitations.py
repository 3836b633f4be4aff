"""Contract: invitations of new members (both stores): stored and found by
digest, consumed once (even by concurrent callers on two store instances),
refused when expired; and the invitation message in the outbox."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from rooms.errors import Conflict, NotFound
from rooms.invitations import Invitation
from rooms.outbox import MessageState, Trigger, plan_invitation

from .records import NOW, Backend, World, sha


def invitation(n: int = 1, **changes: object) -> Invitation:
    values: dict[str, object] = {
        "id": f"inv{n}",
        "team_id": "team1",
        "staff_id": "s2",
        "digest": sha(f"invite-{n}"),
        "created_at": NOW - timedelta(hours=1),
        "expires_at": NOW + timedelta(days=7),
        "sealed": f"v1.sealed-{n}",
    }
    values.update(changes)
    return Invitation(**values)  # type: ignore[arg-type]


async def test_an_invitation_round_trips_and_is_found_by_digest(world: World) -> None:
    stored = invitation()
    await world.store.add_invitation(stored)
    assert await world.store.get_invitation("inv1") == stored
    assert await world.store.find_invitation(stored.digest) == stored
    assert await world.store.find_invitation(sha("nothing")) is None
    with pytest.raises(NotFound):
        await world.store.get_invitation("ghost")


async def test_an_invitation_needs_its_member_and_a_fresh_digest(world: World) -> None:
    with pytest.raises(NotFound):
        await world.store.add_invitation(invitation(staff_id="ghost"))
    await world.store.add_invitation(invitation())
    with pytest.raises(Conflict):
        await world.store.add_invitation(invitation(2, digest=invitation().digest))


async def test_consumed_once_then_refused(world: World) -> None:
    stored = invitation()
    await world.store.add_invitation(stored)
    used = await world.store.consume_invitation(stored.digest, NOW)
    assert used == dataclasses.replace(stored, used_at=NOW)
    assert await world.store.consume_invitation(stored.digest, NOW) is None
    assert await world.store.get_invitation("inv1") == used
    assert await world.store.consume_invitation(sha("nothing"), NOW) is None


async def test_an_expired_or_future_invitation_is_not_consumed(world: World) -> None:
    stale = invitation(1, expires_at=NOW)
    early = invitation(2, created_at=NOW + timedelta(seconds=1))
    await world.store.add_invitation(stale)
    await world.store.add_invitation(early)
    assert await world.store.consume_invitation(stale.digest, NOW) is None
    assert await world.store.consume_invitation(early.digest, NOW) is None
    assert (await world.store.get_invitation("inv1")).used_at is None


async def test_concurrent_consumers_on_two_instances_get_it_once(
    world: World, backend: Backend
) -> None:
    stored = invitation()
    await world.store.add_invitation(stored)
    second = await backend.open()
    results = await asyncio.gather(
        *(s.consume_invitation(stored.digest, NOW) for s in [world.store, second] * 8)
    )
    assert sum(r is not None for r in results) == 1


async def test_the_invitation_message_is_claimed_like_any_other(world: World) -> None:
    await world.store.add_invitation(invitation())
    msg = plan_invitation("team1", "inv1", "blake@harbour.example", NOW, lambda: "msg-inv")
    await world.store.add_messages([msg])
    claimed = await world.store.claim_messages(NOW, "node-a", NOW + timedelta(minutes=5), 10)
    assert [(m.id, m.trigger, m.invitation_id, m.meeting_id) for m in claimed] == [
        ("msg-inv", Trigger.INVITATION, "inv1", None)
    ]
    done = dataclasses.replace(claimed[0], state=MessageState.SENT, sent_at=NOW)
    assert await world.store.settle_message(done, "node-a")
    with pytest.raises(NotFound):
        await world.store.add_messages(
            [plan_invitation("team1", "ghost", "x@example.org", NOW, lambda: "msg-2")]
        )
