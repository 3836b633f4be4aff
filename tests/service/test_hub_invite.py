"""Inviting a colleague into a consulting room: only its owner may, only a
colleague of the same team, and only while the consultation is on."""

from __future__ import annotations

from tests.service.conftest import ADA, SAM, World
from tests.service.ws_support import add_outsider, expect_error, refused


async def _sam_into_adas_room(world: World) -> dict[str, object]:
    peer = await world.connect({"jwt": world.jwt(SAM), "room": world.room_of(ADA)})
    return await peer.recv()


async def test_a_colleague_needs_an_invitation(world: World) -> None:
    await world.host(ADA)
    peer = await world.connect({"jwt": world.jwt(SAM), "room": world.room_of(ADA)})
    await refused(peer, "forbidden")


async def test_the_owner_invites_a_colleague_who_then_joins_the_call(world: World) -> None:
    ada = await world.host(ADA)
    await ada.send({"type": "invite", "member": SAM, "ref": 1})
    assert await ada.expect("invited", ref=1) == {"type": "invited", "member": SAM, "ref": 1}
    sam = await world.enter({"jwt": world.jwt(SAM), "room": world.room_of(ADA)})
    assert sam.welcome["role"] == "member"
    await sam.send({"type": "join"})
    joined = await sam.expect("joined")
    assert [p["id"] for p in joined["participants"]] == [ada.pid]
    came = await ada.expect("participant", event="came")
    assert (came["id"], came["role"]) == (sam.pid, "member")
    # a member is in the call but is no host: they cannot run the lobby
    guest = await world.guest(0)
    await sam.send({"type": "admit", "participant": guest.pid})
    await expect_error(sam, "not_host")


async def test_only_a_host_in_the_room_invites(world: World) -> None:
    await world.host(ADA)
    guest = await world.guest(0)
    await guest.send({"type": "invite", "member": SAM})
    await expect_error(guest, "not_host")


async def test_unknown_and_foreign_colleagues_are_not_found(world: World) -> None:
    ada = await world.host(ADA)
    outsider = await add_outsider(world)
    for member in ("nobody", outsider.staff_id):
        await ada.send({"type": "invite", "member": member})
        await expect_error(ada, "not_found")
    await ada.send({"type": "invite", "member": ADA})
    await expect_error(ada, "bad_transition")


async def test_the_invitation_lapses_when_the_room_empties(world: World) -> None:
    ada = await world.host(ADA)
    await ada.send({"type": "invite", "member": SAM})
    await ada.expect("invited")
    await ada.send({"type": "leave"})
    await ada.closed()
    reply = await _sam_into_adas_room(world)
    assert (reply["type"], reply["code"]) == ("error", "forbidden")
