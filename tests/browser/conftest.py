"""Fixtures for the browser tests: the demo server as a subprocess and real Chromium.

Each test module gets its own demo server (a fresh SQLite file, so single-use links
are unused) and one headless Chromium with a fake camera and microphone (a moving
pattern and a beep), which the server's media check accepts as real media.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

CHROMIUM = "/usr/bin/chromium"
#: where the browser tests save their screenshots; VESTIBULE_SHOTS=docs/screenshots
#: refreshes the ones the README shows
SHOTS = Path(os.environ.get("VESTIBULE_SHOTS", "/tmp/vestibule-shots"))
REPO = Path(__file__).resolve().parents[2]
#: the demo server seeds its database and starts workers; on these 2-core machines that
#: takes 2-5 s, so 30 s only trips when it is really stuck
STARTUP_TIMEOUT = 30.0

CHROMIUM_ARGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _read_summary(proc: subprocess.Popen[bytes], deadline: float) -> dict[str, Any]:
    """The first stdout line (the JSON summary), waiting on the pipe, never sleeping."""
    assert proc.stdout is not None
    buffer = b""
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the demo server printed no summary in time")
        ready, _, _ = select.select([proc.stdout], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            raise RuntimeError(f"the demo server exited with {proc.wait()}")
        buffer += chunk
    line, _, _ = buffer.partition(b"\n")
    summary: dict[str, Any] = json.loads(line)
    return summary


@contextlib.contextmanager
def serve_demo(
    tmp: Path, *flags: str, env: dict[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """`python -m signalling.cli demo --json` on a free port, with extra
    command-line ``flags`` and ``env`` added to the environment (VESTIBULE_*
    settings), its database and log in ``tmp``; yields its summary."""
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "signalling.cli",
            "demo",
            "--json",
            "--port",
            str(_free_port()),
            "--db",
            str(tmp / "demo.sqlite3"),
            *flags,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=log,
        env={**os.environ, **(env or {})},
    )
    drain: threading.Thread | None = None
    try:
        summary = _read_summary(proc, time.monotonic() + STARTUP_TIMEOUT)
        # Keep draining stdout so a chatty server never blocks on a full pipe.
        assert proc.stdout is not None
        stdout = proc.stdout
        drain = threading.Thread(target=stdout.read, daemon=True)
        drain.start()
        summary["log"] = str(tmp / "server.log")
        yield summary
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if drain is not None:
            drain.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
        log.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo server of a test module (see serve_demo)."""
    with serve_demo(tmp_path_factory.mktemp("demo")) as summary:
        yield summary


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: run scripts/bootstrap.sh --test")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


class Console:
    """What the pages printed, shown when a test fails (the first place to look)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def watch(self, page: Page, label: str) -> Page:
        page.on("console", lambda m: self.lines.append(f"[{label}] {m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.lines.append(f"[{label}] pageerror: {e}"))
        return page


@pytest.fixture
def console(request: pytest.FixtureRequest) -> Iterator[Console]:
    seen = Console()
    yield seen
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print("\n".join(seen.lines[-80:]))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


class Devices:
    """Fresh browser profiles (own cookies and storage), one per person's device."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.opened: list[BrowserContext] = []

    def new(self, width: int = 1200, height: int = 800) -> BrowserContext:
        context = self.browser.new_context(
            base_url=self.base_url, viewport={"width": width, "height": height}
        )
        # Page-state waits: generous for a loaded 2-core machine, still far below the
        # per-test timeout so a stuck step names itself.
        context.set_default_timeout(15_000)
        self.opened.append(context)
        return context


@pytest.fixture
def devices(browser: Browser, demo: dict[str, Any]) -> Iterator[Devices]:
    """Open contexts on demand; every one is closed when the test ends."""
    made = Devices(browser, demo["url"])
    yield made
    for context in made.opened:
        context.close()
