"""Websocket frames as bytes, for the paths that write to the socket themselves.

A server's frames are not masked (RFC 6455 section 5.1), so a frame is the same
bytes for whoever receives it: the dashboard builds one per entry for all its
subscribers, and a connection joins the frames of one loop iteration into one
write (signalling/connection.py).
"""

from __future__ import annotations


def ws_frame(payload: bytes, *, binary: bool) -> bytes:
    """``payload`` as one final, unmasked server frame (RFC 6455 section 5.2)."""
    first = 0x82 if binary else 0x81  # FIN + opcode 2 (binary) or 1 (text)
    size = len(payload)
    if size < 126:
        head = bytes((first, size))
    elif size < 65536:
        head = bytes((first, 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((first, 127)) + size.to_bytes(8, "big")
    return head + payload
