"""structlog configuration: JSON lines in production, readable console otherwise.

Log lines carry bound ids (connection, team, room, meeting) and never a token,
secret, guest name or email: callers bind ids only, and the redaction processor
below drops any field whose name says it holds a secret or personal data, as a
second line of defence.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

#: field names that must never reach a log line
_REDACT = frozenset(
    {
        "token",
        "guest_key",
        "key",
        "jwt",
        "secret",
        "password",
        "rejoin",
        "resume",
        "name",
        "email",
        "phone",
        "sdp",
        "cookie",
        "authorization",
        "credential",
    }
)


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for field in _REDACT.intersection(event):
        event[field] = "[redacted]"
    return event


def configure(log_format: str = "console", level: str = "info") -> None:
    """Configure structlog (and route aiohttp's stdlib loggers through it)."""
    lvl = logging.getLevelName(level.upper())
    if not isinstance(lvl, int):
        lvl = logging.INFO
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    # aiohttp's access log would print query strings (which may hold tokens): off.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
