"""Supervising the team's shared queues: watch them from one's own room, pick a
patient in, and exactly one of two simultaneous picks wins."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.service.conftest import ADA, SAM, Peer, World
from tests.service.ws_support import add_outsider, expect_error, probe, quiet


def _queue(queues: dict[str, Any], slug: str) -> list[str]:
    room = next(r for r in queues["rooms"] if r["room"] == slug)
    return [w["id"] for w in room["waiting"]]


async def _watching(world: World, staff_id: str) -> tuple[Peer, dict[str, Any]]:
    host = await world.host(staff_id)
    await host.send({"type": "watch", "ref": "w"})
    return host, await host.expect("queues")


async def test_a_host_sees_the_shared_queues_without_being_in_them(world: World) -> None:
    reception, area = world.shared("reception"), world.shared("waiting_area")
    ada, first = await _watching(world, ADA)
    assert [(r["room"], r["kind"], r["waiting"]) for r in first["rooms"]] == [
        (reception, "reception", []),
        (area, "waiting_area", []),
    ]
    guest = await world.guest(2)  # Casey, booked into Reception
    queues = await ada.expect("queues", where=lambda m: _queue(m, reception) == [guest.pid])
    entry = queues["rooms"][0]["waiting"][0]
    assert (entry["name"], entry["walk_in"], entry["indicator"]) == (
        "Casey Patel",
        False,
        "entered",
    )
    assert isinstance(entry["since"], float)
    walker = await world.enter({"room": area, "name": "Pat Walker"})
    queues = await ada.expect("queues", where=lambda m: _queue(m, area) == [walker.pid])
    assert queues["rooms"][1]["waiting"][0]["walk_in"] is True
    # watching is not being there: nothing of those rooms' lobbies or calls reaches Ada
    seen = [m["type"] for m in await probe(ada)]
    assert set(seen) <= {"queues"}
    await ada.send({"type": "unwatch"})
    await walker.send({"type": "leave"})
    assert not [m for m in await probe(ada) if m["type"] == "queues" and _queue(m, area)]


async def test_pick_brings_the_patient_into_the_pickers_call(world: World) -> None:
    reception = world.shared("reception")
    ada, _ = await _watching(world, ADA)
    guest = await world.guest(2)
    await ada.expect("queues", where=lambda m: _queue(m, reception) == [guest.pid])
    await ada.send({"type": "pick", "participant": guest.pid, "room": reception})
    assert await guest.expect("moved") == {"type": "moved", "room": world.room_of(ADA)}
    await guest.expect("admitted")
    joined = await guest.expect("joined")
    assert [p["id"] for p in joined["participants"]] == [ada.pid]
    came = await ada.expect("participant", event="came")
    assert came["id"] == guest.pid
    await probe(ada)  # the queues update may come before or after the arrival
    last = [m for m in ada.seen if m["type"] == "queues"][-1]
    assert _queue(last, reception) == []
    await guest.send({"type": "signal", "to": ada.pid, "kind": "offer", "sdp": "v=0 picked"})
    assert (await ada.expect("signal"))["from"] == guest.pid


async def test_only_a_host_in_the_call_picks(world: World) -> None:
    area = world.shared("waiting_area")
    ada, _ = await _watching(world, ADA)
    booked = await world.guest(0)  # Alex, already waiting in Ada's room
    walker = await world.enter({"room": area, "name": "Pat Walker"})
    await ada.expect("queues", where=lambda m: _queue(m, area) == [walker.pid])
    await ada.send({"type": "leave"})  # Ada is no longer hosting her call
    again = await world.host(ADA, join=False)
    await again.send({"type": "watch"})
    await again.expect("queues")
    await again.send({"type": "pick", "participant": walker.pid, "room": area, "ref": 1})
    await expect_error(again, "not_host", ref=1)  # only from the call one hosts
    await again.send({"type": "join"})
    await again.expect("joined")
    lobby = await again.expect("lobby")
    assert [w["id"] for w in lobby["waiting"]] == [booked.pid]
    await again.send({"type": "pick", "participant": walker.pid, "room": area})
    await walker.expect("moved")
    await walker.expect("admitted")
    # the booked guest waiting here keeps their place and hears nothing
    assert await probe(booked) == []


async def test_two_picks_of_one_patient_one_wins(world: World) -> None:
    area = world.shared("waiting_area")
    ada, _ = await _watching(world, ADA)
    sam, _ = await _watching(world, SAM)
    walker = await world.enter({"room": area, "name": "Pat Walker"})
    for host in (ada, sam):
        await host.expect("queues", where=lambda m: _queue(m, area) == [walker.pid])
    await quiet(ada, sam)
    pick = {"type": "pick", "participant": walker.pid, "room": area}
    await asyncio.gather(ada.send({**pick, "ref": "ada"}), sam.send({**pick, "ref": "sam"}))
    moved = await walker.expect("moved")
    winner, loser = (ada, sam) if moved["room"] == world.room_of(ADA) else (sam, ada)
    await walker.expect(
        "joined", where=lambda m: [p["id"] for p in m["participants"]] == [winner.pid]
    )
    error = await loser.expect("error")
    assert error["code"] == "no_longer_waiting"
    assert error["ref"] == ("sam" if loser is sam else "ada")
    assert (await winner.expect("participant", event="came"))["id"] == walker.pid
    assert not [m for m in await probe(loser) if m["type"] == "participant"]


async def test_what_cannot_be_watched_or_picked(world: World) -> None:
    outsider = await add_outsider(world)
    ada, _ = await _watching(world, ADA)
    guest = await world.guest(0)
    for msg, code in (
        ({"participant": guest.pid, "room": world.room_of(SAM)}, "forbidden"),
        ({"participant": guest.pid, "room": world.shared("team_meeting")}, "forbidden"),
        ({"participant": guest.pid, "room": outsider.reception}, "not_found"),
        ({"participant": guest.pid, "room": "no-such-room"}, "not_found"),
        ({"participant": "gnobody", "room": world.shared("reception")}, "no_longer_waiting"),
    ):
        await ada.send({"type": "pick", **msg, "ref": code})
        await expect_error(ada, code, ref=code)
    await guest.send({"type": "watch", "ref": 1})
    await expect_error(guest, "not_host", ref=1)
    await guest.send(
        {"type": "pick", "participant": guest.pid, "room": world.shared("reception"), "ref": 2}
    )
    await expect_error(guest, "not_host", ref=2)
    assert not [m for m in await probe(guest) if m["type"] != "waiting"]
