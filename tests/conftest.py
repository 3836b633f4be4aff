"""Fixtures shared by every test layer.

``redis_server``: a private ``redis-server`` for the whole session, on a free
port in a temporary directory, never the machine's 127.0.0.1:6379. Tests that
share it keep apart by key prefix (RedisStore(url, prefix=...)).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

#: socket timeout of the readiness PING (redis answers in well under 1 ms)
_PING_TIMEOUT = 10.0


def _free_port() -> int:
    """A TCP port nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a throwaway Redis (no persistence) started for this session."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/bootstrap.sh installs it)")
    workdir: Path = tmp_path_factory.mktemp("redis")
    port = _free_port()
    process = subprocess.Popen(
        [
            binary,
            *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir)),
            *("--save", "", "--appendonly", "no"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    drain: threading.Thread | None = None
    try:
        # Wait for its own "ready" line rather than polling on a timer; if
        # the port was taken meanwhile, it exits and stdout ends.
        # (A hang here is caught by the per-test timeout.)
        assert process.stdout is not None
        seen: list[str] = []
        for line in process.stdout:
            seen.append(line)
            if "Ready to accept connections" in line:
                break
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url, socket_timeout=_PING_TIMEOUT)
        try:
            if not client.ping():
                pytest.fail("redis-server did not answer PING:\n" + "".join(seen))
        except redis.ConnectionError:
            pytest.fail("redis-server did not start:\n" + "".join(seen))
        finally:
            client.close()
        # Keep draining its log so a full pipe never blocks it.
        drain = threading.Thread(target=process.stdout.read, daemon=True)
        drain.start()
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if drain is not None:
            drain.join(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
