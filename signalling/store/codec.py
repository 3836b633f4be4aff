"""One conversion between the rooms/ dataclasses and stored values, shared by both stores.

A record becomes a *plain* dict: one key per dataclass field, values made only
of str, int, float, bool, None, lists and dicts, so that msgpack (Redis) and
JSON (SQLite's structured columns) carry it unchanged. The rules, by field type:

- ``datetime`` -> int microseconds since the Unix epoch (UTC). Exact, sortable,
  compact, and usable as a Redis sorted-set score (< 2**53 until year 2255).
  Naive datetimes are refused; decoded values are always timezone-aware UTC.
- ``timedelta`` -> int microseconds.
- enums -> their value; ``frozenset`` -> sorted list; ``tuple[X, ...]`` -> list;
  a nested dataclass (a meeting's Guest) -> a nested plain dict;
  ``Mapping[str, Any]`` -> dict, which must itself be JSON-able.

The converters are derived from the dataclass type hints, so a field another
part of the project adds to a rooms/ model (with a default, as the project
requires) is stored by Redis without touching this file, and decoding fills a
field missing from an older stored value with its default.
SQLite needs a migration adding the column (tests/contract checks the schema
covers every field).
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

# msgpack ships no type information; the ignore stays valid if a mypy override appears.
import msgpack  # type: ignore[import-untyped, unused-ignore]
import orjson

__all__ = [
    "dump_json",
    "fields_of",
    "from_micros",
    "from_plain",
    "from_row",
    "load_json",
    "micros",
    "pack",
    "pack_value",
    "to_plain",
    "to_row",
    "unpack",
    "unpack_value",
]

T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def micros(at: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (ValueError if naive)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("naive datetime: Vestibule stores only timezone-aware times")
    return (at - _EPOCH) // _MICRO


def from_micros(value: int) -> datetime:
    """The aware UTC datetime ``value`` microseconds after the epoch."""
    return _EPOCH + timedelta(microseconds=int(value))


Converter = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class FieldCodec:
    """How one dataclass field is encoded and decoded."""

    name: str
    encode: Converter
    decode: Converter
    #: True when the plain value is a list or dict (a JSON column in SQLite)
    structured: bool


def _identity(value: Any) -> Any:
    return value


def _json_able(value: Any) -> Any:
    """Mappings and sets inside JSON-able data, made plain (dict / list)."""
    if isinstance(value, Mapping):
        return {str(k): _json_able(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_able(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(_json_able(v) for v in value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"not JSON-able: {type(value).__name__}")


def _converters(tp: Any) -> tuple[Converter, Converter, bool]:
    """(encode, decode, structured) for one annotated type."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"no codec for the union {tp!r}")
        enc, dec, structured = _converters(inner[0])
        return (
            lambda v: None if v is None else enc(v),
            lambda v: None if v is None else dec(v),
            structured,
        )
    if tp is datetime:
        return micros, from_micros, False
    if tp is timedelta:
        return (lambda v: v // _MICRO), (lambda v: timedelta(microseconds=int(v))), False
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return (lambda v: v.value), tp, False
    if tp is bool:
        return bool, bool, False
    if tp in (int, float, str):
        return _identity, tp, False
    if origin is frozenset:
        enc, dec, _ = _converters(args[0])
        return (
            lambda v: sorted(enc(x) for x in v),
            lambda v: frozenset(dec(x) for x in v),
            True,
        )
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        enc, dec, _ = _converters(args[0])
        return (lambda v: [enc(x) for x in v]), (lambda v: tuple(dec(x) for x in v)), True
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        nested = tp
        return (lambda v: to_plain(v)), (lambda v: from_plain(nested, v)), True
    if origin in (Mapping, dict) or tp in (Mapping, dict):
        return _json_able, dict, True
    raise TypeError(f"no codec for {tp!r}")


_PLANS: dict[type[Any], tuple[FieldCodec, ...]] = {}


def fields_of(cls: type[Any]) -> tuple[FieldCodec, ...]:
    """The field codecs of a rooms/ dataclass, in declaration order (computed once)."""
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        plan = tuple(
            FieldCodec(f.name, *_converters(hints[f.name])) for f in dataclasses.fields(cls)
        )
        _PLANS[cls] = plan
    return plan


def to_plain(record: Any) -> dict[str, Any]:
    """A record as a plain dict (see the module docstring)."""
    return {f.name: f.encode(getattr(record, f.name)) for f in fields_of(type(record))}


def from_plain(cls: type[T], data: Mapping[str, Any]) -> T:
    """The record of type ``cls`` from its plain dict; absent fields take their defaults."""
    kwargs = {f.name: f.decode(data[f.name]) for f in fields_of(cls) if f.name in data}
    return cls(**kwargs)


def to_row(record: Any) -> dict[str, Any]:
    """A record as SQLite column values: plain, with lists and dicts as JSON text."""
    row = {}
    for f in fields_of(type(record)):
        value = f.encode(getattr(record, f.name))
        row[f.name] = dump_json(value) if f.structured and value is not None else value
    return row


def from_row(cls: type[T], row: Mapping[str, Any]) -> T:
    """The record of type ``cls`` from a SQLite row (a mapping of column -> value)."""
    kwargs = {}
    for f in fields_of(cls):
        value = row[f.name]
        if f.structured and value is not None:
            value = load_json(value)
        kwargs[f.name] = f.decode(value)
    return cls(**kwargs)


# -- serialisation -----------------------------------------------------------


def dump_json(value: Any) -> str:
    """JSON text of plain or JSON-able data (orjson: 6-7x the stdlib, see docs/architecture.md)."""
    return orjson.dumps(
        value, default=_json_default, option=orjson.OPT_PASSTHROUGH_DATETIME
    ).decode()


def load_json(text: str | bytes) -> Any:
    return orjson.loads(text)


def _json_default(value: Any) -> Any:
    # orjson handles dicts and lists itself; this sees mappings that are not
    # dicts (MappingProxyType), sets, and anything not JSON-able (TypeError).
    if isinstance(value, datetime):
        raise TypeError("datetime is not JSON-able: store microseconds or ISO text")
    return _json_able(value)


def pack_value(value: Any) -> bytes:
    """msgpack bytes of plain or JSON-able data (same rules as :func:`dump_json`)."""
    packed: bytes = msgpack.packb(value, default=_json_default, datetime=False)
    return packed


def unpack_value(blob: bytes) -> Any:
    return msgpack.unpackb(blob, raw=False)


def pack(record: Any) -> bytes:
    """A record as msgpack bytes of its plain dict."""
    return pack_value(to_plain(record))


def unpack(cls: type[T], blob: bytes) -> T:
    return from_plain(cls, unpack_value(blob))
