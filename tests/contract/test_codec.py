"""The shared record codec: exact times, old stored values, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from rooms.accounts import StaffAccount, StaffRole
from rooms.meeting import MeetingKind, MeetingType
from signalling.store import codec


def test_micros_are_exact_and_utc() -> None:
    at = datetime(2255, 6, 1, 23, 59, 59, 999999, tzinfo=UTC)
    assert codec.from_micros(codec.micros(at)) == at
    assert codec.micros(at) < 2**53  # exact as a Redis score / Lua number
    assert codec.from_micros(0).tzinfo is UTC


def test_plain_values_are_msgpack_and_json_round_trips() -> None:
    mt = MeetingType(
        "mt",
        "t",
        "Call",
        timedelta(minutes=5, microseconds=3),
        kinds=frozenset({MeetingKind.PHONE, MeetingKind.VIDEO}),
    )
    assert codec.to_plain(mt)["kinds"] == ["phone", "video"]  # sorted: stable bytes
    assert codec.unpack(MeetingType, codec.pack(mt)) == mt
    assert codec.from_row(MeetingType, codec.to_row(mt)) == mt


def test_a_value_stored_before_a_field_existed_takes_its_default() -> None:
    old = {
        "id": "s",
        "org_id": "o",
        "team_id": None,
        "role": "manager",
        "email": "e",
        "name": "n",
        "password_hash": "h",
    }
    staff = codec.from_plain(StaffAccount, old)
    assert staff.role is StaffRole.MANAGER and staff.groups == frozenset()


def test_json_able_data_only() -> None:
    data = {"a": MappingProxyType({"b": frozenset({2, 1})}), "t": (1, "x")}
    assert codec.unpack_value(codec.pack_value(data)) == {"a": {"b": [1, 2]}, "t": [1, "x"]}
    assert codec.load_json(codec.dump_json(data)) == {"a": {"b": [1, 2]}, "t": [1, "x"]}
    for dump in (codec.pack_value, codec.dump_json):
        with pytest.raises(TypeError):
            dump({"at": datetime.now(UTC)})  # the same refusal in both stores
    with pytest.raises(ValueError, match="naive"):
        codec.micros(datetime(2026, 1, 1))
