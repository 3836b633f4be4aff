"""One log configuration for the server and its media-check worker processes.

``configure`` sets up structlog and the standard library's root logger with the
same processors and the same renderer, so that everything a process writes to
stderr comes out in one format: structlog's own lines, every stdlib logger
(aiohttp.*, asyncio, aiortc, aioice, ...) through one root handler and structlog's
``ProcessorFormatter``, and tracebacks (logged exceptions, uncaught exceptions in
the main thread or another thread, exceptions Python can only report as
"ignored"). In ``json`` mode each of these is one JSON object per line.

It lives here, on the media-check floor, because both the server (``signalling``)
and the worker processes (:mod:`mediacheck.worker`, started with only the
arguments the hub passes them) call it, and ``mediacheck`` never imports the
shell above it. The hub hands its workers :func:`current`.

Redaction, in every mode: a field whose name says it holds a secret or personal
data is blanked, and any string (the message, a field, an exception's text) is
scrubbed of a link token in a ``/join/`` path (and an invitation's in a
``/welcome/`` or ``/api/invitations/`` path), ``token=``-like query parameters
and anything shaped like a JWT.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import structlog
from structlog.tracebacks import ExceptionDictTransformer

LogFormat = Literal["console", "json"]

#: field names that must never reach a log line
REDACT = frozenset(
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
REDACTED = "[redacted]"

#: credentials that may hide inside free text (an exception's message, a URL)
_SCRUB = (
    # a link token in the patient page's path, or an invitation's in its page's
    # and its API's path
    (re.compile(r"(/(?:join|welcome|api/invitations)/)[^/?#\s'\"]+"), r"\1" + REDACTED),
    # a credential in a query string or a form body
    (
        re.compile(
            r"(\b(?:token|guest_key|key|jwt|secret|password|rejoin|resume|access_token)=)"
            r"[^&\s'\"#]+",
            re.IGNORECASE,
        ),
        r"\1" + REDACTED,
    ),
    # a JWT (its header is base64url JSON, so it starts "eyJ")
    (re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*)?"), REDACTED),
)


@dataclass(frozen=True)
class LogConfig:
    """What a process logs and how; picklable, so the hub can hand it to a worker."""

    format: LogFormat = "console"
    level: int = logging.INFO


_current = LogConfig()


def current() -> LogConfig:
    """The configuration this process was last configured with (the default before)."""
    return _current


def level_of(name: str) -> int:
    """A level name (``debug``, ``INFO``...) as a number; unknown names are INFO."""
    value = logging.getLevelName(name.upper())
    return value if isinstance(value, int) else logging.INFO


def scrub(text: str) -> str:
    """``text`` without the credentials that free text may carry."""
    for pattern, replacement in _SCRUB:
        text = pattern.sub(replacement, text)
    return text


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(v) for v in value]
    return value


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Blank every field whose name says it holds a secret or personal data."""
    for field in REDACT.intersection(event):
        event[field] = REDACTED
    return event


def scrub_strings(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Scrub every string of the line (run after the exception was rendered)."""
    for field, value in event.items():
        if not field.startswith("_"):
            event[field] = _scrub_value(value)
    return event


def configure(config: LogConfig, extra: Iterable[structlog.typing.Processor] = ()) -> None:
    """Configure structlog, the root logger and the exception hooks of this process.

    ``extra`` processors run on every line after the level, time and redaction and
    before the exception is rendered (the server uses one for aiohttp's records).
    """
    global _current
    _current = config
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
        *extra,
    ]
    tail: list[Any]
    if config.format == "json":
        # Locals off: a frame's variables may hold a token or a name.
        exceptions = structlog.processors.ExceptionRenderer(
            ExceptionDictTransformer(show_locals=False, use_rich=False)
        )
        tail = [exceptions, scrub_strings, structlog.processors.JSONRenderer()]
    else:
        tail = [
            structlog.processors.format_exc_info,
            scrub_strings,
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
        ]
    structlog.configure(
        processors=[*shared, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(config.level),
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(config.level)
    # aiohttp's access log would print paths and query strings (which may hold tokens).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    _install_hooks()


_hooks = structlog.get_logger("vestibule.uncaught")


def _excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    _hooks.critical("uncaught exception", exc_info=(kind, value, tb))


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    thread = args.thread.name if args.thread is not None else None
    if args.exc_value is None:
        _hooks.error("uncaught exception in a thread", thread=thread, error=args.exc_type.__name__)
        return
    exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
    _hooks.error("uncaught exception in a thread", thread=thread, exc_info=exc_info)


def _unraisablehook(unraisable: Any) -> None:
    # Not the object's repr: it may show anything the object holds.
    detail = unraisable.err_msg or "Exception ignored"
    if unraisable.exc_value is None:
        _hooks.error("exception ignored", detail=detail, error=unraisable.exc_type.__name__)
        return
    exc_info = (unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback)
    _hooks.error("exception ignored", detail=detail, exc_info=exc_info)


def _install_hooks() -> None:
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
    sys.unraisablehook = _unraisablehook
