"""Server.settle: a benchmark measures the hub once its start-up work is done."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.targets import Server

#: busy for ``argv[1]`` seconds of CPU, then idle (blocked on its stdin) until stopped
_BUSY_THEN_IDLE = """
import sys, time
end = time.process_time() + float(sys.argv[1])
while time.process_time() < end:
    pass
sys.stdin.read()
"""


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[tuple[Server, float]]:
    busy = 0.6
    proc = subprocess.Popen(
        [sys.executable, "-c", _BUSY_THEN_IDLE, str(busy)],
        stdin=subprocess.PIPE,
    )
    try:
        yield Server("worker", "127.0.0.1", 0, proc, tmp_path / "worker.log"), busy
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdin is not None
        proc.stdin.close()


def test_settle_returns_once_the_start_up_work_is_done(worker: tuple[Server, float]) -> None:
    server, busy = worker
    assert server.settle(timeout=30.0) is True
    # settled means the busy part is over: its CPU is all spent
    assert server.cpu_seconds() >= busy - 0.05


def test_settle_gives_up_on_a_server_that_stays_busy(worker: tuple[Server, float]) -> None:
    server, busy = worker
    assert server.settle(timeout=busy / 3) is False
