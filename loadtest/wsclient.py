"""A small websocket client (RFC 6455) built on an asyncio Protocol, for the load driver.

Why not aiohttp's client: per message it costs about as much CPU as the server's side
of the relay, and on these 2-core machines the load processes share the cores with the
server. A harness that is as slow as what it measures measures itself. This client
parses frames straight out of ``data_received`` and hands each payload to a callback,
with no task, queue or future per message, and writes every reply produced while
handling one read in a single ``transport.write``.

It speaks only what the harness needs: text frames out, text/binary frames in, ping
answered with pong, close. No extensions (permessage-deflate is not offered, so the
server never compresses) and no subprotocols.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl as ssl_module
from collections.abc import Callable
from typing import Any, cast

import orjson

#: RFC 6455 section 1.3: the fixed GUID the server appends to the key
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: largest HTTP response head we accept for the upgrade (aiohttp sends ~200 bytes)
_MAX_HEAD = 16 * 1024

_OP_CONT = 0x0
_OP_TEXT = 0x1
_OP_BINARY = 0x2
_OP_CLOSE = 0x8
_OP_PING = 0x9
_OP_PONG = 0xA

MessageHandler = Callable[[bytes], None]


class WsError(Exception):
    """The handshake failed, the connection closed, or the server broke the protocol."""


class ServerError(WsError):
    """The server answered with an ``error`` message while we expected something else."""

    def __init__(self, message: dict[str, Any]) -> None:
        super().__init__(f"server error {message.get('code')!r}: {message.get('message')!r}")
        self.code = str(message.get("code"))
        self.body = message


def encode_frame(payload: bytes, opcode: int = _OP_TEXT) -> bytes:
    """One final client frame.

    Clients must mask (RFC 6455 5.3) so that intermediaries cannot be confused by
    attacker-chosen bytes; on loopback to our own server there is no intermediary, so
    the mask key is zero and the masked payload equals the payload: the server still
    unmasks every frame (its cost is unchanged) and the harness spends nothing masking.
    """
    n = len(payload)
    first = 0x80 | opcode
    if n < 126:
        head = bytes((first, 0x80 | n))
    elif n < 65536:
        head = bytes((first, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\x00\x00\x00\x00" + payload


class WsClient(asyncio.Protocol):
    """A client websocket. Messages go to :attr:`on_message` when set, else to a queue."""

    def __init__(self) -> None:
        self.on_message: MessageHandler | None = None
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._key = b""
        self._upgraded: asyncio.Future[None] = self._loop.create_future()
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._fragments: list[bytes] | None = None
        self._corked: list[bytes] | None = None
        self._close_sent = False
        self.closed = False
        #: the code of the server's close frame, once one arrived
        self.close_code: int | None = None

    # -- connecting ------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        path: str,
        *,
        wait: float = 10.0,
        ssl: ssl_module.SSLContext | None = None,
    ) -> WsClient:
        """Open a TCP (or TLS, with ``ssl``) connection and upgrade it on ``path``."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(wait):
            _, client = await loop.create_connection(
                cls, host, port, ssl=ssl, server_hostname=host if ssl is not None else None
            )
            client._request_upgrade(f"{host}:{port}", path)
            await client._upgraded
        return client

    def _request_upgrade(self, authority: str, path: str) -> None:
        assert self._transport is not None
        self._key = base64.b64encode(os.urandom(16))
        head = (
            f"GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {self._key.decode()}\r\n\r\n"
        )
        self._transport.write(head.encode())

    def _finish_upgrade(self) -> bool:
        """Parse the upgrade response once complete; False while more bytes are needed."""
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > _MAX_HEAD:
                self._fail(WsError("upgrade response head too large"))
            return False
        head = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        del self._buffer[: end + 4]
        status = head[0].split(" ", 2)
        if len(status) < 2 or status[1] != "101":
            self._fail(WsError(f"upgrade refused: {head[0]!r}"))
            return False
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        expected = base64.b64encode(
            hashlib.sha1(self._key + _ACCEPT_GUID, usedforsecurity=False).digest()
        ).decode()
        if headers.get("sec-websocket-accept") != expected:
            self._fail(WsError("upgrade response has a wrong Sec-WebSocket-Accept"))
            return False
        if not self._upgraded.done():
            self._upgraded.set_result(None)
        return True

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(WsError(f"connection closed: {exc}" if exc else "connection closed"))
        self._queue.put_nowait(None)

    def data_received(self, data: bytes) -> None:
        buf = self._buffer
        buf += data
        if not self._upgraded.done() and not self._finish_upgrade():
            return
        # Replies produced while handling this read are written once, at the end.
        self._corked = []
        try:
            self._parse_frames(buf)
        finally:
            out, self._corked = self._corked, None
            if out and self._transport is not None and not self.closed:
                self._transport.write(b"".join(out))

    def _parse_frames(self, buf: bytearray) -> None:
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            if b1 & 0x80:
                self._fail(WsError("server sent a masked frame"))
                return
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            end = pos + head + length
            if end > size:
                break
            payload = bytes(buf[pos + head : end])
            pos = end
            self._frame(b0 & 0x80 != 0, b0 & 0x0F, payload)
            if self.closed:
                return
        del buf[:pos]

    def _frame(self, fin: bool, opcode: int, payload: bytes) -> None:
        if opcode in (_OP_TEXT, _OP_BINARY, _OP_CONT):
            if not fin:
                # aiohttp never fragments what it sends; kept for correctness only
                self._fragments = [*(self._fragments or []), payload]
                return
            if self._fragments is not None:
                payload = b"".join([*self._fragments, payload])
                self._fragments = None
            if self.on_message is not None:
                self.on_message(payload)
            else:
                self._queue.put_nowait(payload)
        elif opcode == _OP_PING:
            self._write(encode_frame(payload, _OP_PONG))
        elif opcode == _OP_CLOSE:
            if len(payload) >= 2:
                self.close_code = int.from_bytes(payload[:2], "big")
            if not self._close_sent:
                self._close_sent = True
                self._write(encode_frame(payload[:2], _OP_CLOSE))
            if self._transport is not None:
                self._transport.close()
            self.closed = True

    def _fail(self, exc: WsError) -> None:
        if not self._upgraded.done():
            self._upgraded.set_exception(exc)
            if self._transport is not None:
                self._transport.close()

    # -- sending -----------------------------------------------------------------------

    def _write(self, frame: bytes) -> None:
        if self._corked is not None:
            self._corked.append(frame)
        elif self._transport is not None and not self.closed:
            self._transport.write(frame)

    def send(self, payload: bytes) -> None:
        """Send one text frame (a JSON document already encoded)."""
        self._write(encode_frame(payload))

    def send_json(self, body: dict[str, Any]) -> None:
        self.send(orjson.dumps(body))

    def abort(self) -> None:
        """Drop the connection without a close frame, as a lost network would."""
        if self._transport is not None:
            self._transport.abort()
        self.closed = True

    def close(self) -> None:
        """Send a close frame (1000) and drop the connection without waiting."""
        if not self._close_sent and not self.closed:
            self._close_sent = True
            self._write(encode_frame((1000).to_bytes(2, "big"), _OP_CLOSE))
        if self._transport is not None:
            self._transport.close()
        self.closed = True

    # -- receiving (setup phases; loads use on_message) --------------------------------

    async def recv(self, wait: float) -> bytes:
        """The next queued message (within ``wait`` s); raises WsError once closed."""
        async with asyncio.timeout(wait):
            payload = await self._queue.get()
        if payload is None:
            self._queue.put_nowait(None)  # every later recv sees the close too
            raise WsError("connection closed")
        return payload

    async def expect(
        self,
        kind: str,
        *,
        wait: float = 10.0,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """Skip messages until one of type ``kind`` (matching ``where``) arrives in ``wait`` s.

        An ``error`` message on the way raises :class:`ServerError`: during setup an
        error always means the run cannot go on.
        """
        async with asyncio.timeout(wait):
            while True:
                body = orjson.loads(await self.recv(wait))
                if not isinstance(body, dict):
                    continue
                if body.get("type") == kind and (where is None or where(body)):
                    return body
                if body.get("type") == "error":
                    raise ServerError(body)

    def drop_queued(self) -> None:
        """Forget queued messages (pings and lobby updates left over from setup)."""
        while not self._queue.empty():
            if self._queue.get_nowait() is None:
                self._queue.put_nowait(None)
                return
