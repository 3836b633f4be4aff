"""The servers a benchmark loads: the bare relay and the hub, each its own subprocess.

Both are started on a free loopback port, waited for on ``GET /readyz``, and stopped
with SIGTERM (SIGKILL after a grace period) when the ``with`` block ends. The hub is
seeded first with ``signalling.cli loadseed`` (its JSON lists rooms, host ids and guest
link tokens) and runs with the rate limit out of the way and media checks off.
"""

from __future__ import annotations

import base64
import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import orjson

HOST = "127.0.0.1"
#: a cold hub imports aiohttp, aiortc and opens SQLite: seconds, not tens of seconds
READY_TIMEOUT = 30.0
STOP_GRACE = 10.0
#: loadseed writes a room, a meeting and a token per requested room; 19,000 rooms (the
#: idle benchmark) must fit
SEED_TIMEOUT = 600.0
_CLK_TCK = os.sysconf("SC_CLK_TCK")


class TargetError(RuntimeError):
    """A server did not start, did not seed, or died."""


@dataclass(frozen=True, slots=True)
class SeedRoom:
    slug: str
    host_id: str
    token: str


@dataclass(frozen=True, slots=True)
class Seed:
    """What ``loadseed`` created: one room per pair or join, with its host and guest link."""

    team: str
    rooms: tuple[SeedRoom, ...]

    @classmethod
    def from_json(cls, raw: bytes) -> Seed:
        body: Any = orjson.loads(raw)
        rooms = tuple(
            SeedRoom(slug=str(r["slug"]), host_id=str(r["host_id"]), token=str(r["token"]))
            for r in body["rooms"]
        )
        return cls(team=str(body["team"]), rooms=rooms)


#: a server is settled once it used less than this much CPU (s) ...
SETTLE_CPU = 0.01
#: ... over this window (s): under 4 % of a core
SETTLE_WINDOW = 0.25
#: and is measured anyway after this long (s)
SETTLE_TIMEOUT = 15.0


@dataclass(slots=True)
class Server:
    """A running server subprocess."""

    name: str
    host: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    jwt_secret: str = ""

    def rss_bytes(self) -> int:
        """Resident set size, from /proc/<pid>/status (VmRSS)."""
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise TargetError(f"{self.name}: no VmRSS for pid {self.process.pid}")

    def cpu_seconds(self) -> float:
        """User + system CPU time so far, from /proc/<pid>/stat."""
        with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        # fields[0] is field 3 (state); utime and stime are fields 14 and 15
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK

    def settle(self, timeout: float = SETTLE_TIMEOUT) -> bool:
        """Wait until the server is idle: less than SETTLE_CPU of CPU over a
        SETTLE_WINDOW, so that what it does once after start-up (the status
        scheduler's load of every pending meeting) is not counted in a figure
        measured next. False if it was still busy after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        before = self.cpu_seconds()
        while time.monotonic() < deadline:
            time.sleep(SETTLE_WINDOW)  # the window over which CPU is measured
            now = self.cpu_seconds()
            if now - before < SETTLE_CPU:
                return True
            before = now
        return False

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise TargetError(f"{self.name} exited ({self.process.returncode}): {log_tail(self)}")

    def mint_jwt(self, staff_id: str) -> str:
        """A staff JWT the hub accepts (HS256, ``sub`` and ``exp`` in an hour)."""
        claims = {"sub": staff_id, "exp": int(time.time()) + 3600}
        return jwt.encode(claims, self.jwt_secret, algorithm="HS256")


def log_tail(server: Server, lines: int = 20) -> str:
    try:
        text = server.log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    """A loopback port nobody listens on right now (the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def ready(port: int, host: str = HOST, path: str = "/readyz") -> bool:
    """Whether a server on ``port`` answers ``GET path`` with 200 (one short try)."""
    conn = http.client.HTTPConnection(host, port, timeout=1.0)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _wait_ready(server: Server, path: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        server.check_alive()
        if ready(server.port, path=path):
            return
        time.sleep(0.05)  # polling a subprocess we cannot be notified by
    raise TargetError(f"{server.name} not ready after {READY_TIMEOUT:.0f} s: {log_tail(server)}")


def _stop(server: Server) -> None:
    proc = server.process
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_GRACE)


@contextmanager
def running(
    name: str,
    argv: list[str],
    env: dict[str, str],
    workdir: Path,
    port: int,
    jwt_secret: str = "",
    ready_path: str = "/readyz",
) -> Iterator[Server]:
    """Start ``argv`` (a server listening on ``port``), wait for ``GET ready_path``,
    and stop it when the block ends; its output goes to ``workdir/NAME.log``."""
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
        )
    server = Server(name, HOST, port, proc, log_path, jwt_secret)
    try:
        _wait_ready(server, ready_path)
        yield server
    finally:
        _stop(server)


@contextmanager
def bare_relay(workdir: Path) -> Iterator[Server]:
    """The bare relay (``python -m loadtest.bare_relay``) on a free port."""
    port = free_port()
    argv = [sys.executable, "-m", "loadtest.bare_relay", "--host", HOST, "--port", str(port)]
    with running("bare", argv, dict(os.environ), workdir, port) as server:
        yield server


def hub_available() -> bool:
    """True once ``signalling.cli`` has the ``loadseed`` command the hub target needs."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "signalling.cli", "--help"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and b"loadseed" in done.stdout


def _store_flags(db: Path, redis_url: str) -> list[str]:
    return ["--redis", redis_url] if redis_url else ["--db", str(db)]


def seed(db: Path, rooms: int, env: dict[str, str], redis_url: str = "") -> Seed:
    """Run ``loadseed`` on ``db`` (or Redis): ``rooms`` rooms, each with a host and a guest link."""
    argv = [
        sys.executable,
        "-m",
        "signalling.cli",
        "loadseed",
        *_store_flags(db, redis_url),
        "--rooms",
        str(rooms),
    ]
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and module
            argv, capture_output=True, env=env, timeout=SEED_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise TargetError(f"loadseed of {rooms} rooms took over {SEED_TIMEOUT:.0f} s") from None
    if done.returncode != 0:
        raise TargetError(f"loadseed failed ({done.returncode}): {done.stderr[-2000:]!r}")
    result = Seed.from_json(done.stdout)
    if len(result.rooms) < rooms:
        raise TargetError(f"loadseed made {len(result.rooms)} rooms, {rooms} were asked for")
    return result


def hub_env(jwt_secret: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        VESTIBULE_JWT_SECRET=jwt_secret,
        # one data key for every node of a run (serve --no-demo needs one)
        VESTIBULE_DATA_KEY=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        # the limits protect a hub from one client; here one process plays many clients
        VESTIBULE_RATE="1000000",
        VESTIBULE_BURST="1000000",
        VESTIBULE_MEDIACHECK="0",
        VESTIBULE_LOG_LEVEL="warning",
    )
    return env


@contextmanager
def hub(
    workdir: Path,
    *,
    rooms: int,
    redis_url: str = "",
    env_overrides: Mapping[str, str] | None = None,
) -> Iterator[tuple[Server, Seed]]:
    """The hub (``signalling.cli serve``) on a fresh SQLite file seeded with ``rooms``.

    With ``redis_url`` the hub runs on that Redis instead (use a database of its own:
    the seed adds to whatever is there). ``env_overrides`` (VESTIBULE_* variables) win
    over :func:`hub_env`'s, e.g. ``{"VESTIBULE_MEDIACHECK": "1"}`` to run media checks.
    Yielded once ready and settled (:meth:`Server.settle`).
    """
    jwt_secret = secrets.token_urlsafe(32)
    env = hub_env(jwt_secret)
    env.update(env_overrides or {})
    db = workdir / "load.sqlite3"
    seeded = seed(db, rooms, env, redis_url)
    port = free_port()
    # --no-demo: the seeded file is not empty, but the harness never wants the demo data
    argv = [
        sys.executable,
        "-m",
        "signalling.cli",
        "serve",
        "--port",
        str(port),
        *_store_flags(db, redis_url),
        "--no-demo",
    ]
    with running("hub", argv, env, workdir, port, jwt_secret) as server:
        # ready is not idle: the seeded meetings' statuses are still being loaded
        server.settle()
        yield server, seeded
