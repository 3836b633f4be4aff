"""A websocket peer for multi-node tests: send JSON, wait for a message by type.

Waits are on messages with a timeout, never on time. ``expect`` skips the
server's pings and any other type, but fails at once on an ``error`` it was
not waiting for, so a refusal never passes for a slow answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

#: how long one expected message may take (a loopback round trip takes milliseconds)
WAIT = 10.0
#: goaway hops a client follows before giving up (one is all a healthy cluster needs)
MAX_HOPS = 2

Where = Callable[[dict[str, Any]], bool]


@dataclass
class Peer:
    ws: aiohttp.ClientWebSocketResponse
    url: str
    seen: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, body: dict[str, Any]) -> None:
        await self.ws.send_json(body)

    async def next(self, wait: float = WAIT) -> dict[str, Any]:
        """The next message other than a ping; a closed socket fails the test."""
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), wait)
            assert msg.type is aiohttp.WSMsgType.TEXT, f"socket {msg.type!r} at {self.url}"
            body: dict[str, Any] = msg.json()
            self.seen.append(body)
            if body.get("type") != "ping":
                return body

    async def expect(self, kind: str, *, where: Where | None = None) -> dict[str, Any]:
        """The next message of type ``kind`` (matching ``where``)."""

        async def find() -> dict[str, Any]:
            while True:
                body = await self.next()
                if body["type"] == "error" and kind != "error":
                    raise AssertionError(f"error while waiting for {kind}: {body}")
                if body["type"] == kind and (where is None or where(body)):
                    return body

        return await asyncio.wait_for(find(), WAIT)

    async def close(self) -> None:
        await self.ws.close()


def ws_url(public_url: str) -> str:
    """The ``/ws`` endpoint of the node at ``public_url`` (what a goaway names)."""
    return public_url.rstrip("/").replace("http://", "ws://", 1) + "/ws"


async def connect(http: aiohttp.ClientSession, url: str) -> Peer:
    return Peer(await http.ws_connect(url, autoping=True), url)


async def hello(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any], *, follow: bool = True
) -> tuple[Peer, dict[str, Any], list[str]]:
    """Say hello at ``url``; with ``follow``, go where ``room_elsewhere`` says,
    as the pages do. (peer, its first answer, the URLs of the nodes it was sent to)."""
    hops: list[str] = []
    while True:
        peer = await connect(http, url)
        await peer.send({"type": "hello", **body})
        first = await peer.next()
        moved = first["type"] == "goaway" and first.get("reason") == "room_elsewhere"
        if not (moved and follow and len(hops) < MAX_HOPS):
            return peer, first, hops
        hops.append(str(first["url"]))
        await peer.close()
        url = ws_url(first["url"])
