"""``vestibule demo --log-format json`` as a real process: every stderr line is JSON.

The server is started through its CLI with one media-check worker process, and
provoked where lines used to escape as plain text: aiohttp's own loggers (an
over-long request line and header line, parsed before any handler runs), a
handler's unexpected exception (a 500 with its traceback), and a media check run
in the worker process. After a clean stop, every line the server and its worker
wrote to stderr must be one JSON object with ``event``, ``level`` and
``timestamp``, and none may hold a credential or a name.

Waiting is on the lines themselves (a reader thread per pipe), with a deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest

from mediacheck.synthetic import PatternVideoTrack, SyntheticClient, ToneAudioTrack

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
#: a cold server spawns its worker, which imports aiortc and PyAV: seconds at most
START_TIMEOUT = 60.0
WAIT = 30.0
STOP_GRACE = 15.0
PATIENT_NAME = "Zebulon Quartermain"

pytestmark = pytest.mark.slow


class Lines:
    """The lines of one pipe, read by a thread, awaited on the event loop."""

    def __init__(self, stream: IO[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self.lines: list[str] = []
        self._loop = loop
        self._changed = asyncio.Event()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self._loop.call_soon_threadsafe(self._add, line)

    def _add(self, line: str) -> None:
        self.lines.append(line)
        self._changed.set()

    async def until(self, done: Callable[[list[str]], bool], within: float = WAIT) -> None:
        """Wait until ``done(lines)`` holds."""
        async with asyncio.timeout(within):
            while True:
                self._changed.clear()
                if done(self.lines):
                    return
                await self._changed.wait()

    async def first(self, wanted: Callable[[str], bool], within: float = WAIT) -> str:
        """The first line ``wanted``, once there is one."""
        await self.until(lambda lines: any(wanted(line) for line in lines), within)
        return next(line for line in self.lines if wanted(line))

    def join(self, within: float) -> None:
        self._thread.join(within)
        assert not self._thread.is_alive(), "the pipe is still open"


def _record(line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _event(name: str, **fields: Any) -> Callable[[str], bool]:
    def wanted(line: str) -> bool:
        record = _record(line)
        return record.get("event") == name and all(record.get(k) == v for k, v in fields.items())

    return wanted


class Server:
    def __init__(self, process: subprocess.Popen[bytes], db: Path, info: dict[str, Any]) -> None:
        self.process = process
        self.db = db
        self.info = info
        self.port = int(info["url"].rsplit(":", 1)[1])


def _start(db: Path) -> subprocess.Popen[bytes]:
    """``vestibule demo`` with JSON logs and one media-check worker process."""
    argv = [
        sys.executable,
        *("-m", "signalling.cli", "demo", "--json", "--port", "0", "--db", str(db)),
        *("--log-format", "json", "--log-level", "info"),
    ]
    env = {**os.environ, "VESTIBULE_MEDIACHECK": "1", "VESTIBULE_MEDIACHECK_WORKERS": "1"}
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[Server, Lines]]:
    db = tmp_path / "logs.sqlite3"
    process = _start(db)
    assert process.stdout is not None and process.stderr is not None
    loop = asyncio.get_running_loop()
    stdout = Lines(process.stdout, loop)
    stderr = Lines(process.stderr, loop)
    try:
        try:
            first = await stdout.first(lambda line: True, within=START_TIMEOUT)
        except TimeoutError:
            pytest.fail("the server did not start:\n" + "\n".join(stderr.lines[-30:]))
        yield Server(process, db, json.loads(first)), stderr
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, STOP_GRACE)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait, STOP_GRACE)
        stdout.join(STOP_GRACE)
        stderr.join(STOP_GRACE)
        process.stdout.close()
        process.stderr.close()


def _raw_request(port: int, data: bytes) -> bytes:
    """Send raw bytes, return the status line of the answer."""
    with socket.create_connection((HOST, port), timeout=WAIT) as sock:
        sock.sendall(data)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


async def _media_check(server: Server, token: str) -> dict[str, Any]:
    """A guest says hello with the link token and runs a media check to its result."""
    client = SyntheticClient(video=PatternVideoTrack(), audio=ToneAudioTrack())
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"ws://{HOST}:{server.port}/ws") as ws,
    ):

        async def expect(kind: str, within: float) -> dict[str, Any]:
            async with asyncio.timeout(within):
                while True:
                    message: dict[str, Any] = await ws.receive_json()
                    if message["type"] == kind:
                        return message
                    assert message["type"] != "error", message

        try:
            await ws.send_json({"type": "hello", "token": token, "name": PATIENT_NAME})
            await expect("welcome", WAIT)
            await ws.send_json({"type": "mediacheck.offer", "sdp": await client.offer(), "ref": 1})
            answer = await expect("mediacheck.answer", 60)
            await client.accept(answer["sdp"])
            return await expect("mediacheck.result", WAIT)
        finally:
            await client.close()


async def test_every_line_is_one_json_object(server: tuple[Server, Lines]) -> None:
    node, stderr = server
    token = node.info["meetings"][0]["link"].rsplit("/", 1)[1]
    staff = node.info["staff"][0]

    # aiohttp.server: an over-long request line (carrying a link token) and header line
    long_url = b"/join/" + token.encode() + b"?" + b"a" * 10_000
    status = await asyncio.to_thread(
        _raw_request, node.port, b"GET " + long_url + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert status.split()[1] == b"400", status
    long_header = b"Cookie: vst_session=" + b"b" * 10_000
    status = await asyncio.to_thread(
        _raw_request, node.port, b"GET / HTTP/1.1\r\nHost: x\r\n" + long_header + b"\r\n\r\n"
    )
    assert status.split()[1] in (b"400", b"431"), status
    too_long = _event("Error handling request from 127.0.0.1", logger="aiohttp.server")
    await stderr.until(lambda lines: sum(map(too_long, lines)) == 2)
    for line in filter(too_long, stderr.lines):
        assert _record(line)["error"] == "LineTooLong"
        assert "exception" not in _record(line)  # the client's fault, not a traceback

    # a media check in the worker process (its line comes from that process)
    result = await _media_check(node, token)
    assert result["verdict"] in ("passed", "warning", "failed"), result
    done = _record(await stderr.first(_event("media check done"), within=WAIT))
    assert done["level"] == "info"

    # a handler's unexpected exception: a stored record the code cannot read
    with sqlite3.connect(node.db) as db:
        db.execute("UPDATE staff SET role = 'no-such-role' WHERE email = ?", (staff["email"],))
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://{HOST}:{node.port}/api/login",
            json={"email": staff["email"], "password": staff["password"]},
        ) as response,
    ):
        assert response.status == 500
    failed = _record(await stderr.first(_event("request not handled"), within=WAIT))
    assert failed["level"] == "error"
    (exception,) = [e for e in failed["exception"] if e["exc_type"] == "ValueError"]
    assert exception["frames"], failed

    node.process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(node.process.wait, STOP_GRACE) == 0
    await stderr.first(_event("shutting down"))
    stderr.join(STOP_GRACE)
    assert len(stderr.lines) > 10
    for line in stderr.lines:
        record = json.loads(line)  # raises on anything that is not JSON
        assert isinstance(record, dict), line
        assert {"event", "level", "timestamp"} <= record.keys(), line
    text = "\n".join(stderr.lines)
    for secret in (token, PATIENT_NAME, staff["email"], staff["password"]):
        assert secret not in text
