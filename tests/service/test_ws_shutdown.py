"""Graceful shutdown: every client of /ws gets goaway, then a close 1001."""

from __future__ import annotations

from tests.service.conftest import ADA, World
from tests.service.test_ws_msgpack import _binary
from tests.service.ws_support import close_frame


async def test_every_client_gets_goaway_then_1001(world: World) -> None:
    host = await world.host(ADA)
    waiting = await world.guest(0)
    await host.expect("lobby", where=lambda m: bool(m["waiting"]))
    in_call = await world.guest(2, join=False)  # entered (Reception), not joined
    binary = await _binary(world, {"jwt": world.jwt(ADA), "room": world.shared("reception")})
    silent = await world.connect()  # has not said hello yet
    peers = [host, waiting, in_call, binary, silent]

    await world.app.shutdown()

    for peer in peers:
        goaway = await peer.expect("goaway")
        assert goaway == {"type": "goaway", "reason": "shutdown", "reconnect_after": 1}
        assert await close_frame(peer) == (1001, "shutdown")


async def test_a_client_arriving_during_shutdown_is_sent_away(world: World) -> None:
    await world.app.shutdown()
    late = await world.connect()
    assert (await late.expect("goaway"))["reason"] == "shutdown"
    assert await close_frame(late) == (1001, "shutdown")
