"""The lobby rules of docs/domain.md, one by one, through real websockets."""

from __future__ import annotations

from typing import Any

from tests.service.conftest import ADA, SAM, Peer, World
from tests.service.ws_support import (
    add_meeting,
    add_outsider,
    close_frame,
    detached,
    expect_error,
    probe,
    quiet,
    refused,
    until,
)


async def _guests(world: World, room: str, *names: str, ahead: int = 0) -> list[Peer]:
    """One guest per name, each with a fresh meeting in ``room``, waiting in arrival
    order behind ``ahead`` others."""
    peers: list[Peer] = []
    for name in names:
        invite = await add_meeting(world, ADA, room, name)
        peer = await world.enter({"token": invite.token})
        await peer.send({"type": "join"})
        await peer.expect("waiting", position=ahead + len(peers) + 1)
        peers.append(peer)
    return peers


def _ids(lobby: dict[str, Any]) -> list[str]:
    return [w["id"] for w in lobby["waiting"]]


async def test_only_the_owner_hosts_a_user_room(world: World) -> None:
    sam = await world.connect({"jwt": world.jwt(SAM), "room": world.room_of(ADA)})
    await refused(sam, "forbidden")
    ada = await world.enter({"jwt": world.jwt(ADA), "room": world.room_of(ADA)})
    assert ada.welcome["role"] == "host"


async def test_any_member_hosts_a_shared_room(world: World) -> None:
    reception = world.shared("reception")
    ada = await world.host(ADA, reception)
    sam = await world.host(SAM, reception)
    assert (ada.welcome["role"], sam.welcome["role"]) == ("host", "host")
    guest = await world.guest(2)  # Ada's meeting, waiting in the shared Reception
    await ada.expect("lobby", where=lambda m: _ids(m) == [guest.pid])
    await sam.expect("lobby", where=lambda m: _ids(m) == [guest.pid])
    await sam.send({"type": "admit", "participant": guest.pid})
    joined = await guest.expect("joined")
    assert {p["id"] for p in joined["participants"]} == {ada.pid, sam.pid}
    await ada.send({"type": "put_back", "participant": guest.pid})
    assert (await guest.expect("waiting"))["on_hold"] is True


async def test_guests_wait_even_with_the_host_in(world: World) -> None:
    host = await world.host(ADA)
    guest = await world.enter({"token": world.meeting(0)["token"]})
    await guest.send({"type": "join"})
    waiting = await guest.expect("waiting")
    assert waiting == {"type": "waiting", "position": 1, "message": None, "on_hold": False}
    await host.expect("lobby", where=lambda m: _ids(m) == [guest.pid])
    assert await probe(guest) == []
    assert not [m for m in await probe(host) if m["type"] == "participant"]


async def test_early_arrivals_are_not_admitted_when_the_host_arrives(world: World) -> None:
    first, second = await _guests(world, world.room_of(ADA), "Early One", "Early Two")
    host = await world.host(ADA, join=False)
    await host.send({"type": "join"})
    assert (await host.expect("joined"))["participants"] == []
    lobby = await host.expect("lobby")
    assert _ids(lobby) == [first.pid, second.pid]
    assert [w["name"] for w in lobby["waiting"]] == ["Early One", "Early Two"]
    for guest in (first, second):
        assert await probe(guest) == [], "an early guest heard something when the host came"


async def test_admit_one_then_admit_all(world: World) -> None:
    host = await world.host(ADA)
    a, b, c = await _guests(world, world.room_of(ADA), "Ann", "Ben", "Cy")
    await quiet(host)
    await host.send({"type": "admit", "participant": b.pid})
    await b.expect("admitted")
    assert [p["id"] for p in (await b.expect("joined"))["participants"]] == [host.pid]
    # Cy moves up behind Ann; Ann's place does not change, so she hears nothing
    assert (await c.expect("waiting"))["position"] == 2
    assert await probe(a) == []
    await host.send({"type": "admit_all"})
    for guest in (a, c):
        await guest.expect("admitted")
    came = [(await host.expect("participant", event="came"))["id"] for _ in range(3)]
    assert came == [b.pid, a.pid, c.pid]
    assert _ids(await host.expect("lobby")) == []
    await host.send({"type": "admit", "participant": a.pid, "ref": 1})
    await expect_error(host, "bad_transition", ref=1)


async def test_deny_closes_the_guest_and_empties_the_queue(world: World) -> None:
    host = await world.host(ADA)
    guest = await world.guest(0)
    await host.expect("lobby", where=lambda m: _ids(m) == [guest.pid])
    await host.send({"type": "deny", "participant": guest.pid})
    await guest.expect("denied")
    code, _ = await close_frame(guest)
    assert code == 1000
    await host.expect("lobby", waiting=[])


async def test_a_denied_guest_cannot_queue_again(world: World) -> None:
    host = await world.host(ADA)
    guest = await world.guest(0)
    await host.expect("lobby", where=lambda m: _ids(m) == [guest.pid])
    await host.send({"type": "deny", "participant": guest.pid})
    await guest.expect("denied")
    await close_frame(guest)
    await probe(host)  # the host's deny has been handled in full
    again = await world.connect(
        {"token": world.meeting(0)["token"], "rejoin": guest.welcome["rejoin"]}
    )
    reply = await again.recv()
    assert (reply["type"], reply.get("code")) == ("error", "token_invalid"), reply
    assert (await close_frame(again))[0] == 1008
    await refused(await world.connect({"token": world.meeting(0)["token"]}), "token_invalid")


async def test_put_back_keeps_the_guest_ahead_of_later_arrivals(world: World) -> None:
    host = await world.host(ADA)
    first, later = await _guests(world, world.room_of(ADA), "First", "Later")
    await host.send({"type": "admit", "participant": first.pid})
    await first.expect("joined")
    assert (await later.expect("waiting"))["position"] == 1
    await quiet(host)
    await host.send({"type": "put_back", "participant": first.pid})
    back = await first.expect("waiting")
    assert (back["position"], back["on_hold"]) == (1, True)
    assert (await later.expect("waiting"))["position"] == 2
    assert (await host.expect("participant")) == {
        "type": "participant",
        "event": "went",
        "id": first.pid,
    }
    assert _ids(await host.expect("lobby")) == [first.pid, later.pid]


async def test_move_from_reception_to_a_consulting_room(world: World) -> None:
    reception = world.shared("reception")
    sam = await world.host(SAM, reception)
    ada = await world.host(ADA)
    guest = await world.guest(2)
    await sam.expect("lobby", where=lambda m: _ids(m) == [guest.pid])
    await quiet(ada)
    await sam.send({"type": "move", "participant": guest.pid, "room": world.room_of(ADA)})
    assert (await guest.expect("moved")) == {"type": "moved", "room": world.room_of(ADA)}
    waiting = await guest.expect("waiting")
    assert (waiting["position"], waiting["on_hold"]) == (1, False)
    lobby = await ada.expect("lobby")
    assert _ids(lobby) == [guest.pid]
    assert lobby["waiting"][0]["meeting"] == world.meeting(2)["id"]
    await sam.expect("lobby", waiting=[])
    # the guest now belongs to Ada's room: she admits them and they can talk
    await ada.send({"type": "admit", "participant": guest.pid})
    await guest.expect("admitted")
    await guest.send({"type": "signal", "to": ada.pid, "kind": "offer", "sdp": "v=0 moved"})
    assert (await ada.expect("signal"))["from"] == guest.pid


async def test_move_to_another_teams_room_is_forbidden(world: World) -> None:
    outsider = await add_outsider(world)
    host = await world.host(ADA)
    guest = await world.guest(0)
    await host.expect("lobby", where=lambda m: _ids(m) == [guest.pid])
    for room in (outsider.user_room, outsider.reception):
        await host.send({"type": "move", "participant": guest.pid, "room": room, "ref": room})
        await expect_error(host, "forbidden", ref=room)
    await host.send({"type": "move", "participant": guest.pid, "room": "no-such-room", "ref": 2})
    await expect_error(host, "not_found", ref=2)
    assert await probe(guest) == []


async def test_say_reaches_every_waiting_guest(world: World) -> None:
    host = await world.host(ADA)
    guests = await _guests(world, world.room_of(ADA), "Ann", "Ben", "Cy")
    await host.send({"type": "say", "text": "Running 5 minutes late"})
    for position, guest in enumerate(guests, start=1):
        told = await guest.expect("waiting")
        assert told == {
            "type": "waiting",
            "position": position,
            "message": "Running 5 minutes late",
            "on_hold": False,
        }
    await host.send({"type": "say", "text": "x" * 501, "ref": 9})
    await expect_error(host, "invalid", ref=9)
    for guest in guests:
        assert await probe(guest) == []
    await host.send({"type": "say", "text": "y" * 500})
    for guest in guests:
        assert (await guest.expect("waiting"))["message"] == "y" * 500


async def test_last_host_leaving_puts_admitted_guests_on_hold(world: World) -> None:
    host = await world.host(ADA)
    admitted, waiting = await _guests(world, world.room_of(ADA), "In Call", "Still Waiting")
    await host.send({"type": "admit", "participant": admitted.pid})
    await admitted.expect("joined")
    assert (await waiting.expect("waiting"))["position"] == 1
    await host.send({"type": "leave"})
    assert (await close_frame(host))[0] == 1000
    held = await admitted.expect("waiting")
    assert (held["position"], held["on_hold"]) == (1, True)
    assert (await waiting.expect("waiting"))["position"] == 2
    # the next host finds the held guest first in line
    again = await world.host(ADA, join=False)
    await again.send({"type": "join"})
    assert _ids(await again.expect("lobby")) == [admitted.pid, waiting.pid]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


async def test_a_waiting_guest_never_learns_who_else_waits(world: World) -> None:
    host = await world.host(ADA)
    ahead, watcher, behind = await _guests(
        world, world.room_of(ADA), "Ahead Person", "Watcher Person", "Behind Person"
    )
    late = (await _guests(world, world.room_of(ADA), "Late Person", ahead=3))[0]
    await host.send({"type": "say", "text": "Bear with us"})
    await host.send({"type": "admit", "participant": ahead.pid})
    await ahead.expect("joined")
    await host.send({"type": "put_back", "participant": ahead.pid})
    await ahead.expect("waiting", on_hold=True)
    await behind.send({"type": "leave"})
    await close_frame(behind)
    await late.expect("waiting", position=3)
    await probe(watcher)
    # the host is no secret (the waiting screen may name them); the other guests are
    others = {p.pid for p in (ahead, behind, late)} | {
        "Ahead Person",
        "Behind Person",
        "Late Person",
    }
    leaked = {s for m in watcher.seen for s in _strings(m) if s in others}
    assert not leaked, f"a waiting guest learnt {leaked}"
    assert {m["type"] for m in watcher.seen} <= {"welcome", "waiting", "pong"}


async def test_positions_update_when_someone_ahead_leaves(world: World) -> None:
    first, second, third = await _guests(world, world.room_of(ADA), "One", "Two", "Three")
    await first.send({"type": "leave"})
    assert (await close_frame(first))[0] == 1000
    assert (await second.expect("waiting"))["position"] == 1
    assert (await third.expect("waiting"))["position"] == 2
    await second.ws.close()  # dropped, not left: the place is kept for the resume window
    await until(detached(world, second))
    assert await probe(third) == []


async def test_admitting_beyond_the_rooms_capacity_is_room_full(world: World) -> None:
    host = await world.host(ADA)
    capacity = 8  # rooms.room.Room.capacity's default: host included
    names = [f"Guest {n}" for n in range(capacity)]
    guests = await _guests(world, world.room_of(ADA), *names)
    await host.send({"type": "admit_all"})
    for guest in guests[: capacity - 1]:
        await guest.expect("admitted")
    last = guests[-1]
    assert (await last.expect("waiting"))["position"] == 1
    await quiet(host)
    await host.send({"type": "admit", "participant": last.pid, "ref": 1})
    await expect_error(host, "room_full", ref=1)
    await host.send({"type": "admit_all", "ref": 2})
    await expect_error(host, "room_full", ref=2)
    # a seat frees up: now the last guest gets in
    await guests[0].send({"type": "leave"})
    await host.expect("participant", event="went", id=guests[0].pid)
    await host.send({"type": "admit", "participant": last.pid})
    await last.expect("admitted")
