"""Fixtures for multi-node tests: real Redis, real hub processes, real websockets.

``nodes`` are two hub processes (``python -m signalling.cli serve --redis ...``)
sharing the session's private redis-server (tests/conftest.py), started once
per module; ``fresh_node`` is one more, for a test that stops it. ``seed``
runs ``loadseed`` into the same Redis: a new team with rooms, hosts and guest
links, one room per test, so tests never share a room or a token.

Readiness is a bounded loop of short ``GET /readyz`` requests (a subprocess
cannot notify us); every other wait is on a websocket message with a timeout.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest

from loadtest.targets import ready

pytestmark = pytest.mark.multinode

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
#: a cold hub imports aiohttp and aiortc and connects to Redis: a few seconds at most
READY_TIMEOUT = 30.0
#: SIGTERM lets a node say goaway, close its sockets and release its leases
STOP_GRACE = 10.0
#: the multinode tests use a Redis database of their own, apart from the contract suite
REDIS_DB = 2
#: the nodes' resume window: long enough for a client to find another node after
#: its own died (the liveness key lapses in 2 s), short enough that a test can
#: wait for a participant who never comes back
RESUME_WINDOW = 10.0


#: ports handed out in this session: the kernel may offer a just-released port
#: again before the node it was meant for has bound it
_GIVEN: set[int] = set()


def _free_port() -> int:
    """A loopback port nobody listens on and this session never handed out."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


@dataclass
class Node:
    """One hub process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        """Its public URL (what a goaway ``room_elsewhere`` points to)."""
        return f"http://{HOST}:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://{HOST}:{self.port}/ws"

    @property
    def dashboard(self) -> str:
        return f"ws://{HOST}:{self.port}/ws/dashboard"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after the grace period; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_GRACE)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


@dataclass(frozen=True)
class Cluster:
    """What the nodes share: Redis, the JWT secret and the data key."""

    redis_url: str
    jwt_secret: str
    workdir: Path
    data_key: str = field(
        default_factory=lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    )

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            VESTIBULE_JWT_SECRET=self.jwt_secret,
            VESTIBULE_DATA_KEY=self.data_key,
            VESTIBULE_MEDIACHECK="0",
            VESTIBULE_LOG_FORMAT="json",
            VESTIBULE_RESUME_WINDOW=str(RESUME_WINDOW),
        )
        return env

    def mint_jwt(self, staff_id: str) -> str:
        """A staff JWT every node accepts (HS256, ``sub`` and ``exp``)."""
        claims = {"sub": staff_id, "exp": int(time.time()) + 600}
        return jwt.encode(claims, self.jwt_secret, algorithm="HS256")

    def seed(self, rooms: int = 4) -> dict[str, Any]:
        """``loadseed``: {"team", "rooms": [{slug, host_id, token, guest_key, meeting}]}."""
        argv = [sys.executable, "-m", "signalling.cli", "loadseed", "--redis", self.redis_url]
        done = subprocess.run(
            [*argv, "--rooms", str(rooms)],
            capture_output=True,
            env=self.env(),
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
        seeded: dict[str, Any] = json.loads(done.stdout)
        return seeded

    def start(self, count: int) -> list[Node]:
        """``count`` hub processes, started together, each ready on /readyz."""
        nodes: list[Node] = []
        try:
            for _ in range(count):
                nodes.append(self._spawn(f"node{len(nodes)}-{secrets.token_hex(2)}"))
            for node in nodes:
                _wait_ready(node)
        except BaseException:
            for node in nodes:
                node.stop()
            raise
        return nodes

    def _spawn(self, name: str) -> Node:
        port = _free_port()
        argv = [
            sys.executable,
            *("-m", "signalling.cli", "serve", "--redis", self.redis_url),
            *("--port", str(port), "--db", "unused", "--no-demo"),
            *("--public-url", f"http://{HOST}:{port}"),
            "--json",  # one line on stdout once it listens: what _wait_ready waits for
        ]
        log_path = self.workdir / f"{name}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=self.env(),
                cwd=ROOT,
            )
        return Node(name, port, process, log_path)


def _wait_ready(node: Node) -> None:
    """Block until the node prints its startup line (it listens and its store is
    open), or fail with its log: waiting on the event itself, with a deadline."""
    stdout = node.process.stdout
    assert stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        if not selector.select(READY_TIMEOUT):
            pytest.fail(f"{node.name} not ready after {READY_TIMEOUT:.0f} s:\n{node.log_tail()}")
    line = stdout.readline()
    if not line:
        node.process.wait(5)
        pytest.fail(f"{node.name} exited ({node.process.returncode}):\n{node.log_tail()}")
    assert json.loads(line)["url"] == f"http://{HOST}:{node.port}"
    assert ready(node.port)


@pytest.fixture(scope="module")
def cluster(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    base = redis_server.rsplit("/", 1)[0]
    return Cluster(
        redis_url=f"{base}/{REDIS_DB}",
        jwt_secret=secrets.token_urlsafe(32),
        workdir=tmp_path_factory.mktemp("multinode"),
    )


@pytest.fixture(scope="module")
def nodes(cluster: Cluster) -> Iterator[list[Node]]:
    """Two hub processes sharing Redis, for the whole module."""
    started = cluster.start(2)
    yield started
    for node in started:
        node.stop()


@pytest.fixture
def fresh_node(cluster: Cluster) -> Iterator[Node]:
    """A hub process of the test's own (it may stop it)."""
    (started,) = cluster.start(1)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def seed(cluster: Cluster) -> dict[str, Any]:
    """A team with four rooms for the module: each test takes a room of its own."""
    return cluster.seed(4)


@pytest.fixture
def own_team(cluster: Cluster) -> dict[str, Any]:
    """A team of the test's own, for a test that reads the team's whole log."""
    return cluster.seed(1)
