"""A node that stops hands its rooms to the other nodes (scale-out).

On SIGTERM, before any client is told to go: the rooms' copies are written
(signalling/room_state.py), each room's lease is handed to one of the other
live nodes (taken in turn, from their liveness keys) and that node is told in
its hand-over list, so it loads the room's copy within a beat. Each client of a
handed room then gets ``goaway`` ``shutdown`` with the ``url`` of its room's new
node, and resumes there in its place; nobody is sent back to the stopping node.
Without another live node (or without Redis) the stop is as before: ``goaway``
``shutdown`` without a ``url``.
"""

from __future__ import annotations

import structlog
from redis.exceptions import RedisError

from signalling.cluster import RoomLeases, owner_url
from signalling.connection import Connection
from signalling.room_commands import RoomCommands
from signalling.room_state import RoomStates

log = structlog.get_logger("vestibule.drain")


async def drain(
    leases: RoomLeases, states: RoomStates, rooms: RoomCommands
) -> dict[Connection, str]:
    """Hand this node's rooms over; each connection to send on, with its room's new URL."""
    try:
        others = await leases.live_nodes()
        if not others:
            log.info("drain: no other node alive; rooms are released")
            return {}
        await states.flush()
        held = sorted(leases.held)
        to = {room_id: others[i % len(others)] for i, room_id in enumerate(held)}
        handed = set(await leases.hand_over(to))
    except RedisError as err:
        log.warning("drain failed; rooms are released", error=str(err))
        return {}
    urls: dict[Connection, str] = {}
    for session in rooms.sessions.by_pid.values():
        room_id = session.who.room.id
        if room_id in handed and session.conn is not None:
            urls[session.conn] = owner_url(to[room_id])
    log.info("drained", rooms=len(handed), nodes=len(others), people=len(urls))
    return urls
