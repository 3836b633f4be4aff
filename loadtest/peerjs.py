"""PeerJS server, the reference the benchmarks hold the hub to: installed and started.

PeerJS server (npm ``peer``, pinned to :data:`VERSION`) is a Node.js signalling relay
with no authentication, rooms or rules: a client connects to
``/peerjs?key=peerjs&id=ID&token=T``, gets ``{"type":"OPEN"}``, and every
``{"type":"CANDIDATE","dst":ID,"payload":...}`` it sends reaches ``ID`` with ``src``
added. It is installed on first use with npm into a cache directory outside the
repository (``$VESTIBULE_BENCH_CACHE``, default ``~/.cache/vestibule-bench``) and reused
from there. Without ``node`` and ``npm`` (Debian: ``apt-get install nodejs npm``), or
when npm cannot install it, :func:`install` says why and the benchmark runs without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from loadtest.targets import HOST, Server, free_port, running

VERSION = "1.0.2"
#: the connection key every client presents (PeerJS server's default)
KEY = "peerjs"
#: how long ``npm install`` may take (a cold cache downloads ~110 packages)
INSTALL_TIMEOUT = 300.0


def cache_dir() -> Path:
    """Where PeerJS server is installed (created on demand)."""
    root = os.environ.get("VESTIBULE_BENCH_CACHE") or str(Path.home() / ".cache/vestibule-bench")
    return Path(root) / f"peerjs-{VERSION}"


def entry_point(prefix: Path) -> Path:
    """The server's command-line script inside an install prefix."""
    return prefix / "node_modules" / "peer" / "dist" / "bin" / "peerjs.js"


@dataclass(frozen=True, slots=True)
class Install:
    """Where PeerJS server is, or why it is not available (``script`` is None then)."""

    script: Path | None
    node: str
    why_not: str = ""


def install(prefix: Path | None = None) -> Install:
    """PeerJS server installed under ``prefix`` (npm, once), or the reason it cannot be."""
    prefix = prefix or cache_dir()
    node = shutil.which("node")
    if node is None:
        return Install(None, "", "node is not installed (Debian: apt-get install nodejs npm)")
    script = entry_point(prefix)
    if script.exists():
        return Install(script, node)
    npm = shutil.which("npm")
    if npm is None:
        return Install(None, node, "npm is not installed (Debian: apt-get install npm)")
    prefix.mkdir(parents=True, exist_ok=True)
    argv = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", f"peer@{VERSION}"]
    try:
        done = subprocess.run(  # noqa: S603 - npm found on PATH, fixed arguments
            argv, capture_output=True, timeout=INSTALL_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Install(None, node, f"npm install peer@{VERSION} failed: {exc}")
    if done.returncode != 0 or not script.exists():
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        return Install(None, node, f"npm install peer@{VERSION} failed: {' / '.join(tail)}")
    return Install(script, node)


def argv(found: Install, port: int) -> list[str]:
    """The server's command line: loopback, and limits out of the benchmark's way (up to
    100,000 clients; a quiet client is dropped only after an hour, not a minute)."""
    assert found.script is not None
    return [
        found.node,
        str(found.script),
        "--host",
        HOST,
        "--port",
        str(port),
        "--key",
        KEY,
        "--concurrent_limit",
        "100000",
        "--alive_timeout",
        "3600000",
    ]


@contextmanager
def peerjs(workdir: Path, found: Install) -> Iterator[Server]:
    """PeerJS server on a free loopback port (ready once ``GET /`` answers 200)."""
    port = free_port()
    env = dict(os.environ)
    env["NODE_ENV"] = "production"
    with running("peerjs", argv(found, port), env, workdir, port, ready_path="/") as server:
        yield server


def path(peer_id: str) -> str:
    """The websocket path a PeerJS client with id ``peer_id`` connects to."""
    return f"/peerjs?key={KEY}&id={peer_id}&token=t{peer_id}"
