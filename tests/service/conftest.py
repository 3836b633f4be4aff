"""Service-test fixtures: the real app (SQLite file, in-process bus) behind
aiohttp's test server, the seeded demo organisation, and websocket peers that
wait on the message they expect (with a timeout), never on time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jwt
import msgpack
import orjson
import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestClient

from signalling.bootstrap import create_app
from signalling.clock import SystemClock
from signalling.demo import DemoInfo, ensure_demo
from signalling.keys import PRESENCE, STORE
from signalling.settings import Settings
from tests.service.wire_schema import validate_server_message

JWT_SECRET = "service-test-jwt-secret-0123456789abcdef"
WAIT = 5.0


class Peer:
    """One websocket client; ``expect`` reads until a message of a type arrives."""

    def __init__(self, ws: ClientWebSocketResponse, *, binary: bool = False) -> None:
        self.ws = ws
        self.binary = binary
        self.seen: list[dict[str, Any]] = []
        self.welcome: dict[str, Any] = {}

    @property
    def pid(self) -> str:
        return str(self.welcome["participant"])

    async def send(self, body: dict[str, Any]) -> None:
        if self.binary:
            await self.ws.send_bytes(msgpack.packb(body))
        else:
            await self.ws.send_str(orjson.dumps(body).decode())

    async def recv(self, timeout: float = WAIT) -> dict[str, Any]:
        msg = await asyncio.wait_for(self.ws.receive(), timeout)
        if msg.type is WSMsgType.TEXT:
            body: dict[str, Any] = orjson.loads(msg.data)
        elif msg.type is WSMsgType.BINARY:
            body = msgpack.unpackb(msg.data)
        else:
            raise ConnectionError(f"socket {msg.type.name} {msg.data!r} {msg.extra!r}")
        validate_server_message(body)  # as docs/protocol.md describes it
        self.seen.append(body)
        return body

    async def expect(
        self,
        kind: str,
        /,
        timeout: float = WAIT,
        where: Callable[[dict[str, Any]], bool] | None = None,
        **match: Any,
    ) -> dict[str, Any]:
        """The next message of type ``kind`` (with fields ``match``, satisfying
        ``where``), skipping others; an unexpected error fails at once."""
        deadline = time.monotonic() + timeout
        while True:
            body = await self.recv(max(0.01, deadline - time.monotonic()))
            if (
                body["type"] == kind
                and all(body.get(k) == v for k, v in match.items())
                and (where is None or where(body))
            ):
                return body
            if body["type"] == "error" and kind != "error":
                raise AssertionError(f"expected {kind}, got error {body}")

    async def closed(self, timeout: float = WAIT) -> tuple[int | None, str]:
        """Read until the server closes; returns (close code, reason)."""
        deadline = time.monotonic() + timeout
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), max(0.01, deadline - time.monotonic()))
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
                return self.ws.close_code, str(msg.extra or "")
            if msg.type is WSMsgType.TEXT:
                self.seen.append(orjson.loads(msg.data))


@dataclass
class World:
    client: TestClient[Any, Any]
    settings: Settings
    demo: DemoInfo
    peers: list[Peer] = field(default_factory=list)

    @property
    def app(self) -> Any:
        return self.client.server.app

    def jwt(self, staff_id: str, **claims: Any) -> str:
        body = {"sub": staff_id, "exp": int(time.time()) + 600, **claims}
        return jwt.encode(body, JWT_SECRET, algorithm="HS256")

    def meeting(self, index: int) -> dict[str, Any]:
        return self.demo.meetings[index]

    def room_of(self, owner: str) -> str:
        return next(r["slug"] for r in self.demo.rooms if r["owner"] == owner)

    def shared(self, kind: str) -> str:
        return next(r["slug"] for r in self.demo.rooms if r["kind"] == kind)

    async def connect(
        self,
        hello: dict[str, Any] | None = None,
        *,
        binary: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Peer:
        ws = await self.client.ws_connect("/ws", headers=headers)
        peer = Peer(ws, binary=binary)
        self.peers.append(peer)
        if hello is not None:
            await peer.send({"type": "hello", **hello})
        return peer

    async def enter(self, hello: dict[str, Any], **kw: Any) -> Peer:
        peer = await self.connect(hello, **kw)
        peer.welcome = await peer.expect("welcome")
        return peer

    async def host(self, staff_id: str, room: str | None = None, *, join: bool = True) -> Peer:
        peer = await self.enter({"jwt": self.jwt(staff_id), "room": room or self.room_of(staff_id)})
        if join:
            await peer.send({"type": "join"})
            await peer.expect("joined")
        return peer

    async def guest(self, index: int, *, join: bool = True, name: str | None = None) -> Peer:
        hello: dict[str, Any] = {"token": self.meeting(index)["token"]}
        if name:
            hello["name"] = name
        peer = await self.enter(hello)
        if join:
            await peer.send({"type": "join"})
            await peer.expect("waiting")
        return peer

    async def flush(self) -> None:
        await self.app[PRESENCE].flush()


WorldFactory = Callable[..., Awaitable[World]]


@pytest.fixture
async def make_world(aiohttp_client: Any, tmp_path: Path) -> WorldFactory:
    async def factory(**overrides: Any) -> World:
        settings = Settings(
            db_path=str(tmp_path / "service.sqlite3"),
            jwt_secret=JWT_SECRET,
            mediacheck=False,
            heartbeat=30.0,
        )
        settings = replace(settings, **overrides)
        app = create_app(settings)
        client = await aiohttp_client(app)
        demo = await ensure_demo(app[STORE], settings, SystemClock().now())
        return World(client, settings, demo)

    return factory


@pytest.fixture
async def world(make_world: WorldFactory) -> World:
    return await make_world()


ADA = "demo-ada"
SAM = "demo-sam"
