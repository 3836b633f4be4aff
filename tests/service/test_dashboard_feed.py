"""/ws/dashboard: auth, snapshot, live presence through the real /ws hub, scope, resume."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import WSMsgType

from signalling.keys import DASHBOARD, PRESENCE, STORE
from signalling.keys import METRICS as METRICS_KEY

from .dashboard_support import (
    WAIT,
    ClientFactory,
    DashboardState,
    dashboard,
    guest_enters,
    host_enters,
    meeting_of,
    receive,
    start_server,
    summary_of,
)


async def test_snapshot_has_the_viewers_meetings_with_guest_details(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    server = await start_server(aiohttp_client, tmp_path)
    world = server.world
    ws, snapshot = await dashboard(server, world.ada, "my")
    assert snapshot["fresh"] is True
    assert snapshot["seq"] == 0
    [view] = snapshot["meetings"]
    mine = meeting_of(world, world.ada)
    assert view["id"] == mine.id
    assert view["status"] == "starting_soon"
    assert view["indicator"] == "not_entered"
    assert view["guest"] == {
        "name": mine.guest.name,
        "email": mine.guest.email,
        "phone": "",
    }
    assert view["guest_key"] is None
    assert view["type"] == {"id": "mt", "label": "Consultation", "colour": "#123456"}
    assert view["start"] == "2026-11-23T08:10:00Z"
    await ws.close()


async def test_everyone_is_the_viewers_groups_and_never_another_team(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    server = await start_server(aiohttp_client, tmp_path)
    world = server.world
    ws, snapshot = await dashboard(server, world.ada, "everyone")
    ids = {m["id"] for m in snapshot["meetings"]}
    assert ids == {meeting_of(world, world.ada).id, meeting_of(world, world.sam).id}
    # sorted by start, most recent first
    assert [m["start"] for m in snapshot["meetings"]] == sorted(
        (m["start"] for m in snapshot["meetings"]), reverse=True
    )
    ws_cy, cy_snapshot = await dashboard(server, world.cy, "everyone")
    assert {m["id"] for m in cy_snapshot["meetings"]} == {meeting_of(world, world.cy).id}
    ws_zed, zed_snapshot = await dashboard(server, world.zed, "everyone")
    assert {m["id"] for m in zed_snapshot["meetings"]} == {meeting_of(world, world.zed).id}
    for w in (ws, ws_cy, ws_zed):
        await w.close()


async def test_guest_presence_reaches_the_hosts_dashboard_only(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    server = await start_server(aiohttp_client, tmp_path)
    world = server.world
    ada_ws, _ = await dashboard(server, world.ada, "my")
    sam_my, _ = await dashboard(server, world.sam, "my")
    sam_all, _ = await dashboard(server, world.sam, "everyone")
    zed_ws, _ = await dashboard(server, world.zed, "everyone")
    ada_meeting = meeting_of(world, world.ada)
    guest = await guest_enters(server, ada_meeting)
    entered = await receive(ada_ws, "presence")
    assert entered["meeting"] == ada_meeting.id
    assert entered["kind"] == "entered"
    assert entered["role"] == "guest"
    assert entered["indicator"] == "entered"
    assert entered["seq"] == 1
    # the colleague in the same group sees it under "everyone", the same seq
    assert (await receive(sam_all, "presence"))["seq"] == 1
    # a later event about Sam's own meeting reaches Sam's "my" first: nothing of Ada's before
    sam_guest = await guest_enters(server, meeting_of(world, world.sam))
    own = await receive(sam_my, "presence")
    assert own["meeting"] == meeting_of(world, world.sam).id
    assert own["seq"] == 2
    # and the other team's dashboard saw neither: its next message is its own event
    zed_guest = await guest_enters(server, meeting_of(world, world.zed))
    theirs = await receive(zed_ws, "presence")
    assert theirs["meeting"] == meeting_of(world, world.zed).id
    assert theirs["seq"] == 1  # its own team's log
    for w in (ada_ws, sam_my, sam_all, zed_ws, guest, sam_guest, zed_guest):
        await w.close()


async def test_host_and_guest_make_the_meeting_live_then_completed(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    server = await start_server(aiohttp_client, tmp_path)
    world = server.world
    board, snapshot = await dashboard(server, world.ada, "my")
    state = DashboardState()
    state.apply(snapshot)
    mine = meeting_of(world, world.ada)
    guest = await guest_enters(server, mine)
    state.apply(await receive(board, "presence"))
    host = await host_enters(server, world.ada)
    await guest.send_json({"type": "join"})
    await receive(guest, "waiting")
    await host.send_json({"type": "join"})
    lobby = await receive(host, "lobby")
    while not lobby["waiting"]:
        lobby = await receive(host, "lobby")
    [waiting] = lobby["waiting"]
    await host.send_json({"type": "admit", "participant": waiting["id"]})
    await receive(guest, "admitted")
    statuses: list[str] = []
    while "live" not in statuses:
        body = await receive(board)
        state.apply(body)
        if body["type"] == "meeting":
            statuses.append(body["status"])
    await host.send_json({"type": "leave"})
    await guest.send_json({"type": "leave"})
    while statuses[-1] != "completed":
        body = await receive(board)
        state.apply(body)
        if body["type"] == "meeting":
            statuses.append(body["status"])
    assert statuses == ["live", "completed"]
    await server.app[PRESENCE].flush()
    _, fresh = await dashboard(server, world.ada, "my")
    assert summary_of(fresh) == state.summary()
    assert summary_of(fresh)[mine.id] == ("completed", "entered")


async def test_resume_with_since_gets_exactly_the_missed_events(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    server = await start_server(aiohttp_client, tmp_path)
    world = server.world
    board, _ = await dashboard(server, world.ada, "everyone")
    guest = await guest_enters(server, meeting_of(world, world.ada))
    first = await receive(board, "presence")
    await board.close()
    # missed while away: Sam's guest enters, Ada's guest leaves
    sam_guest = await guest_enters(server, meeting_of(world, world.sam))
    await guest.send_json({"type": "leave"})
    await server.app[PRESENCE].flush()
    again, snapshot = await dashboard(server, world.ada, "everyone", since=first["seq"])
    assert snapshot == {"type": "snapshot", "seq": first["seq"], "fresh": False, "meetings": []}
    missed = [await receive(again, "presence"), await receive(again, "presence")]
    assert [m["seq"] for m in missed] == [first["seq"] + 1, first["seq"] + 2]
    assert [m["kind"] for m in missed] == ["entered", "left"]
    # and then live, with no duplicate of what the catch-up sent
    await sam_guest.send_json({"type": "leave"})
    live = await receive(again, "presence")
    assert live["seq"] == first["seq"] + 3
    await again.close()
    await sam_guest.close()


async def test_since_before_the_retention_window_gets_a_fresh_snapshot(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    server = await start_server(aiohttp_client, tmp_path)
    store = server.app[STORE]
    team = server.world.team.id
    for _ in range(5):
        await store.append_log(team, server.clock.now(), "presence", "entered", None, {})
    await store.trim_log(team, 2)
    assert await store.log_bounds(team) == (4, 5)
    _, stale = await dashboard(server, server.world.ada, "my", since=2)
    assert stale["fresh"] is True
    assert stale["seq"] == 5
    assert len(stale["meetings"]) == 1
    _, edge = await dashboard(server, server.world.ada, "my", since=3)
    assert edge["fresh"] is False  # 4 and 5 are retained: nothing was lost
    _, future = await dashboard(server, server.world.ada, "my", since=99)
    assert future["fresh"] is True  # a seq this log never had: start over


async def test_credentials_are_required_and_checked(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    server = await start_server(aiohttp_client, tmp_path)
    ws = await server.client.ws_connect("/ws/dashboard")
    await ws.send_json({"type": "subscribe", "scope": "my"})
    error = await receive(ws, "error")
    assert error["code"] == "unauthorized"
    closed = await asyncio.wait_for(ws.receive(), WAIT)
    assert closed.type is WSMsgType.CLOSE and closed.data == 1008
    ws = await server.client.ws_connect("/ws/dashboard")
    await ws.send_json({"type": "hello", "jwt": "not-a-jwt"})
    assert (await receive(ws, "error"))["code"] == "token_invalid"
    # a guest's link token is no staff credential
    ws = await server.client.ws_connect("/ws/dashboard")
    token = server.world.tokens[meeting_of(server.world, server.world.ada).id]
    await ws.send_json({"type": "hello", "token": token})
    assert (await receive(ws, "error"))["code"] == "unauthorized"


async def test_bad_input_keeps_the_dashboard_usable(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    server = await start_server(aiohttp_client, tmp_path)
    ws, _ = await dashboard(server, server.world.ada, "my")
    await ws.send_json({"type": "subscribe", "scope": "team", "ref": 4})
    error = await receive(ws, "error")
    assert (error["code"], error["ref"]) == ("bad_message", 4)
    await ws.send_json({"type": "join"})
    assert (await receive(ws, "error"))["code"] == "bad_message"
    await ws.send_json({"type": "subscribe", "scope": "everyone", "ref": "again"})
    snapshot = await receive(ws, "snapshot")
    assert snapshot["ref"] == "again" and len(snapshot["meetings"]) == 2
    assert len(server.app[DASHBOARD].feeds[server.world.team.id].subscribers) == 1
    await ws.close()


async def test_a_dashboard_that_stops_reading_is_cut_off_and_resumes(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    # a small write-buffer bound (send_queue * 4 KiB) so the test needs little data
    server = await start_server(aiohttp_client, tmp_path, send_queue=4)
    world = server.world
    mine = meeting_of(world, world.ada)
    stalled, _ = await dashboard(server, world.ada, "my")
    presence = server.app[PRESENCE]
    board = server.app[DASHBOARD]
    metrics = server.app[METRICS_KEY]
    padding = "x" * 16_000
    sent = 0
    # the client reads nothing while entries pile up; stop as soon as it is cut off
    while metrics.registry.get_sample_value(
        "vestibule_slow_consumers_total", {"endpoint": "dashboard"}
    ) in (None, 0.0):
        await presence.append(
            world.team.id,
            server.clock.now(),
            "presence",
            "checked",
            mine.id,
            {"detail": {"pad": padding}},
        )
        await board.idle()
        sent += 1
        assert sent < 5_000, "never cut off: the server kept buffering"
    assert not board.feeds.get(world.team.id)  # unsubscribed: nothing held for it any more
    # it was told why: the close frame comes after whatever the kernel had buffered
    while True:
        msg = await asyncio.wait_for(stalled.receive(), WAIT)
        if msg.type is not WSMsgType.TEXT:
            break
    assert msg.type is WSMsgType.CLOSE
    assert (msg.data, msg.extra) == (1013, "slow_consumer")
    resumed, snapshot = await dashboard(server, world.ada, "my", since=sent - 1)
    assert snapshot["fresh"] is False
    assert (await receive(resumed, "presence"))["seq"] == sent
    await resumed.close()
