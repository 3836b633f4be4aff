"""Walk-ins through real websockets: a name and a room, no credential; the
uniform refusal elsewhere; the throttles; presence entries without a meeting;
archived rooms admitting nobody."""

from __future__ import annotations

import dataclasses
from typing import Any

from rooms.presence import PresenceKind
from signalling.keys import METRICS, PRESENCE, STORE
from tests.service.conftest import ADA, SAM, World, WorldFactory
from tests.service.ws_support import expect_error, probe, refused


def _ids(lobby: dict[str, Any]) -> list[str]:
    return [w["id"] for w in lobby["waiting"]]


async def _archive(world: World, slug: str) -> None:
    store = world.app[STORE]
    room = await store.find_room_by_slug(slug)
    assert room is not None
    await store.update_room(dataclasses.replace(room, archived=True))


def _walk_ins(world: World, outcome: str) -> float:
    value = world.app[METRICS].walk_ins.labels(outcome)._value.get()
    return float(value)


async def test_a_walk_in_waits_and_is_admitted_like_anyone(world: World) -> None:
    host = await world.host(ADA)
    walker = await world.connect({"room": world.room_of(ADA), "name": "Pat Walker", "ref": 3})
    welcome = await walker.expect("welcome")
    assert (welcome["role"], welcome["meeting"], welcome["name"], welcome["ref"]) == (
        "guest",
        None,
        "Pat Walker",
        3,
    )
    assert "rejoin" not in welcome
    waiting = await walker.expect("waiting")
    assert waiting == {"type": "waiting", "position": 1, "message": None, "on_hold": False}
    lobby = await host.expect("lobby", where=lambda m: _ids(m) == [welcome["participant"]])
    (entry,) = lobby["waiting"]
    assert (entry["name"], entry["meeting"], entry["walk_in"], entry["indicator"]) == (
        "Pat Walker",
        None,
        True,
        "entered",
    )
    # the hello queued them already: a join is a bad transition
    walker.welcome = welcome
    await walker.send({"type": "join", "ref": 4})
    await expect_error(walker, "bad_transition", ref=4)
    await host.send({"type": "admit", "participant": walker.pid})
    await walker.expect("admitted")
    joined = await walker.expect("joined")
    assert [p["id"] for p in joined["participants"]] == [host.pid]
    assert _walk_ins(world, "admitted") == 1


async def test_a_walk_in_queues_behind_those_already_waiting(world: World) -> None:
    guest = await world.guest(0)
    walker = await world.connect({"room": world.room_of(ADA), "name": "Pat Walker"})
    await walker.expect("welcome")
    assert (await walker.expect("waiting"))["position"] == 2
    host = await world.host(ADA)
    lobby = await host.expect("lobby")
    assert [w["walk_in"] for w in lobby["waiting"]] == [False, True]
    assert lobby["waiting"][0]["id"] == guest.pid


async def test_rooms_without_walk_ins_answer_as_without_a_credential(world: World) -> None:
    await _archive(world, world.shared("reception"))
    answers = []
    for room in (world.shared("team_meeting"), world.shared("reception"), "no-such-room"):
        peer = await world.connect({"room": room, "name": "Pat Walker"})
        answers.append(await refused(peer, "token_invalid"))
    nameless = await world.connect({"room": world.room_of(ADA)})
    answers.append(await refused(nameless, "token_invalid"))
    assert len({a["message"] for a in answers}) == 1
    assert _walk_ins(world, "refused") == 3


async def test_a_bad_name_is_invalid_whatever_the_room(world: World) -> None:
    for room in (world.room_of(ADA), "no-such-room"):
        peer = await world.connect({"room": room, "name": "  "})
        await refused(peer, "invalid")


async def test_walk_ins_are_throttled_per_room(make_world: WorldFactory) -> None:
    world = await make_world(walk_ins_per_room=2, walk_ins_per_address=10)
    room = world.room_of(ADA)
    for n in range(2):
        await world.enter({"room": room, "name": f"Walker {n}"})
    over = await refused(
        await world.connect({"room": room, "name": "One Too Many"}), "rate_limited"
    )
    assert over["retry_after"] > 0
    # another room keeps its own budget
    await world.enter({"room": world.room_of(SAM), "name": "Elsewhere"})
    assert _walk_ins(world, "throttled") == 1


async def test_walk_ins_are_throttled_per_address(make_world: WorldFactory) -> None:
    world = await make_world(walk_ins_per_room=10, walk_ins_per_address=2)
    await world.enter({"room": world.room_of(ADA), "name": "First"})
    await world.enter({"room": world.room_of(SAM), "name": "Second"})
    third = await world.connect({"room": world.shared("waiting_area"), "name": "Third"})
    await refused(third, "rate_limited")
    # unknown rooms count too: the throttle says nothing about which rooms exist
    fourth = await world.connect({"room": "no-such-room", "name": "Fourth"})
    await refused(fourth, "rate_limited")


async def test_a_walk_ins_presence_has_no_meeting(world: World) -> None:
    host = await world.host(ADA)
    walker = await world.enter({"room": world.room_of(ADA), "name": "Pat Walker"})
    await host.expect("lobby", where=lambda m: _ids(m) == [walker.pid])
    await walker.send({"type": "leave"})
    await host.expect("lobby", waiting=[])
    await world.flush()
    store = world.app[STORE]
    room = await store.find_room_by_slug(world.room_of(ADA))
    assert room is not None
    entries = await store.log_since(room.team_id, 0)
    mine = [e for e in entries if e.data.get("participant") == walker.pid]
    assert [e.kind for e in mine] == [
        str(PresenceKind.ENTERED),
        str(PresenceKind.WAITING),
        str(PresenceKind.LEFT),
    ]
    assert {e.meeting_id for e in mine} == {None}
    # the appointment in the same room is untouched: its guest has not entered
    assert world.app[PRESENCE].indicator(world.meeting(0)["id"]) == "not_entered"
    assert await probe(host) == []


async def test_an_archived_room_admits_nobody(world: World) -> None:
    room = world.room_of(ADA)
    host = await world.host(ADA)  # already in: stays until they leave
    await _archive(world, room)
    sam_room = world.room_of(SAM)
    await _archive(world, world.shared("reception"))
    staff = await world.connect({"jwt": world.jwt(SAM), "room": world.shared("reception")})
    await refused(staff, "room_archived")
    await _archive(world, sam_room)
    guest = await world.connect({"token": world.meeting(1)["token"]})  # Sam's meeting
    await refused(guest, "room_archived")
    assert not [m for m in await probe(host) if m["type"] != "lobby"]


async def test_settings_reach_the_live_queue(world: World) -> None:
    """PATCH /api/rooms/{room} on a room in use: positions hidden at once (the
    waiting guest is told again) and from then on, walk-ins refused from the
    next hello on."""
    host = await world.host(ADA)
    first = await world.guest(0)
    room = await world.app[STORE].find_room_by_slug(world.room_of(ADA))
    assert room is not None
    auth = {"Authorization": f"Bearer {world.jwt(ADA)}"}
    reply = await world.client.patch(
        f"/api/rooms/{room.id}", json={"show_position": False, "walk_ins": False}, headers=auth
    )
    assert reply.status == 200, await reply.text()
    hidden = await first.expect("waiting")
    assert (hidden["position"], hidden["message"]) == (None, None)
    await host.send({"type": "say", "text": "Back in five"})
    told = await first.expect("waiting")
    assert (told["position"], told["message"]) == (None, "Back in five")
    late = await world.connect({"room": world.room_of(ADA), "name": "Pat Walker"})
    await refused(late, "token_invalid")
