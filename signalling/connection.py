"""One websocket connection: encoding, bounded output, rate limiting, closing.

Output is written straight to the socket (no per-connection writer task: every
event-loop wake-up costs 70-110 µs, docs/architecture.md "The hot path"), and bounded by the
transport's write buffer: a peer that stops reading makes its buffer grow, and
past ``max_buffer`` bytes it is disconnected as a slow consumer instead of
growing the server's memory or stalling whoever is sending to it.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, cast

import structlog
from aiohttp import web

from signalling.frames import ws_frame
from signalling.metrics import Metrics
from signalling.protocol import encode

log = structlog.get_logger("vestibule.connection")


class CloseCode(enum.IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY = 1008
    TOO_LARGE = 1009
    INTERNAL = 1011
    TRY_AGAIN_LATER = 1013


class CloseReason(enum.StrEnum):
    LEFT = "left"
    DENIED = "denied"
    SHUTDOWN = "shutdown"
    SLOW_CONSUMER = "slow_consumer"
    UNAUTHORIZED = "unauthorized"
    TOKEN_INVALID = "token_invalid"  # noqa: S105 - a close reason, not a secret
    TOO_LARGE = "too_large"
    FLOOD = "rate_limited"
    REPLACED = "replaced"
    TIMEOUT = "timeout"
    ROOM_ELSEWHERE = "room_elsewhere"
    CANCELLED = "cancelled"


class TokenBucket:
    """Per-connection message rate limit: ``rate`` per second, bursts of ``burst``."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic()

    def take(self) -> float:
        """Take one token; returns 0.0 if allowed, else seconds until one is available."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate


class Connection:
    """A websocket with its encoding (JSON text or msgpack binary) and limits."""

    __slots__ = (
        "_loop",
        "_out",
        "_out_bytes",
        "_spawn",
        "alive",
        "app_ping",
        "binary",
        "bound",
        "close_reason",
        "closed",
        "endpoint",
        "id",
        "max_buffer",
        "metrics",
        "transport",
        "ws",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse,
        conn_id: str,
        metrics: Metrics,
        *,
        endpoint: str,
        max_buffer: int,
        transport: asyncio.BaseTransport | None,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        app_ping: bool = False,
    ) -> None:
        self.ws = ws
        self.id = conn_id
        self.binary = False
        self.metrics = metrics
        self.endpoint = endpoint
        self.max_buffer = max_buffer
        # Duck-typed on purpose: uvloop's transports (what `vestibule serve` runs on)
        # implement WriteTransport without subclassing it; an isinstance check here
        # silently turned the slow-consumer cut-off off in production.
        #: the socket's transport, written to directly (also by the dashboard's
        #: fan-out); None when there is none to write to
        self.transport = (
            cast(asyncio.WriteTransport, transport)
            if callable(getattr(transport, "get_write_buffer_size", None))
            else None
        )
        if self.transport is not None:
            # Never let the transport pause us before our own limit trips: sends then
            # stay synchronous and a slow reader is cut off instead of stalling senders.
            self.transport.set_write_buffer_limits(high=max_buffer * 2)
        #: heartbeats carry the application ``ping`` message too (/ws, not dashboards)
        self.app_ping = app_ping
        self._spawn = spawn
        self._loop = asyncio.get_running_loop()
        #: frames written in this loop iteration, joined into one write by _flush;
        #: None between iterations (an idle connection keeps no empty list)
        self._out: list[bytes] | None = None
        self._out_bytes = 0
        self.closed = False
        #: a frame arrived since the last heartbeat round (signalling.endpoint.Heartbeat)
        self.alive = True
        self.close_reason: str | None = None
        self.bound: dict[str, Any] = {"conn": conn_id}

    def write(self, payload: bytes, kind: str) -> bool:
        """Queue one encoded message for this loop iteration's write; False if the
        connection is gone or was cut off. Never waits (the hot path calls it)."""
        transport = self.transport
        if self.closed or self.ws.closed or transport is None or transport.is_closing():
            return False
        if transport.get_write_buffer_size() + self._out_bytes > self.max_buffer:
            # Closing waits for the peer's close frame; the sender must not wait for a
            # reader that does not read, so the close runs in the hub's own task set.
            self.metrics.slow_consumers.labels(self.endpoint).inc()
            self.close_soon(CloseCode.TRY_AGAIN_LATER, CloseReason.SLOW_CONSUMER)
            return False
        frame = ws_frame(payload, binary=self.binary)
        out = self._out
        if out is None:
            self._out = out = []
            self._loop.call_soon(self._flush)
        out.append(frame)
        self._out_bytes += len(frame)
        self.metrics.messages_out.counts[kind] += 1
        return True

    def write_frame(self, frame: bytes) -> None:
        """Write a prebuilt frame now, after whatever this connection still holds
        for this loop iteration (so a caller writing straight to the socket never
        overtakes frames queued by :meth:`write`). The caller checked the limits."""
        if self._out is not None:
            self._out.append(frame)
            self._out_bytes += len(frame)
        elif self.transport is not None:
            self.transport.write(frame)

    def _flush(self) -> None:
        """One write (one syscall) for every frame queued in this loop iteration."""
        out, self._out, self._out_bytes = self._out, None, 0
        transport = self.transport
        if out and transport is not None and not transport.is_closing() and not self.ws.closed:
            transport.write(out[0] if len(out) == 1 else b"".join(out))

    async def send(self, body: Mapping[str, Any]) -> bool:
        """Send one server message (see :meth:`write`)."""
        return self.write(encode(body, binary=self.binary), str(body["type"]))

    def send_now(self, body: Mapping[str, Any]) -> None:
        """Write one message at once, after what this connection still holds: for
        the last word before a close that aiohttp starts itself (a frame too large)."""
        self._flush()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(ws_frame(encode(body, binary=self.binary), binary=self.binary))
            self.metrics.messages_out.counts[str(body["type"])] += 1

    def close_soon(self, code: CloseCode, reason: str) -> None:
        """Start closing without waiting for it (safe from any send path)."""
        if not self.closed:
            self.closed = True
            self.close_reason = reason
            self._spawn(self._shut(code, reason))

    async def close(self, code: CloseCode, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.close_reason = reason
            await self._shut(code, reason)

    async def _shut(self, code: CloseCode, reason: str) -> None:
        self._flush()  # what was sent before the close goes out before the close frame
        log.info("connection closed", code=int(code), reason=reason, **self.bound)
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), 2.0)
        except (TimeoutError, ConnectionError, RuntimeError):
            if self.transport is not None:
                self.transport.abort()
