"""structlog configuration: JSON lines in production, readable console otherwise.

Log lines carry bound ids (connection, team, room, meeting) and never a token,
secret, guest name or email: callers bind ids only, and the redaction of
:mod:`mediacheck.logconfig` (shared with the media-check workers) blanks any
field whose name says it holds a secret or personal data and scrubs credentials
out of free text, as a second line of defence.

Everything the process writes to stderr goes through the same processors and
renderer: structlog's lines, every standard-library logger (aiohttp.*, asyncio,
aiortc, aioice) and tracebacks; with ``json``, one JSON object per line
(docs/operations.md, "Logs").
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

from mediacheck.logconfig import LogConfig, level_of
from mediacheck.logconfig import configure as configure_process


def _bad_request(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A request aiohttp could not parse (an over-long line, a bad header) is the
    client's doing, not a fault of ours: no traceback, and not the exception's text,
    which quotes the offending bytes (a cookie, a link token)."""
    exc_info = event.get("exc_info")
    exc = exc_info[1] if isinstance(exc_info, tuple) else exc_info
    if isinstance(exc, HttpProcessingError):
        del event["exc_info"]
        event["error"] = type(exc).__name__
        event["status"] = exc.code
    return event


def configure(log_format: str = "console", level: str = "info") -> None:
    """Configure this process's logging (structlog, the root logger, the hooks)."""
    fmt: Any = "json" if log_format == "json" else "console"
    configure_process(LogConfig(format=fmt, level=level_of(level)), extra=[_bad_request])
