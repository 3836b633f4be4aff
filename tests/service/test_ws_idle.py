"""What an idle connection keeps: nothing of the messages it handled, and the
heartbeat still reaches every endpoint's connections."""

from __future__ import annotations

import asyncio
import gc
import types

from aiohttp import WSMessage, WSMsgType

from signalling import protocol as p
from signalling.keys import HEARTBEAT
from tests.service.conftest import Peer, World


def _alive(kind: type) -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, kind))


def _has(message: WSMessage, part: bytes) -> bool:
    return isinstance(message.data, bytes) and part in message.data


async def test_an_idle_connection_keeps_nothing_of_the_messages_it_handled(world: World) -> None:
    guest = await world.guest(0)
    await guest.send({"type": "ping", "ref": "last"})
    await guest.expect("pong", ref="last")
    # the pong was written from the handler, which then went back to waiting: the
    # frame, the parsed ping and the hello before it are garbage by now
    assert _alive(p.Ping) == 0
    assert _alive(p.Hello) == 0
    held = [m for m in gc.get_objects() if isinstance(m, WSMessage) and _has(m, b'"last"')]
    assert held == []


async def test_the_heartbeat_closes_a_silent_dashboard_connection_too(world: World) -> None:
    heartbeat = world.app[HEARTBEAT]
    # no handshake and no pongs (autoping off): silent from the start
    board_ws = await world.client.ws_connect("/ws/dashboard", autoping=False)
    board = Peer(board_ws)
    await heartbeat.round()
    ping = await asyncio.wait_for(board_ws.receive(), 5)
    assert ping.type is WSMsgType.PING
    await heartbeat.round()
    code, reason = await board.closed()
    assert (code, reason) == (1001, "timeout")


async def test_no_middleware_waits_with_an_open_websocket(world: World) -> None:
    guest = await world.guest(0)
    await guest.send({"type": "ping", "ref": "up"})
    await guest.expect("pong", ref="up")
    gc.collect()
    waiting = {
        obj.cr_code.co_name
        for obj in gc.get_objects()
        if isinstance(obj, types.CoroutineType) and obj.cr_frame is not None
    }
    # the endpoint's own frame waits for the next message; no REST middleware
    # (error bodies, security headers) keeps a frame of its own beside it
    assert "handle" in waiting
    assert not waiting & {"error_middleware", "middleware"}
