"""A manager viewing as a client account on /ws/dashboard: the account's
meetings (every clinician's), live, and a meeting the manager books for one of
its clinicians; a manager viewing as no one gets no overview."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import ClientWebSocketResponse

from tests.service.api_support import ADA, MANAGER, NOW, SAM, TEAM_A, Api, make_api


async def overview(api: Api, headers: dict[str, str]) -> ClientWebSocketResponse:
    return await api.client.ws_connect("/ws/dashboard", headers=headers)


async def next_of(ws: ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    while True:
        body: dict[str, Any] = await ws.receive_json(timeout=5)
        if body["type"] == kind:
            return body


async def test_a_manager_viewing_as_sees_the_accounts_overview_and_books_in_it(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    api = await make_api(aiohttp_client, tmp_path)
    adas, _ = await api.add_meeting(ADA)
    sams, _ = await api.add_meeting(SAM, guest="Robin Okafor")
    ws = await overview(api, api.cookie(MANAGER, acting_as=TEAM_A))
    await ws.send_json({"type": "subscribe", "scope": "my"})
    snapshot = await next_of(ws, "snapshot")
    shown = {m["id"]: m for m in snapshot["meetings"]}
    # every clinician's meetings, "my" though the scope says: a manager hosts none
    assert {adas.id, sams.id} <= set(shown)
    assert {shown[adas.id]["host"], shown[sams.id]["host"]} == {ADA, SAM}

    # booking needs a clinician: the manager names one of the account's members
    body = {
        "guest": {"name": "Kim Lee", "email": "kim.lee@example.org"},
        "start": (NOW + timedelta(days=1)).isoformat(),
        "duration": 1800,
    }
    refused = await api.call("POST", "/api/meetings", role="manager_as_team", json=body)
    assert (refused.status, refused.code) == (422, "invalid")
    assert "host is required" in refused.body["error"]["message"]
    booked = await api.call(
        "POST", "/api/meetings", role="manager_as_team", json={**body, "host": SAM}
    )
    assert booked.status == 201, booked.body
    (meeting,) = booked.body["meetings"]
    assert (meeting["host"], meeting["room"]) == (SAM, api.own_room(SAM).slug)
    event = await next_of(ws, "meeting")
    assert (event["meeting"], event["change"]) == (meeting["id"], "created")
    await ws.close()


async def test_a_manager_viewing_as_no_one_gets_no_overview(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    api = await make_api(aiohttp_client, tmp_path)
    ws = await overview(api, api.cookie(MANAGER))
    await ws.send_json({"type": "subscribe", "scope": "everyone", "ref": 3})
    error = await next_of(ws, "error")
    assert (error["code"], error["ref"]) == ("forbidden", 3)
    await ws.close()
