"""The wire parser against arbitrary values: whatever JSON or msgpack value stands
in whatever field of whatever client message, ``parse`` returns a typed message
or raises BadMessage, never anything else (a TypeError here once killed the
connection and logged a traceback per frame)."""

from __future__ import annotations

from typing import Any

import msgpack
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms.errors import BadMessage
from signalling import protocol as p

#: every field name any client message reads
FIELDS = sorted(
    {
        "type",
        "ref",
        "token",
        "guest_key",
        "room",
        "jwt",
        "resume",
        "rejoin",
        "name",
        "to",
        "kind",
        "sdp",
        "candidate",
        "state",
        "peer",
        "participant",
        "member",
        "text",
        "scope",
        "since",
    }
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
msgpack_values = st.recursive(
    scalars | st.binary(max_size=16),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=12) | st.binary(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _messages(values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A message of a real type, with arbitrary values in arbitrary fields."""
    return st.builds(
        lambda kind, fields: {**fields, "type": kind} if kind is not None else fields,
        st.sampled_from(sorted(p.CLIENT_TYPES)) | st.none(),
        st.dictionaries(st.sampled_from(FIELDS), values, max_size=6),
    )


def _parse_or_bad(frame: bytes | str, *, binary: bool) -> None:
    try:
        message = p.parse(frame, binary=binary)
    except BadMessage as err:
        assert err.message
        return
    assert p.type_name(message) in p.CLIENT_TYPES


@settings(max_examples=600, deadline=None)
@given(_messages(json_values))
def test_any_json_value_in_any_field_is_a_message_or_bad_message(body: dict[str, Any]) -> None:
    _parse_or_bad(orjson.dumps(body), binary=False)


@settings(max_examples=600, deadline=None)
@given(_messages(msgpack_values))
def test_any_msgpack_value_in_any_field_is_a_message_or_bad_message(body: dict[str, Any]) -> None:
    _parse_or_bad(msgpack.packb(body, use_bin_type=True), binary=True)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_are_a_message_or_bad_message(frame: bytes) -> None:
    _parse_or_bad(frame, binary=True)
    _parse_or_bad(frame, binary=False)


def test_a_list_where_a_string_belongs_is_bad_message() -> None:
    frame = orjson.dumps({"type": "signal", "kind": ["offer"], "to": "x", "sdp": "s"})
    try:
        p.parse(frame)
    except BadMessage as err:
        assert err.message.startswith("kind")
    else:  # pragma: no cover - the assertion below explains
        raise AssertionError("a list kind was accepted")
