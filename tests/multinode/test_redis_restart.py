"""Redis restarted under a running hub: what a patient did while it was away is
in the log once it is back.

A private redis-server with an append-only file (so a restart keeps the
records), a real hub process on it. A waiting patient leaves while Redis is
down: the hub cannot store the ``left``, keeps retrying, and closes the
patient's connection only once the ``left`` is stored (an acknowledgement
never precedes its record). Redis comes back on the same port; the close
arrives, and the ``left`` is in the team's log.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import redis

from signalling.store.redis import RedisStore
from tests.multinode.conftest import Cluster, Node
from tests.multinode.ledger import dashboard, no_seq_missing
from tests.multinode.wire import hello

pytestmark = pytest.mark.multinode

#: the writer retries at most every 2 s; Redis restarts in well under a second
BACK_WITHIN = 30.0


class PrivateRedis:
    """A redis-server of the test's own that can be stopped and started again on
    the same port and directory (append-only file: records survive)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is not installed"
        self.process = subprocess.Popen(
            [
                binary,
                *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir)),
                *("--save", "", "--appendonly", "yes", "--appendfsync", "always"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:  # its own "ready" line, not a timer
            if "Ready to accept connections" in line:
                break
        else:
            pytest.fail("redis-server did not start")
        client = redis.Redis.from_url(self.url)
        try:
            assert client.ping()
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
            if self.process.stdout is not None:
                self.process.stdout.close()
        self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_patient_who_leaves_while_redis_is_down_is_logged_once_it_is_back(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    cluster = Cluster(private_redis.url, secrets.token_urlsafe(32), tmp_path)
    seeded = cluster.seed(1)
    room = seeded["rooms"][0]
    (node,) = cluster.start(1)
    try:
        await _leave_during_outage(private_redis, node, room["token"], seeded["team"])
    finally:
        node.stop()


async def _leave_during_outage(server: PrivateRedis, node: Node, token: str, team: str) -> None:
    async with aiohttp.ClientSession() as http:
        guest, welcome, _ = await hello(http, node.ws, {"token": token}, follow=False)
        assert welcome["type"] == "welcome", welcome
        pid = welcome["participant"]
        await guest.send({"type": "join"})
        await guest.expect("waiting")

        await asyncio.to_thread(server.stop)
        await guest.send({"type": "leave"})
        await asyncio.to_thread(server.start)
        # the hub closes the connection once the "left" is stored, not before
        async with asyncio.timeout(BACK_WITHIN):
            while not guest.ws.closed:
                message = await guest.ws.receive()
                if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    break
    store = RedisStore(server.url)
    await store.open()
    try:
        entries = await store.log_since(team, 0, 10_000)
    finally:
        await store.close()
    kinds = [e.kind for e in entries if e.data.get("participant") == pid]
    assert kinds[-1] == "left", kinds
    assert "entered" in kinds and "waiting" in kinds


async def test_rooms_stay_whole_and_every_left_arrives_when_redis_restarts_under_two_nodes(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    """Two nodes, a call and a queue on node A, a dashboard per room on node B.
    While Redis is down the patient in the call and the waiting patient leave;
    once it is back, both ``left`` reach the dashboards with no seq missing, and
    the rooms are still on node A alone (a hello at node B is sent there)."""
    cluster = Cluster(private_redis.url, secrets.token_urlsafe(32), tmp_path)
    seeded = cluster.seed(2)
    call_room, queue_room = seeded["rooms"]
    a, b = cluster.start(2)
    try:
        async with aiohttp.ClientSession() as http:
            ledgers = [
                await dashboard(http, cluster, b, room["host_id"]) for room in seeded["rooms"]
            ]
            counting = [asyncio.create_task(ledger.run()) for ledger in ledgers]
            staff = {"jwt": cluster.mint_jwt(call_room["host_id"]), "room": call_room["slug"]}
            host, welcome, _ = await hello(http, a.ws, staff, follow=False)
            assert welcome["type"] == "welcome", welcome
            await host.send({"type": "join"})
            await host.expect("joined")
            patient, welcome, _ = await hello(
                http, a.ws, {"token": call_room["token"]}, follow=False
            )
            patient_id = welcome["participant"]
            await patient.send({"type": "join"})
            await patient.expect("waiting")
            await host.send({"type": "admit", "participant": patient_id})
            await patient.expect("joined")
            waiting, welcome, _ = await hello(
                http, a.ws, {"token": queue_room["token"]}, follow=False
            )
            waiting_id = welcome["participant"]
            await waiting.send({"type": "join"})
            await waiting.expect("waiting")

            await asyncio.to_thread(private_redis.stop)
            await patient.send({"type": "leave"})
            await waiting.send({"type": "leave"})
            await asyncio.to_thread(private_redis.start)
            # told once the departure is stored (after Redis is back), never before
            await host.expect("participant", where=lambda m: m["event"] == "went")

            await ledgers[0].until("left", patient_id, BACK_WITHIN)
            await ledgers[1].until("left", waiting_id, BACK_WITHIN)
            await no_seq_missing(ledgers, counting, cluster.redis_url, seeded["team"])

            # not split: the room is still node A's, and node B sends the host there
            elsewhere, goaway, _ = await hello(http, b.ws, staff, follow=False)
            assert (goaway["type"], goaway.get("url")) == ("goaway", a.url), goaway
            await elsewhere.close()
            await host.send({"type": "ping", "ref": 1})
            await host.expect("pong")
            for peer in (host, patient, waiting, *(ledger.peer for ledger in ledgers)):
                await peer.close()
    finally:
        for node in (a, b):
            node.stop()
