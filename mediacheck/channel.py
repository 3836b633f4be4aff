"""Framed msgpack messages over a stream socket between the hub and a worker process.

Each message is a 4-byte big-endian length followed by a msgpack map. Both ends use
asyncio streams on their half of a ``socket.socketpair()``, so neither blocks its
event loop and a dead peer shows up as end-of-stream. SDP goes through here but is
never logged (it carries ICE passwords and DTLS fingerprints).
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import msgpack

#: An offer or answer SDP is a few KB; a result a few hundred bytes. Anything near a
#: megabyte means a broken peer, not a message.
MAX_MESSAGE = 1 << 20
_HEADER = struct.Struct("!I")

Message = dict[str, Any]


class ChannelClosed(Exception):
    """The other end went away (process exited or socket closed)."""


def encode(message: Message) -> bytes:
    payload: bytes = msgpack.packb(message, use_bin_type=True)
    if len(payload) > MAX_MESSAGE:
        raise ValueError("message too large for the worker channel")
    return _HEADER.pack(len(payload)) + payload


async def read_message(reader: asyncio.StreamReader) -> Message:
    """The next message; raises :class:`ChannelClosed` at end of stream."""
    try:
        header = await reader.readexactly(_HEADER.size)
        (size,) = _HEADER.unpack(header)
        if size > MAX_MESSAGE:
            raise ChannelClosed("oversized frame: channel out of sync")
        payload = await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise ChannelClosed(str(exc)) from exc
    message = msgpack.unpackb(payload, raw=False)
    if not isinstance(message, dict) or not isinstance(message.get("kind"), str):
        raise ChannelClosed("malformed frame")
    return message
