"""Credentials sealed at rest (signalling.sealing) and the data key at start-up."""

from __future__ import annotations

import base64
import dataclasses
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rooms.meeting import Guest, Meeting
from rooms.tokens import issue_credential
from signalling import cli
from signalling.sealing import (
    DataKeyError,
    Sealer,
    new_data_key,
    parse_data_key,
    resolve_data_key,
)

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def issued() -> object:
    meeting = Meeting(
        "m1", "t", "h", "r", None, Guest("Pat", "pat@example.org"),
        NOW - NOW, NOW, start=NOW,
    )  # fmt: skip
    return issue_credential(meeting, NOW, new_id=lambda: "c1")


def test_sealed_values_open_with_their_key_and_context_only() -> None:
    sealer = Sealer.from_setting(new_data_key())
    fresh = sealer.seal_issued(issued())  # type: ignore[arg-type]
    stored = fresh.credential
    assert stored.link_sealed and stored.key_sealed
    assert fresh.link_token not in stored.link_sealed
    shown = sealer.reveal(stored)
    assert shown is not None
    assert (shown.link_token, shown.guest_key) == (fresh.link_token, fresh.guest_key)
    # another key, or a sealed value moved to another field or row, does not open
    assert Sealer.from_setting(new_data_key()).reveal(stored) is None
    swapped = dataclasses.replace(stored, link_sealed=stored.key_sealed)
    assert sealer.reveal(swapped) is None
    assert sealer.reveal(dataclasses.replace(stored, id="c2")) is None
    assert sealer.reveal(dataclasses.replace(stored, key_sealed="v1.garbage")) is None
    assert sealer.reveal(dataclasses.replace(stored, link_sealed=None)) is None
    # every seal is fresh (a random nonce)
    assert sealer.seal("x", "c") != sealer.seal("x", "c")


def test_data_key_spellings() -> None:
    raw = bytes(range(32))
    for text in (
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ):
        assert parse_data_key(text) == raw
    for bad in ("", "not base64 !", base64.b64encode(b"short").decode()):
        with pytest.raises(DataKeyError):
            parse_data_key(bad)


def test_the_demo_keeps_its_key_next_to_its_database(tmp_path: Path) -> None:
    db = str(tmp_path / "demo.sqlite3")
    first = resolve_data_key("", demo=True, db_path=db)
    assert resolve_data_key("", demo=True, db_path=db) == first
    key_file = tmp_path / "demo.sqlite3.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    given = new_data_key()
    assert resolve_data_key(given, demo=False, db_path=db) == given


def test_serve_without_a_data_key_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("VESTIBULE_DATA_KEY", raising=False)
    db = str(tmp_path / "prod.sqlite3")
    assert cli.main(["serve", "--no-demo", "--db", db]) == 2
    assert "VESTIBULE_DATA_KEY is not set" in capsys.readouterr().err
    monkeypatch.setenv("VESTIBULE_DATA_KEY", "too-short")
    assert cli.main(["serve", "--no-demo", "--db", db]) == 2
    assert "vestibule: data_key" in capsys.readouterr().err
    assert not Path(db).exists()  # refused before anything was opened
