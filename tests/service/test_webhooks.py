"""Webhooks: a real aiohttp receiver on loopback; signature, ids, retries, dead letters."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from signalling.keys import METRICS, PRESENCE, WEBHOOKS
from signalling.webhooks import EVENT_HEADER, SIGNATURE_HEADER

from .dashboard_support import (
    WAIT,
    ClientFactory,
    guest_enters,
    leave,
    meeting_of,
    start_server,
)

SECRET = "webhook-secret-shared-with-the-receiver"


class Receiver:
    """An HTTP endpoint that records every POST and answers ``statuses`` in turn."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = statuses or []
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.gate: asyncio.Event | None = None
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self.server = TestServer(app)

    async def _hook(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        if self.gate is not None:
            await self.gate.wait()
        status = self.statuses.pop(0) if self.statuses else 204
        return web.Response(status=status)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/hook"))


def dead_letters(app: web.Application) -> float:
    value = app[METRICS].registry.get_sample_value("vestibule_webhook_dead_letters_total")
    return 0.0 if value is None else value


async def test_each_entry_is_posted_signed_with_its_event_id(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    receiver = Receiver()
    await receiver.server.start_server()
    try:
        server = await start_server(
            aiohttp_client,
            tmp_path,
            webhook_urls=(receiver.url,),
            webhook_secret=SECRET,
        )
        guest = await guest_enters(server, meeting_of(server.world, server.world.ada))
        await leave(guest)
        await server.app[PRESENCE].flush()
        await asyncio.wait_for(server.app[WEBHOOKS].idle(), WAIT)
        assert len(receiver.requests) >= 2
        bodies = []
        for headers, body in receiver.requests:
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(headers[SIGNATURE_HEADER], expected)
            bodies.append(json.loads(body))
            assert headers[EVENT_HEADER] == bodies[-1]["id"]
        assert [b["id"] for b in bodies[:2]] == ["team:1", "team:2"]
        assert [b["kind"] for b in bodies[:2]] == ["entered", "left"]
        # nothing about the person: ids and states only
        raw = b"".join(body for _, body in receiver.requests)
        assert b"Patient of" not in raw and b"@example.org" not in raw
        # a tampered body no longer matches its signature
        headers, body = receiver.requests[0]
        forged = "sha256=" + hmac.new(SECRET.encode(), body + b" ", hashlib.sha256).hexdigest()
        assert not hmac.compare_digest(headers[SIGNATURE_HEADER], forged)
    finally:
        await receiver.server.close()


async def test_retries_are_bounded_then_dead_lettered(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    # fails twice, then succeeds: delivered on the third attempt, nothing dead
    receiver = Receiver([500, 503])
    await receiver.server.start_server()
    try:
        server = await start_server(
            aiohttp_client,
            tmp_path,
            webhook_urls=(receiver.url,),
            webhook_attempts=3,
            webhook_backoff=0.001,
        )
        sender = server.app[WEBHOOKS]
        store_entry = await server.app[PRESENCE].append(
            "team", server.clock.now(), "presence", "entered", None, {}
        )
        await asyncio.wait_for(sender.idle(), WAIT)
        assert len(receiver.requests) == 3
        assert dead_letters(server.app) == 0
        # always failing: exactly `attempts` tries, then one dead letter
        receiver.statuses = [500] * 10
        receiver.requests.clear()
        await server.app[PRESENCE].append("team", server.clock.now(), "presence", "left", None, {})
        await asyncio.wait_for(sender.idle(), WAIT)
        assert len(receiver.requests) == 3
        assert {h[EVENT_HEADER] for h, _ in receiver.requests} == {f"team:{store_entry.seq + 1}"}
        assert dead_letters(server.app) == 1
    finally:
        await receiver.server.close()


async def test_a_stuck_endpoint_never_blocks_the_log_and_the_queue_stays_bounded(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    receiver = Receiver()
    receiver.gate = asyncio.Event()  # the endpoint hangs until released
    await receiver.server.start_server()
    try:
        server = await start_server(
            aiohttp_client, tmp_path, webhook_urls=(receiver.url,), webhook_queue=3
        )
        presence, sender = server.app[PRESENCE], server.app[WEBHOOKS]
        for _ in range(10):  # appends complete while the endpoint hangs
            await presence.append("team", server.clock.now(), "presence", "entered", None, {})
        assert len(sender.queue) == 3
        # one entry is in flight, three wait, six were dropped into the dead letters
        assert dead_letters(server.app) == 6
        assert [e.seq for e in sender.queue] == [8, 9, 10]
        receiver.gate.set()
        await asyncio.wait_for(sender.idle(), WAIT)
        ids = [h[EVENT_HEADER] for h, _ in receiver.requests]
        assert ids == ["team:1", "team:8", "team:9", "team:10"]
    finally:
        receiver.gate.set()
        await receiver.server.close()
