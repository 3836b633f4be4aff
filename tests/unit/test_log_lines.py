"""The log configuration in a real process of its own: what used to escape as plain
text (uncaught exceptions, asyncio's "Task exception was never retrieved", a
thread's exception, an exception Python can only ignore, a warning, a stdlib
logger's traceback) comes out as one JSON object per line, scrubbed of
credentials, on both event loops the server may run on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mediacheck.logconfig import scrub

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60.0

SCRIPT = """
import asyncio, gc, logging, sys, threading, warnings
from signalling import logs

logs.configure("json", "info")
loop_name = sys.argv[1]
if loop_name == "uvloop":
    import uvloop
    uvloop.install()

async def fail():
    raise RuntimeError("task failed for /join/LINKTOKEN1")

async def main():
    task = asyncio.get_running_loop().create_task(fail())
    await asyncio.wait([task])
    del task
    gc.collect()  # the task is gone without anyone seeing its exception

asyncio.run(main())

thread = threading.Thread(target=lambda: 1 / 0, name="doomed")
thread.start()
thread.join()

class Leaky:
    def __del__(self):
        raise ValueError("ignored")

Leaky()
gc.collect()
warnings.warn("an old way")
try:
    {}["x"]
except KeyError:
    logging.getLogger("aiohttp.web").exception("Error handling request ?token=SECRET2")
raise SystemError("bye eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl")
"""


def _run(loop_name: str) -> tuple[int, list[dict[str, Any]], str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, loop_name],
        capture_output=True,
        cwd=ROOT,
        timeout=TIMEOUT,
        check=False,
    )
    text = done.stderr.decode()
    records = []
    for line in text.splitlines():
        record = json.loads(line)  # anything that is not JSON fails here
        assert isinstance(record, dict), line
        assert {"event", "level", "timestamp"} <= record.keys(), line
        records.append(record)
    return done.returncode, records, text


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_everything_on_stderr_is_json(loop_name: str) -> None:
    code, records, text = _run(loop_name)
    assert code == 1
    by_event = {r["event"].splitlines()[0]: r for r in records}

    task = by_event["Task exception was never retrieved"]
    assert task["logger"] == "asyncio" and task["level"] == "error"
    assert task["exception"][0]["exc_type"] == "RuntimeError"

    thread = by_event["uncaught exception in a thread"]
    assert thread["thread"] == "doomed"
    assert thread["exception"][0]["exc_type"] == "ZeroDivisionError"

    ignored = by_event["exception ignored"]
    assert ignored["exception"][0]["exc_type"] == "ValueError"

    warning = next(r for r in records if r.get("logger") == "py.warnings")
    assert "an old way" in warning["event"] and warning["level"] == "warning"

    handled = next(r for r in records if r.get("logger") == "aiohttp.web")
    assert handled["exception"][0]["exc_type"] == "KeyError"
    assert handled["exception"][0]["frames"]

    uncaught = by_event["uncaught exception"]
    assert uncaught["level"] == "critical"
    assert uncaught["exception"][0]["exc_type"] == "SystemError"

    for secret in ("LINKTOKEN1", "SECRET2", "eyJhbGciOiJIUzI1NiJ9"):
        assert secret not in text
    assert "/join/[redacted]" in text


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("GET /join/kq3Zs-_9 HTTP/1.1", "GET /join/[redacted] HTTP/1.1"),
        ("/join/kq3Zs?x=1#y", "/join/[redacted]?x=1#y"),
        ("GET /welcome/Wq3-x_9 HTTP/1.1", "GET /welcome/[redacted] HTTP/1.1"),
        ("path=/api/invitations/Wq3-x_9", "path=/api/invitations/[redacted]"),
        ("?token=abc&guest_key=7KQ4-MZ9P&page=2", "?token=[redacted]&guest_key=[redacted]&page=2"),
        ("password=hunter2 rejoin=j_1", "password=[redacted] rejoin=[redacted]"),
        ("monkey=1 keyboard=2", "monkey=1 keyboard=2"),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "Bearer [redacted]"),
        ("room dr-jones, meeting m_51", "room dr-jones, meeting m_51"),
    ],
)
def test_free_text_is_scrubbed_of_credentials(text: str, scrubbed: str) -> None:
    assert scrub(text) == scrubbed
