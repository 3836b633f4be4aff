"""Ordering and gap-freedom under concurrent writers (hypothesis), and resume at any point.

Many writers (presence from several connections through ``record``, meeting
changes through ``meeting_changed`` straight to ``append``) interleave in any
order hypothesis picks; the team's log must be one strictly increasing
sequence with no gap, a live dashboard must receive exactly the entries of its
scope in that order, and a dashboard that drops out at any point and resumes
with ``since`` must end with exactly the state of a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rooms.presence import MeetingChange, PresenceEvent, PresenceKind, Role
from signalling.keys import PRESENCE, STORE

from .dashboard_support import (
    DashboardState,
    Server,
    dashboard,
    meeting_of,
    receive,
    start_server,
    summary_of,
)

KINDS = [
    PresenceKind.ENTERED,
    PresenceKind.CHECKED,
    PresenceKind.WAITING,
    PresenceKind.IN_CALL,
    PresenceKind.LEFT,
    PresenceKind.CALL_CONNECTED,
    PresenceKind.CALL_FAILED,
]

#: (writer, meeting index, what): what < len(KINDS) is a presence kind, else a meeting change
Op = tuple[int, int, int]
ops_strategy = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, len(KINDS))),
    min_size=1,
    max_size=25,
)


async def _clients() -> tuple[list[TestClient[Any, Any]], Any]:
    clients: list[TestClient[Any, Any]] = []

    async def factory(app: web.Application) -> TestClient[Any, Any]:
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    return clients, factory


async def _scenario(ops: list[Op], cut: int) -> None:
    clients, factory = await _clients()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            server = await start_server(factory, Path(tmp))
            await _run(server, ops, cut)
        finally:
            for client in clients:
                await client.close()


async def _run(server: Server, ops: list[Op], cut: int) -> None:
    world = server.world
    presence, store = server.app[PRESENCE], server.app[STORE]
    meetings = [meeting_of(world, h) for h in (world.ada, world.sam, world.cy)]
    live, live_snapshot = await dashboard(server, world.ada, "everyone")
    live_state = DashboardState()
    live_state.apply(live_snapshot)
    dropper, drop_snapshot = await dashboard(server, world.ada, "everyone")
    drop_state = DashboardState()
    drop_state.apply(drop_snapshot)

    async def writer(mine: list[Op]) -> None:
        for n, (who, index, what) in enumerate(mine):
            meeting = meetings[index]
            if what == len(KINDS):
                await presence.meeting_changed(meeting, MeetingChange.UPDATED, server.clock.now())
            else:
                presence.record(
                    PresenceEvent(
                        KINDS[what],
                        world.team.id,
                        meeting.room_id,
                        f"p{who}",
                        Role.GUEST if who % 2 else Role.HOST,
                        server.clock.now(),
                        meeting.id,
                        {"verdict": "passed"} if KINDS[what] is PresenceKind.CHECKED else {},
                    )
                )
            if n % 2:
                await asyncio.sleep(0)  # a yield, so writers interleave (not a wait)

    writers = [writer([op for op in ops if op[0] == w]) for w in range(4)]
    half = max(0, min(cut, len(writers)))
    await asyncio.gather(*writers[:half])
    await presence.flush()
    # the dropping dashboard reads what reached it so far, then goes away
    reached = _last_visible(await store.log_since(world.team.id, 0, 10_000), meetings)
    while drop_state.last < reached:
        body = await receive(dropper)
        if body["type"] != "watermark":
            assert body["meeting"] in (meetings[0].id, meetings[1].id), f"out of scope: {body}"
        drop_state.apply(body)
    await dropper.close()
    # it comes back while the other writers are busy: catch-up and live overlap
    rest = asyncio.gather(*writers[half:])
    back, snapshot = await dashboard(server, world.ada, "everyone", since=drop_state.last)
    await rest
    await presence.flush()

    entries = await store.log_since(world.team.id, 0, 10_000)
    seqs = [e.seq for e in entries]
    assert seqs == list(range(1, len(seqs) + 1)), "one strictly increasing sequence, no gap"
    visible = [e.seq for e in entries if e.meeting_id in (meetings[0].id, meetings[1].id)]
    received: list[int] = []
    # Read until the dashboard knows it has everything: the last entry of the log,
    # or a watermark at it when the last entries were not in its scope.
    while live_state.last < seqs[-1]:
        body = await receive(live)
        live_state.apply(body)  # asserts seq strictly increasing
        if body["type"] != "watermark":
            received.append(body["seq"])
    assert received == visible, "the live stream is exactly the entries in scope, in order"

    drop_state.apply(snapshot)
    while visible and drop_state.last < visible[-1]:
        drop_state.apply(await receive(back))
    _, fresh = await dashboard(server, world.ada, "everyone")
    assert drop_state.summary() == summary_of(fresh)
    assert live_state.summary() == summary_of(fresh)
    await live.close()
    await back.close()


def _last_visible(entries: list[Any], meetings: list[Any]) -> int:
    seqs = [e.seq for e in entries if e.meeting_id in (meetings[0].id, meetings[1].id)]
    return seqs[-1] if seqs else 0


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=ops_strategy, cut=st.integers(0, 4))
def test_any_interleaving_is_one_gapless_sequence_and_resume_reconstructs_state(
    ops: list[Op], cut: int
) -> None:
    asyncio.run(_scenario(ops, cut))
