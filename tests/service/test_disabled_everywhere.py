"""A disabled account ends on every node at once (docs/operations.md,
"Disabled accounts"): two nodes on one SQLite file, their buses on a real
Redis. The node that did not make the change closes the account's websockets
as soon as the announcement arrives, long before its 15-second sweep, and a
resume of the account's ``/ws`` session held in its resume window is refused.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, WSMessage, WSMsgType

from signalling.bootstrap import create_app
from signalling.clock import FixedClock
from signalling.redis_bus import RedisBus
from tests.service.api_support import ADA, NOW, SAM, Api, make_api
from tests.service.test_api_members import staff_jwt

#: well under the 15-second sweep: only the announcement can close it this soon
WITHIN = 5.0


def _bus(redis_url: str) -> RedisBus:
    return RedisBus(redis_url, "test-" + secrets.token_hex(4))


async def _close_frame(ws: ClientWebSocketResponse) -> WSMessage:
    """The socket's close frame, past the feed's entries sent before it."""
    while True:
        message = await ws.receive()
        if message.type is not WSMsgType.TEXT:
            return message


@pytest.fixture
async def api(aiohttp_client: Any, tmp_path: Path, redis_server: str) -> Api:
    return await make_api(aiohttp_client, tmp_path, bus=_bus(redis_server))


async def test_disabling_on_one_node_ends_the_account_on_the_other_at_once(
    aiohttp_client: Any, api: Api, redis_server: str
) -> None:
    second = await aiohttp_client(
        create_app(api.settings, clock=FixedClock(NOW), bus=_bus(redis_server))
    )
    own = api.own_room(SAM)
    # On the second node: Sam's room session, dropped and so held for its
    # resume window, and his overview's feed, open.
    room = await second.ws_connect("/ws")
    await room.send_json({"type": "hello", "jwt": staff_jwt(SAM), "room": own.slug})
    welcome = await room.receive_json()
    assert welcome["type"] == "welcome", welcome
    await room.close()  # held for the resume window on the second node
    board = await second.ws_connect("/ws/dashboard")
    await board.send_json({"type": "hello", "jwt": staff_jwt(SAM)})
    await board.send_json({"type": "subscribe", "scope": "my"})
    assert (await board.receive_json())["type"] == "snapshot"

    reply = await api.call("POST", f"/api/members/{SAM}/disable", role="host",
                           json={"meetings": "reassign", "to": ADA})  # fmt: skip
    assert reply.status == 200, reply.body

    closed = await asyncio.wait_for(_close_frame(board), WITHIN)
    assert (closed.type, closed.data, closed.extra) == (WSMsgType.CLOSE, 1008, "token_invalid")
    again = await second.ws_connect("/ws")
    await again.send_json({"type": "hello", "resume": welcome["resume"]})
    refused = await again.receive_json()
    assert (refused["type"], refused["code"]) == ("error", "token_invalid")
    await again.close()


async def test_a_resume_after_disabling_is_refused_on_the_node_that_disabled(
    api: Api,
) -> None:
    own = api.own_room(SAM)
    room = await api.client.ws_connect("/ws")
    await room.send_json({"type": "hello", "jwt": staff_jwt(SAM), "room": own.slug})
    welcome = await room.receive_json()
    assert welcome["type"] == "welcome", welcome
    await room.close()

    reply = await api.call("POST", f"/api/members/{SAM}/disable", role="host",
                           json={"meetings": "reassign", "to": ADA})  # fmt: skip
    assert reply.status == 200, reply.body

    again = await api.client.ws_connect("/ws")
    await again.send_json({"type": "hello", "resume": welcome["resume"]})
    refused = await again.receive_json()
    assert (refused["type"], refused["code"]) == ("error", "token_invalid")
    await again.close()
