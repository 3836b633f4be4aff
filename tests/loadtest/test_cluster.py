"""``loadtest run`` through one URL of a three-node cluster on a private redis-server:
guests of rooms that live on the other nodes are redirected (``room_elsewhere``) and
followed, so every node, and every room, is reached."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from loadtest.cli import main
from loadtest.fixtures import Provisioner
from loadtest.scrape import delta, parse, total
from loadtest.wire import Endpoint, Entered, hello
from tests.loadtest.conftest import ROOT, api_key, free_port, stop, wait_listening

pytestmark = pytest.mark.multinode

#: a Redis database of its own (the multinode suite uses 2)
REDIS_DB = 11


def metrics(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        return parse(response.read().decode())


@pytest.fixture(scope="module")
def cluster(
    redis_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[list[str], str, str]]:
    """(node URLs, API key, JWT secret): node 0 seeds the demo team into Redis."""
    url = f"{redis_server.rsplit('/', 1)[0]}/{REDIS_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    workdir = tmp_path_factory.mktemp("cluster")
    jwt_secret = "s" + secrets.token_urlsafe(32)  # never read as a flag
    env = dict(os.environ)
    # every node of a cluster shares one data key
    data_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    env.update(VESTIBULE_JWT_SECRET=jwt_secret, VESTIBULE_MEDIACHECK="0",
               VESTIBULE_LOG_LEVEL="warning", VESTIBULE_DATA_KEY=data_key)  # fmt: skip
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for index in range(3):
            port = free_port()
            command = "demo" if index == 0 else "serve"
            argv = [
                sys.executable, "-m", "signalling.cli", command, "--redis", url,
                "--port", str(port), "--public-url", f"http://127.0.0.1:{port}", "--json",
            ]  # fmt: skip
            if index:
                argv.append("--no-demo")
            log = workdir / f"node{index}.log"
            with open(log, "wb") as err:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                    env=env, cwd=ROOT,
                )  # fmt: skip
            processes.append(proc)
            urls.append(wait_listening(proc, log).rstrip("/"))
        yield urls, api_key(int(urls[0].rsplit(":", 1)[1])), jwt_secret
    finally:
        for proc in processes:
            stop(proc)


class Holders:
    """Staff connections kept in rooms on chosen nodes (so the rooms live there), on a
    loop of their own while the harness runs in the test's thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.held: list[Entered] = []

    def hold(self, node: str, token: str) -> None:
        """A guest of the room says hello at ``node``: the room is placed there."""

        async def enter() -> Entered:
            return await hello(Endpoint.of(node), {"token": token}, wait=10)

        entered = asyncio.run_coroutine_threadsafe(enter(), self.loop).result(15)
        assert entered.hops == 0
        self.held.append(entered)

    def close(self) -> None:
        async def close_all() -> None:
            for entered in self.held:
                entered.client.close()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(15)
        self.loop.close()


def test_one_url_reaches_every_room_of_a_three_node_cluster(
    cluster: tuple[list[str], str, str], tmp_path: Path
) -> None:
    urls, key, jwt_secret = cluster

    async def prepare() -> list[str]:
        async with Provisioner(urls[0], key) as prov:
            # the rooms the join scenario uses (it reuses them by name), and a guest of
            # each of the first two (guests, not clinicians: the harness logs every
            # clinician into these rooms, which would take a clinician's session over)
            rooms = await prov.rooms(4)
            host = (await prov.hosts())[0].id
            booked = await prov.book([(rooms[0], host), (rooms[1], host)])
            return [b.token for b in booked]

    tokens = asyncio.run(prepare())
    holders = Holders()
    try:
        # rooms 1 and 2 live on nodes 1 and 2; 3 and 4 go wherever the harness lands
        # (node 0)
        holders.hold(urls[1], tokens[0])
        holders.hold(urls[2], tokens[1])
        before = [metrics(u) for u in urls]
        out = tmp_path / "cluster.json"
        code = main(
            [
                "run", "--target", urls[0], "--api-key", key, "--jwt-secret", jwt_secret,
                "--scenario", "join", "--join-rate", "24", "--duration", "1.5",
                "--json", str(out), "--live", "plain", "--slo", "join.failed==0",
            ]
        )  # fmt: skip
        after = [metrics(u) for u in urls]
    finally:
        holders.close()
    doc = json.loads(out.read_text())
    f = doc["scenarios"]["join"]["figures"]
    assert code == 0, doc["scenarios"]["join"]["first_errors"]
    assert f["ok"] >= 24 and f["failed"] == 0
    welcomes = [
        total(delta(b, a), "vestibule_join_seconds_count")
        for b, a in zip(before, after, strict=True)
    ]
    # every node welcomed guests of its rooms; the redirected ones were followed
    assert all(w > 0 for w in welcomes), welcomes
    assert sum(welcomes) == f["ok"]
    assert f["redirects"] == welcomes[1] + welcomes[2]
