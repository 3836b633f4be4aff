"""Watching a run: a live table (rich) on a terminal, plain lines otherwise.

Once a second each load process reports, per scenario, the operations measured so far,
the unexpected errors by code and its p50/p99 so far, and its own CPU share. The
percentiles shown live are the worst of the processes' (exact merged figures come at
the end, in the result); in CI (no terminal) a line per scenario every few seconds.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

#: seconds between plain progress lines
PLAIN_EVERY = 5.0


def _merge(live: dict[int, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for report in live.values():
        for name, p in report["scenarios"].items():
            m = out.setdefault(name, {"ops": 0, "errors": Counter(), "p50_ms": 0.0, "p99_ms": 0.0})
            m["ops"] += p["ops"]
            m["errors"].update(p["errors"])
            m["p50_ms"] = max(m["p50_ms"], p["p50_ms"])
            m["p99_ms"] = max(m["p99_ms"], p["p99_ms"])
    return out


class Display:
    """``update(elapsed, live)`` from the runner's progress callback."""

    def __init__(self, duration: float, *, tty: bool | None = None, out: TextIO | None = None):
        self.out = out or sys.stderr
        self.tty = self.out.isatty() if tty is None else tty
        self.duration = duration
        self._live: Live | None = None
        self._last_line = 0.0

    def __enter__(self) -> Display:
        if self.tty:
            self._live = Live(Table(), console=Console(file=self.out), refresh_per_second=4)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def update(self, elapsed: float, live: dict[int, dict[str, Any]]) -> None:
        merged = _merge(live)
        if self._live is not None:
            self._live.update(self._table(elapsed, merged, live))
            return
        now = time.monotonic()
        if now - self._last_line < PLAIN_EVERY:
            return
        self._last_line = now
        for name, m in sorted(merged.items()):
            errors = ",".join(f"{k}={v}" for k, v in sorted(m["errors"].items())) or "none"
            rate = m["ops"] / elapsed if elapsed > 0 else 0.0
            print(
                f"loadtest {elapsed:5.1f}s {name}: {m['ops']} ops ({rate:.1f}/s) "
                f"p50<={m['p50_ms']:.2f}ms p99<={m['p99_ms']:.2f}ms errors {errors}",
                file=self.out,
                flush=True,
            )
        cpu = " ".join(f"{i}:{r['cpu_share']:.0%}" for i, r in sorted(live.items()))
        print(f"loadtest {elapsed:5.1f}s load process CPU {cpu}", file=self.out, flush=True)

    def _table(
        self, elapsed: float, merged: dict[str, dict[str, Any]], live: dict[int, dict[str, Any]]
    ) -> Table:
        table = Table(title=f"vestibule loadtest run: {elapsed:.0f} / {self.duration:g} s")
        for column in ("scenario", "ops", "rate/s", "p50 ms", "p99 ms", "unexpected errors"):
            table.add_column(column, justify="left" if column == "scenario" else "right")
        for name, m in sorted(merged.items()):
            errors = ", ".join(f"{k} {v}" for k, v in sorted(m["errors"].items())) or "0"
            rate = m["ops"] / elapsed if elapsed > 0 else 0.0
            table.add_row(
                name, str(m["ops"]), f"{rate:.1f}", f"{m['p50_ms']:.2f}", f"{m['p99_ms']:.2f}",
                errors,
            )  # fmt: skip
        cpu = "  ".join(f"#{i} {r['cpu_share']:.0%}" for i, r in sorted(live.items()))
        table.caption = f"load process CPU: {cpu}"
        return table
