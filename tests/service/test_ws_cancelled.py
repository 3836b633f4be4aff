"""A meeting cancelled while its patient is in the lobby or in the call: the
patient is told, leaves the room, and cannot be admitted into a meeting that no
longer exists."""

from __future__ import annotations

from typing import Any

from tests.service.conftest import ADA, Peer, World
from tests.service.ws_support import assert_served, close_frame


async def _cancel(world: World, meeting_id: str) -> None:
    headers = {"Authorization": f"Bearer {world.jwt(ADA)}"}
    reply = await world.client.post(f"/api/meetings/{meeting_id}/cancel", headers=headers)
    assert reply.status == 200, await reply.text()


async def _told_cancelled(guest: Peer) -> None:
    body = await guest.expect("goaway")
    assert body == {"type": "goaway", "reason": "cancelled", "reconnect_after": None}
    assert await close_frame(guest) == (1000, "cancelled")


async def test_a_waiting_patient_is_told_and_leaves_the_lobby(world: World) -> None:
    host = await world.host(ADA)
    guest = await world.guest(0)
    await host.expect("lobby", where=lambda m: [w["id"] for w in m["waiting"]] == [guest.pid])
    await _cancel(world, world.meeting(0)["id"])
    await _told_cancelled(guest)
    await host.expect("lobby", where=lambda m: m["waiting"] == [])
    # nobody to admit: the host is answered as for anyone who is not there
    await host.send({"type": "admit", "participant": guest.pid, "ref": 1})
    error: dict[str, Any] = await host.expect("error")
    assert error["ref"] == 1
    await world.flush()
    await assert_served(world)


async def test_a_patient_in_the_call_is_told_and_leaves_it(world: World) -> None:
    host = await world.host(ADA)
    guest = await world.guest(0)
    await host.expect("lobby", where=lambda m: [w["id"] for w in m["waiting"]] == [guest.pid])
    await host.send({"type": "admit", "participant": guest.pid})
    await guest.expect("joined")
    await _cancel(world, world.meeting(0)["id"])
    await _told_cancelled(guest)
    await host.expect("participant", event="went", id=guest.pid)
    # the cancelled link does not bring the patient back
    again = await world.connect({"token": world.meeting(0)["token"]})
    assert (await again.recv())["code"] == "token_invalid"
