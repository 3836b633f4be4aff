"""rooms/ is the sans-IO domain core: it must import no I/O, no event loop, no logging."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOMS = Path(__file__).resolve().parents[2] / "rooms"
FORBIDDEN = {
    "asyncio",
    "aiohttp",
    "aiortc",
    "redis",
    "sqlite3",
    "threading",
    "logging",
    "structlog",
    "socket",
    "signalling",
    "mediacheck",
    "time",
    "os",
    "subprocess",
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", sorted(ROOMS.glob("*.py")), ids=lambda p: p.name)
def test_domain_module_imports_no_io(path: Path) -> None:
    assert not imported_roots(path) & FORBIDDEN


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import asyncio\nfrom redis.asyncio import Redis\n")
    assert imported_roots(sample) & FORBIDDEN == {"asyncio", "redis"}
