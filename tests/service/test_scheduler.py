"""Status by the clock: the scheduler publishes transitions with no client action."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from aiohttp import ClientWebSocketResponse

from rooms.presence import MeetingChange
from signalling.clock import FixedClock
from signalling.keys import PRESENCE, SCHEDULER, STORE
from signalling.store.sqlite import SQLiteStore

from .dashboard_support import (
    T0,
    WAIT,
    ClientFactory,
    Server,
    add_meeting,
    dashboard,
    guest_enters,
    host_enters,
    meeting_of,
    receive,
    start_server,
)

#: the store calls a status refresh may make
REFRESH_CALLS = ("get_meeting_facts", "put_meeting_facts", "append_log", "write_presence")


@contextlib.contextmanager
def counted_calls(store: Any) -> Iterator[dict[str, int]]:
    """Count the store's REFRESH_CALLS made inside the block (the real calls run)."""
    calls: dict[str, int] = {}

    def counted(name: str) -> Any:
        real = getattr(store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            calls[name] = calls.get(name, 0) + 1
            return await real(*args, **kwargs)

        return call

    for name in REFRESH_CALLS:
        setattr(store, name, counted(name))
    try:
        yield calls
    finally:
        for name in REFRESH_CALLS:
            delattr(store, name)


async def advance(server: Server, to: Any) -> None:
    """Move the clock and let the scheduler do what fell due (the test's "sleep")."""
    server.clock.set(to)
    scheduler = server.app[SCHEDULER]
    await asyncio.wait_for(scheduler.ready.wait(), WAIT)
    await scheduler.run_due(to)


async def next_status(board: ClientWebSocketResponse, meeting_id: str) -> dict[str, Any]:
    while True:
        body = await receive(board, "meeting")
        if body["meeting"] == meeting_id and body["change"] == "status_changed":
            return body


async def seeded_later_meeting(server: Server, offset: timedelta) -> str:
    store = SQLiteStore(server.settings.db_path)
    await store.open()
    try:
        meeting = await add_meeting(
            store, server.settings, server.world, server.world.ada, T0 + offset
        )
    finally:
        await store.close()
    return meeting.id


async def test_starting_soon_then_missed_arrive_by_the_clock_alone(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    server = await start_server(aiohttp_client, tmp_path)
    later = await seeded_later_meeting(server, timedelta(hours=3))
    await advance(server, T0)  # the scheduler loaded before the meeting was added: reload
    await server.app[SCHEDULER].load(T0)
    board, snapshot = await dashboard(server, server.world.ada, "my")
    assert {m["id"]: m["status"] for m in snapshot["meetings"]}[later] == "scheduled"
    assert server.app[SCHEDULER].pending()[later] == T0 + timedelta(hours=2)
    await advance(server, T0 + timedelta(hours=2))
    soon = await next_status(board, later)
    assert (soon["was"], soon["status"]) == ("scheduled", "starting_soon")
    # Ada's first meeting (08:10, 30 min) is over at 10:40 + grace: nobody came
    first = meeting_of(server.world, server.world.ada).id
    await advance(server, T0 + timedelta(hours=2, minutes=40))
    missed = await next_status(board, first)
    assert (missed["was"], missed["status"]) == ("starting_soon", "missed")
    assert first not in server.app[SCHEDULER].pending()
    await board.close()


async def test_completed_when_both_entered_and_failed_when_both_peers_failed(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    server = await start_server(aiohttp_client, tmp_path)
    world = server.world
    board, _ = await dashboard(server, world.sam, "everyone")
    # Sam's meeting: both enter at different times and never meet
    sam_meeting = meeting_of(world, world.sam)
    guest = await guest_enters(server, sam_meeting)
    await guest.send_json({"type": "leave"})
    host = await host_enters(server, world.sam)
    await host.send_json({"type": "leave"})
    # Ada's meeting: they meet, both peers report failure, nobody ever connects
    ada_meeting = meeting_of(world, world.ada)
    ada_guest = await guest_enters(server, ada_meeting)
    ada_host = await host_enters(server, world.ada)
    await ada_guest.send_json({"type": "join"})
    await ada_host.send_json({"type": "join"})
    lobby = await receive(ada_host, "lobby")
    while not lobby["waiting"]:
        lobby = await receive(ada_host, "lobby")
    await ada_host.send_json({"type": "admit", "participant": lobby["waiting"][0]["id"]})
    await receive(ada_guest, "joined")
    await ada_host.send_json({"type": "call.state", "state": "failed"})
    await ada_guest.send_json({"type": "call.state", "state": "failed"})
    for peer in (ada_host, ada_guest):  # both reports handled before anyone leaves
        await peer.send_json({"type": "ping"})
        await receive(peer, "pong")
    await ada_host.send_json({"type": "leave"})
    await ada_guest.send_json({"type": "leave"})
    await server.app[PRESENCE].flush()
    assert (await next_status(board, ada_meeting.id))["status"] == "live"
    assert (await next_status(board, ada_meeting.id))["status"] == "failed"
    # Sam's is not over yet: entered at different moments is not "completed" until the end
    await advance(server, T0 + timedelta(hours=2, minutes=42))
    done = await next_status(board, sam_meeting.id)
    assert (done["was"], done["status"]) == ("starting_soon", "completed")
    await board.close()


async def test_cancelled_is_published_and_nothing_more_is_scheduled(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    server = await start_server(aiohttp_client, tmp_path)
    board, _ = await dashboard(server, server.world.ada, "my")
    meeting = meeting_of(server.world, server.world.ada)
    cancelled = dataclasses.replace(meeting, cancelled_at=T0, cancelled_by="ada")
    await server.app[STORE].update_meeting(cancelled)
    await asyncio.wait_for(server.app[SCHEDULER].ready.wait(), WAIT)
    await server.app[PRESENCE].meeting_changed(cancelled, MeetingChange.CANCELLED, T0)
    change = await receive(board, "meeting")
    assert change["change"] == "cancelled" and change["status"] == "cancelled"
    assert change["view"]["cancelled_at"] == "2026-11-23T08:00:00Z"
    status = await next_status(board, meeting.id)
    assert (status["was"], status["status"]) == ("starting_soon", "cancelled")
    assert meeting.id not in server.app[SCHEDULER].pending()
    await board.close()


async def test_restart_mid_day_publishes_what_fell_due_while_down(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    first = await start_server(aiohttp_client, tmp_path)
    later = await seeded_later_meeting(first, timedelta(hours=3))
    await asyncio.wait_for(first.app[SCHEDULER].ready.wait(), WAIT)
    await first.app[SCHEDULER].load(T0)  # records "scheduled" as the last status logged
    board, _ = await dashboard(first, first.world.ada, "my")
    await board.close()
    await first.client.close()
    # down from 08:00 to 10:30; the meeting at 11:00 became starting_soon meanwhile
    clock = FixedClock(T0 + timedelta(hours=2, minutes=30))
    second = await start_server(aiohttp_client, tmp_path, clock=clock, world=first.world)
    await asyncio.wait_for(second.app[SCHEDULER].ready.wait(), WAIT)
    board, snapshot = await dashboard(second, second.world.ada, "my", since=0)
    assert snapshot["fresh"] is False
    status = await next_status(board, later)
    assert (status["was"], status["status"]) == ("scheduled", "starting_soon")
    # and the pending transitions were recomputed: missed at 14:00 + grace
    assert second.app[SCHEDULER].pending()[later] == T0 + timedelta(hours=5, minutes=30)
    await board.close()


async def test_the_load_reads_and_writes_many_meetings_at_once(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    """A node started on a day of many meetings refreshes them in batches: no
    store read or write per meeting, and every status is kept all the same."""
    server = await start_server(aiohttp_client, tmp_path)
    store = SQLiteStore(server.settings.db_path)
    await store.open()
    try:
        added = [
            await add_meeting(
                store, server.settings, server.world, server.world.ada, T0 + timedelta(hours=h)
            )
            for h in range(3, 9)
        ]
    finally:
        await store.close()
    scheduler = server.app[SCHEDULER]
    await asyncio.wait_for(scheduler.ready.wait(), WAIT)
    with counted_calls(server.app[STORE]) as calls:
        loaded = await scheduler.load(T0)
    assert loaded >= len(added)
    assert calls.get("get_meeting_facts", 0) == 0
    assert calls.get("put_meeting_facts", 0) == 0
    assert calls.get("append_log", 0) == 0
    assert calls.get("write_presence", 0) == 1  # the new meetings' first status, together
    for meeting in added:
        stored = await server.app[STORE].get_meeting_facts(meeting.id)
        assert stored is not None and stored["status"] == "scheduled", meeting.id
        assert scheduler.pending()[meeting.id] == meeting.start - timedelta(hours=1)


async def test_a_status_that_moves_is_logged_and_stored_in_one_write(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    """One meeting's refresh: its ``status_changed`` entry and its facts go to the
    store together, and what the store then holds is the new status."""
    server = await start_server(aiohttp_client, tmp_path)
    later = await seeded_later_meeting(server, timedelta(hours=3))
    await advance(server, T0)
    await server.app[SCHEDULER].load(T0)
    board, _ = await dashboard(server, server.world.ada, "my")
    hub_store = server.app[STORE]
    meeting = await hub_store.get_meeting(later)
    with counted_calls(hub_store) as calls:
        status = await server.app[PRESENCE].refresh_status(meeting, T0 + timedelta(hours=2))
    assert status == "starting_soon"
    assert calls.get("write_presence", 0) == 1
    assert calls.get("append_log", 0) == 0
    assert calls.get("put_meeting_facts", 0) == 0
    stored = await hub_store.get_meeting_facts(later)
    assert stored is not None and stored["status"] == "starting_soon"
    soon = await next_status(board, later)
    assert (soon["was"], soon["status"]) == ("scheduled", "starting_soon")
    await board.close()
