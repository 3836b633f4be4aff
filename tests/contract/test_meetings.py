"""Contract: meetings (all-or-nothing batches, listing) and meeting facts."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from rooms.errors import Conflict, NotFound
from rooms.meeting import Guest

from .records import NOW, World


async def test_meeting_round_trip_every_field(world: World) -> None:
    dated = world.meeting()
    planning = world.meeting(
        start=None,
        type_id=None,
        series_id=None,
        review=None,
        review_rating=None,
        summary=None,
        guest=Guest("Sam", "s@x.example"),
    )
    await world.store.add_meetings([dated, planning], [])
    assert await world.store.get_meeting(dated.id) == dated
    assert await world.store.get_meeting(planning.id) == planning
    with pytest.raises(NotFound):
        await world.store.get_meeting("ghost")


async def test_add_meetings_is_all_or_nothing(world: World) -> None:
    store = world.store
    first = world.meeting()
    await store.add_meetings([first], [world.credential(first)])
    fresh, clash = world.meeting(), world.meeting(id=first.id)
    with pytest.raises(Conflict):
        await store.add_meetings([fresh, clash], [world.credential(fresh)])
    assert await store.list_meetings(world.team.id) == [first]
    assert await store.get_credential_for_meeting(fresh.id) is None
    # a credential reusing a stored link digest sinks its whole batch too
    reused = world.credential(fresh, link_digest=world.credential(first).link_digest)
    with pytest.raises(Conflict):
        await store.add_meetings([fresh], [reused])
    assert await store.list_meetings(world.team.id) == [first]
    # and so does a meeting whose host does not exist
    with pytest.raises(NotFound):
        await store.add_meetings([fresh, world.meeting(host_id="ghost")], [])
    assert await store.list_meetings(world.team.id) == [first]


async def test_a_credential_must_belong_to_the_batch(world: World) -> None:
    m = world.meeting()
    with pytest.raises(ValueError, match="credential"):
        await world.store.add_meetings([], [world.credential(m)])


async def test_update_meeting(world: World) -> None:
    store = world.store
    m = world.meeting(start=None)
    await store.add_meetings([m], [])
    chosen = dataclasses.replace(m, start=NOW + timedelta(days=1), host_id=world.other.id)
    await store.update_meeting(chosen)
    assert await store.get_meeting(m.id) == chosen
    assert await store.list_meetings(world.team.id, start_from=NOW) == [chosen]
    cancelled = dataclasses.replace(chosen, cancelled_at=NOW, cancelled_by="guest")
    await store.update_meeting(cancelled)
    assert await store.get_meeting(m.id) == cancelled
    back = dataclasses.replace(cancelled, start=None)
    await store.update_meeting(back)
    assert await store.list_meetings(world.team.id, start_from=NOW) == []
    assert await store.list_meetings(world.team.id) == [back]
    with pytest.raises(NotFound):
        await store.update_meeting(dataclasses.replace(m, id="ghost"))
    with pytest.raises(NotFound):
        await store.update_meeting(dataclasses.replace(m, room_id="ghost"))


async def test_list_meetings_orders_and_filters(world: World) -> None:
    store = world.store
    t0 = NOW + timedelta(hours=1)
    b_tie = world.meeting(id="b", start=t0)
    a_tie = world.meeting(id="a", start=t0)
    earlier = world.meeting(id="z", start=t0 - timedelta(microseconds=1))
    later = world.meeting(id="c", start=t0 + timedelta(days=1), host_id=world.other.id)
    plan_y = world.meeting(id="y", start=None)
    plan_x = world.meeting(id="x", start=None, host_id=world.other.id)
    await store.add_meetings([b_tie, plan_y, later, a_tie, plan_x, earlier], [])
    # other teams' meetings never show
    team2 = dataclasses.replace(world.team, id="team2", name="Elsewhere")
    await store.add_team(team2)
    room2 = dataclasses.replace(world.shared, id="r9", team_id="team2", slug="elsewhere")
    await store.add_room(room2)
    await store.add_meetings([world.meeting(id="w", team_id="team2", room_id="r9")], [])

    everything = await store.list_meetings(world.team.id)
    assert [m.id for m in everything] == ["z", "a", "b", "c", "x", "y"]
    hosts = await store.list_meetings(world.team.id, host_ids={world.other.id})
    assert [m.id for m in hosts] == ["c", "x"]
    assert await store.list_meetings(world.team.id, host_ids=[]) == []
    window = await store.list_meetings(world.team.id, start_from=t0, start_to=later.start)
    assert [m.id for m in window] == ["a", "b"]  # [from, to): z before, c at the bound
    since = await store.list_meetings(world.team.id, start_from=t0)
    assert [m.id for m in since] == ["a", "b", "c"]  # a bound drops planning meetings
    until = await store.list_meetings(world.team.id, start_to=t0)
    assert [m.id for m in until] == ["z"]
    both = await store.list_meetings(world.team.id, host_ids=[world.host.id], start_to=later.start)
    assert [m.id for m in both] == ["z", "a", "b"]
    assert everything[1] == a_tie


async def test_meeting_facts(world: World) -> None:
    store = world.store
    m = world.meeting()
    await store.add_meetings([m], [])
    assert await store.get_meeting_facts(m.id) is None
    facts = {
        "host_entered": True,
        "guest": {"entered": True, "check": "failed", "reasons": ["no_camera", "slow"]},
        "ice_failed": [],
        "count": 3,
        "ratio": 0.25,
        "left": None,
    }
    await store.put_meeting_facts(m.id, facts)
    assert await store.get_meeting_facts(m.id) == facts
    await store.put_meeting_facts(m.id, {"host_entered": False})
    assert await store.get_meeting_facts(m.id) == {"host_entered": False}
    with pytest.raises(NotFound):
        await store.put_meeting_facts("ghost", facts)
    assert await store.get_meeting_facts("ghost") is None
