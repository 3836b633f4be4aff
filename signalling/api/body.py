"""Reading request bodies and query strings: typed fields, checked at the edge.

A body that is not a JSON object, or a field of the wrong JSON type, is a
malformed request (400 ``bad_message``); a well-typed value that breaks a rule
(missing, out of range, a date without a time zone) is ``invalid`` (422), with
a message that names the field and never echoes the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
from aiohttp import web

from rooms.errors import BadMessage, Invalid, UnsupportedMediaType

Body = Mapping[str, Any]


def _is_json(content_type: str) -> bool:
    """``application/json`` or a ``+json`` type such as ``application/merge-patch+json``."""
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


async def read_json(request: web.Request, *, optional: bool = False) -> Body:
    """The request's JSON object; an empty body counts as ``{}`` when ``optional``.

    A body of any other media type is refused (415 ``unsupported_media_type``): a
    plain HTML form on another site can send ``text/plain`` or form data with the
    browser's cookies, but not ``application/json`` without the server's consent."""
    raw = await request.read()
    if not raw.strip():
        if optional:
            return {}
        raise BadMessage("a JSON object body is required")
    if not _is_json(request.content_type):
        raise UnsupportedMediaType()
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadMessage("the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise BadMessage("the body must be a JSON object")
    return value


def text(body: Body, name: str, *, required: bool = False, default: str = "") -> str:
    """A string field; missing is ``default`` (or Invalid when ``required``)."""
    value = body.get(name)
    if value is None:
        if required:
            raise Invalid(f"{name} is required")
        return default
    if not isinstance(value, str):
        raise BadMessage(f"{name} must be a string")
    return value


def optional_text(body: Body, name: str) -> str | None:
    """A string field that may be absent or null."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadMessage(f"{name} must be a string")
    return value


def integer(body: Body, name: str) -> int | None:
    """An integer field (JSON booleans are not integers here), or None if absent."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadMessage(f"{name} must be a whole number")
    return value


def boolean(body: Body, name: str, *, default: bool = False) -> bool:
    value = optional_boolean(body, name)
    return default if value is None else value


def optional_boolean(body: Body, name: str) -> bool | None:
    """A true/false field that may be absent or null."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise BadMessage(f"{name} must be true or false")
    return value


def string_list(body: Body, name: str) -> list[str]:
    """A list of strings; absent is the empty list."""
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadMessage(f"{name} must be a list of strings")
    return list(value)


def obj(body: Body, name: str) -> Body | None:
    """A nested JSON object, or None if absent."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadMessage(f"{name} must be an object")
    return value


def parse_instant(value: str, name: str) -> datetime:
    """An ISO 8601 date-time with its offset (``Z`` or ``+02:00``), as UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{name} must be an ISO 8601 date-time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise Invalid(f"{name} must include a time zone")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the end of the calendar
        raise Invalid(f"{name} is out of range") from None


def instant(body: Body, name: str, *, required: bool = False) -> datetime | None:
    """A date-time field (see :func:`parse_instant`), or None if absent."""
    value = optional_text(body, name)
    if value is None:
        if required:
            raise Invalid(f"{name} is required")
        return None
    return parse_instant(value, name)


def required_instant(body: Body, name: str) -> datetime:
    """A date-time field that must be present."""
    value = instant(body, name, required=True)
    if value is None:  # pragma: no cover - instant(required=True) raised already
        raise Invalid(f"{name} is required")
    return value


def instants(body: Body, name: str) -> list[datetime]:
    return [parse_instant(item, name) for item in string_list(body, name)]


def seconds(body: Body, name: str) -> timedelta | None:
    """A duration given in seconds, or None if absent."""
    value = integer(body, name)
    return None if value is None else timedelta(seconds=value)


def query_bound(request: web.Request, name: str, *, end: bool) -> datetime | None:
    """A ``from``/``to`` query bound: a date-time, or a date meaning that whole
    UTC day (``to=2030-01-31`` includes the 31st: the bound is the next midnight)."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) == 10:  # YYYY-MM-DD
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise Invalid(f"{name} must be an ISO 8601 date or date-time") from None
        midnight = datetime.combine(day, time(0), tzinfo=UTC)
        if not end:
            return midnight
        try:
            return midnight + timedelta(days=1)
        except OverflowError:  # to=9999-12-31: nothing lies after it anyway
            return datetime.max.replace(tzinfo=UTC)
    return parse_instant(raw, name)
