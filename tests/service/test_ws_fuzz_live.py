"""Arbitrary values in every field of every client message, sent to a running
server over a real websocket, before and after ``hello``: every frame is
answered with a typed error (``bad_message`` when it does not parse), the
connection stays usable after ``hello``, and the server keeps serving.

Hypothesis drives plain functions, so the server, its demo world and a host's
connection live on an event loop in a thread of their own for the module, and
each example runs a coroutine there."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import jwt
import msgpack
import orjson
import pytest
from aiohttp import WSMsgType, web
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rooms.errors import ALL_ERRORS, BadMessage
from signalling import protocol as p
from signalling.bootstrap import create_app
from signalling.clock import SystemClock
from signalling.demo import ensure_demo
from signalling.keys import STORE
from signalling.settings import Settings
from tests.service.conftest import ADA, JWT_SECRET
from tests.unit.test_protocol_fuzz import _messages, json_values, msgpack_values

T = TypeVar("T")
WAIT = 10.0
CODES = frozenset(error.code for error in ALL_ERRORS)


class LiveServer:
    """The app on a loopback port, served by a loop in its own thread."""

    def __init__(self, db_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.settings = Settings(
            db_path=str(db_path),
            jwt_secret=JWT_SECRET,
            mediacheck=False,
            heartbeat=60.0,
            rate=1_000_000.0,
            burst=1_000_000,
        )
        self.refs = itertools.count(1)
        self.run(self._start())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(WAIT * 3)

    async def _start(self) -> None:
        app = create_app(self.settings)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/ws"
        self.demo = await ensure_demo(app[STORE], self.settings, SystemClock().now())
        self.session = aiohttp.ClientSession()
        room = next(r["slug"] for r in self.demo.rooms if r["owner"] == ADA)
        token = jwt.encode(
            {"sub": ADA, "exp": int(time.time()) + 1800}, JWT_SECRET, algorithm="HS256"
        )
        self.host = await self.session.ws_connect(self.url)
        await self.host.send_str(
            orjson.dumps({"type": "hello", "jwt": token, "room": room}).decode()
        )
        assert (await self._next(self.host))["type"] == "welcome"
        await self.host.send_str('{"type":"join"}')
        while (await self._next(self.host))["type"] != "joined":
            pass

    async def _next(self, ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
        msg = await asyncio.wait_for(ws.receive(), WAIT)
        if msg.type is WSMsgType.TEXT:
            body: dict[str, Any] = orjson.loads(msg.data)
            return body
        if msg.type is WSMsgType.BINARY:
            unpacked: dict[str, Any] = msgpack.unpackb(msg.data)
            return unpacked
        raise AssertionError(f"connection ended: {msg.type} {msg.data!r}")

    async def after_hello(self, frame: str | bytes, parses: bool) -> None:
        """Send ``frame`` on the host's connection, then a ping; every error on the
        way is typed, and the pong comes back on the same connection."""
        ws = self.host
        await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
        ref = next(self.refs)
        await ws.send_str(orjson.dumps({"type": "ping", "ref": ref}).decode())
        errors: list[str] = []
        while True:
            body = await self._next(ws)
            if body["type"] == "error":
                errors.append(body["code"])
                assert body["code"] in CODES, body
                assert body.get("message"), body
            if body["type"] == "pong" and body.get("ref") == ref:
                break
        if not parses:
            assert errors == ["bad_message"], errors

    async def before_hello(self, frame: str | bytes) -> None:
        """A fresh connection whose first frame is ``frame``: a typed error, then
        a close (nothing is usable before a successful hello)."""
        async with self.session.ws_connect(self.url) as ws:
            await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
            msg = await asyncio.wait_for(ws.receive(), WAIT)
            body = (
                orjson.loads(msg.data) if msg.type is WSMsgType.TEXT else msgpack.unpackb(msg.data)
            )
            assert body["type"] == "error" and body["code"] in CODES, body
            closing = await asyncio.wait_for(ws.receive(), WAIT)
            assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED), closing
            assert ws.close_code in (1008, 1011, 1013), ws.close_code

    async def stop(self) -> None:
        await self.host.close()
        await self.session.close()
        await self.runner.cleanup()

    def close(self) -> None:
        self.run(self.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("fuzz") / "fuzz.sqlite3")
    try:
        yield server
    finally:
        server.close()


def _parses(frame: str | bytes, *, binary: bool) -> str | None:
    """The message type when ``frame`` parses, else None."""
    try:
        return p.type_name(p.parse(frame, binary=binary))
    except BadMessage:
        return None


def _after_hello(live: LiveServer, frame: str | bytes, *, binary: bool) -> None:
    kind = _parses(frame, binary=binary)
    # a valid leave ends the session under test: that is not an error to look for
    assume(kind != "leave")
    live.run(live.after_hello(frame, kind is not None))


FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(body=_messages(json_values))
def test_any_json_value_in_any_field_after_hello(live: LiveServer, body: dict[str, Any]) -> None:
    _after_hello(live, orjson.dumps(body).decode(), binary=False)


@FUZZ
@given(body=_messages(msgpack_values))
def test_any_msgpack_value_in_any_field_after_hello(live: LiveServer, body: dict[str, Any]) -> None:
    _after_hello(live, msgpack.packb(body, use_bin_type=True), binary=True)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_messages(json_values) | _messages(msgpack_values), binary=st.booleans())
def test_any_value_in_any_field_before_hello(
    live: LiveServer, body: dict[str, Any], binary: bool
) -> None:
    try:
        frame: str | bytes = (
            msgpack.packb(body, use_bin_type=True) if binary else orjson.dumps(body).decode()
        )
    except TypeError:  # bytes have no JSON spelling
        assume(False)
        return
    live.run(live.before_hello(frame))


def test_the_server_still_serves_after_the_fuzzing(live: LiveServer) -> None:
    live.run(live.after_hello('{"type":"ping","ref":"still-here"}', True))
