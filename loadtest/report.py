"""docs/benchmarks.md: one section per benchmark, replaced in place between markers.

Each benchmark owns the text between ``<!-- loadtest:NAME:begin -->`` and
``<!-- loadtest:NAME:end -->``; writing a section replaces only that text (or
appends the section when the file does not have it yet), so benchmarks written by
different subcommands, on different days, live side by side in one file.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

INTRO = """\
# Benchmarks

Measured with the project's own harness (`loadtest/`), on loopback, on the
development machines (shared 2-core VMs). Absolute figures on such machines are
noisy, so each figure is also given as a ratio to a baseline measured in the same
invocation: the bare relay (`loadtest/bare_relay.py`), a websocket relay on the same
stack as the hub (aiohttp, orjson, uvloop, `send_frame`) with no authentication and
no rules. The targets each figure is held to are listed under \"Targets\" below.

Method:

- the server under test runs in its own process, started by the harness on a free
  loopback port; the load runs in separate processes (multiprocessing, spawn) with a
  small raw-websocket client, so the harness costs less CPU than the server it loads;
- every run is bounded in count and time and stops by itself;
- a hub started on a seeded store is measured once it is ready and idle (not the
  clusters' nodes, docs/loadtest.md): the harness waits until it uses
  less than 4 % of a core over a quarter of a second (15 s at most), since at
  start-up the status scheduler loads every seeded meeting, work that belongs to
  no figure;
- latency is measured from the sender's `time.monotonic_ns()` carried in the
  message (CLOCK_MONOTONIC is system-wide on Linux) to its arrival at the addressee.

Reproduce any section with the command it shows (from the repository root, after
`scripts/bootstrap.sh --test`); `make bench` runs them all.
"""


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- loadtest:{name}:begin -->", f"<!-- loadtest:{name}:end -->"


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with section ``name`` set to ``body`` (appended when absent)."""
    begin, end = _markers(name)
    block = f"{begin}\n{body.strip()}\n{end}"
    start = text.find(begin)
    if start < 0:
        return text.rstrip("\n") + "\n\n" + block + "\n"
    stop = text.find(end, start)
    if stop < 0:
        raise ValueError(f"section {name!r} has a begin marker but no end marker")
    return text[:start] + block + text[stop + len(end) :]


def write_section(path: str | Path, name: str, body: str) -> None:
    """Replace section ``name`` of the markdown file at ``path`` (created with an intro)."""
    target = Path(path)
    text = target.read_text(encoding="utf-8") if target.exists() else INTRO
    updated = replace_section(text, name, body)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(updated, encoding="utf-8")
    os.replace(tmp, target)


def machine() -> str:
    """One line describing where a figure was measured."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def provenance(argv: list[str] | None) -> str:
    """The date, the machine and the command that produced a section."""
    args = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "-m", "loadtest", *args])
    today = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    # the machines are shared: the load average says how much else was running
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"Measured {today} on {machine()}; load average at the end {load}.\nCommand: `{command}`"


def fmt(value: float, digits: int = 2) -> str:
    """A figure for a table: thousands separators, "n/a" for NaN."""
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")
