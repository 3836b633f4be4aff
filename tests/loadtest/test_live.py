"""The live display: a rich table on a terminal, plain lines otherwise."""

from __future__ import annotations

import io

from loadtest.live import Display

PROGRESS = {
    0: {"cpu_share": 0.25, "scenarios": {"relay": {"ops": 100, "errors": {"forbidden": 2},
        "p50_ms": 1.5, "p99_ms": 9.0, "unexpected": 2}}},
    1: {"cpu_share": 0.5, "scenarios": {"relay": {"ops": 50, "errors": {}, "p50_ms": 2.0,
        "p99_ms": 4.0, "unexpected": 0}}},
}  # fmt: skip


def test_plain_lines_merge_the_processes() -> None:
    out = io.StringIO()
    with Display(10, tty=False, out=out) as display:
        display.update(2.0, PROGRESS)
    text = out.getvalue()
    assert "relay: 150 ops (75.0/s) p50<=2.00ms p99<=9.00ms errors forbidden=2" in text
    assert "load process CPU 0:25% 1:50%" in text


def test_rich_table_on_a_terminal() -> None:
    out = io.StringIO()
    with Display(10, tty=True, out=out) as display:
        display.update(2.0, PROGRESS)
    text = out.getvalue()
    assert "relay" in text and "150" in text and "forbidden 2" in text
    assert "#1 50%" in text
