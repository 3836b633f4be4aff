"""Talking to a deployment the way a client does: URLs, websockets, ``hello``, redirects.

A target is a base URL (``http://host:port`` or ``https://...``); its websockets are
``ws(s)://host:port/ws`` and ``/ws/dashboard``. In a cluster every room lives on one
node: a ``hello`` for a room owned by another node is answered
``goaway`` ``room_elsewhere`` with that node's URL, and the client says the same
``hello`` there at once (docs/protocol.md). :func:`hello` does exactly that, and
counts the hops.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from loadtest.wsclient import WsClient, WsError

#: redirects followed for one hello before giving up (a room has one owner)
MAX_HOPS = 3


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a base URL's websockets are."""

    host: str
    port: int
    tls: bool

    @classmethod
    def of(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        tls = parts.scheme in ("https", "wss")
        return cls(parts.hostname, parts.port or (443 if tls else 80), tls)

    @property
    def key(self) -> str:
        return f"{self.host}:{self.port}"


#: the certificate authorities https/wss targets are verified against: the system's,
#: or a file of PEM certificates (``--ca-file``, e.g. a staging deployment's own CA)
_CA_FILE: str | None = None


def configure_tls(ca_file: str | None) -> None:
    """Verify https targets against ``ca_file`` (None: the system's CAs)."""
    global _CA_FILE
    _CA_FILE = ca_file or None


def tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=_CA_FILE)


async def connect(endpoint: Endpoint, path: str, *, wait: float) -> WsClient:
    context = tls_context() if endpoint.tls else None
    return await WsClient.connect(endpoint.host, endpoint.port, path, wait=wait, ssl=context)


class Refused(Exception):
    """The server answered ``hello`` with an error (``code``), or closed instead."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


@dataclass(slots=True)
class Entered:
    """A connection past ``welcome``."""

    client: WsClient
    welcome: dict[str, Any]
    endpoint: Endpoint
    hops: int
    #: CLOCK_MONOTONIC ns when hello was (last) sent and welcome arrived
    hello_ns: int = 0
    welcome_ns: int = 0
    #: messages that arrived after welcome while we were still reading the handshake
    early: list[dict[str, Any]] = field(default_factory=list)


async def read_until(
    client: WsClient, kinds: frozenset[str], *, wait: float
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The first message whose type is in ``kinds`` (or an ``error``), and those skipped."""
    skipped: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait
    while True:
        body = orjson.loads(await client.recv(max(0.01, deadline - time.monotonic())))
        if not isinstance(body, dict):
            continue
        kind = body.get("type")
        if kind in kinds or kind == "error":
            return body, skipped
        skipped.append(body)


async def hello(
    endpoint: Endpoint, body: dict[str, Any], *, wait: float, path: str = "/ws"
) -> Entered:
    """Connect, say ``hello`` (``body`` without its type), follow ``room_elsewhere``.

    Raises :class:`Refused` with the server's error code when it refuses, ``closed``
    when it closes without one, and WsError/TimeoutError/OSError on transport trouble.
    """
    hops = 0
    while True:
        client = await connect(endpoint, path, wait=wait)
        sent = time.monotonic_ns()
        client.send_json({"type": "hello", **body})
        try:
            answer, _ = await read_until(client, frozenset({"welcome", "goaway"}), wait=wait)
        except WsError:
            client.close()
            raise Refused("closed") from None
        except BaseException:
            client.close()
            raise
        kind = answer.get("type")
        if kind == "welcome":
            return Entered(client, answer, endpoint, hops, sent, time.monotonic_ns())
        client.close()
        if kind == "error":
            raise Refused(str(answer.get("code")), str(answer.get("message", "")))
        if answer.get("reason") != "room_elsewhere" or not answer.get("url"):
            raise Refused("goaway", str(answer.get("reason")))
        hops += 1
        if hops > MAX_HOPS:
            raise Refused("too_many_redirects")
        endpoint = Endpoint.of(str(answer["url"]))


def ws_url_key(url: str) -> str:
    return Endpoint.of(url).key
