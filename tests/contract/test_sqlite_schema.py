"""SQLite only: the schema covers every record field; migrations are versioned
and transactional."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

import rooms.accounts
import rooms.credentials
import rooms.hours
import rooms.invitations
import rooms.meeting
import rooms.outbox
import rooms.room
from signalling.store import sqlite as sqlite_module
from signalling.store.sqlite import SQLiteStore
from signalling.store.sqlite_schema import LATEST_VERSION, MIGRATIONS, TABLES

MODULES = (
    rooms.accounts,
    rooms.credentials,
    rooms.hours,
    rooms.invitations,
    rooms.meeting,
    rooms.outbox,
    rooms.room,
)


def _columns(path: Path, table: str) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT version FROM schema_version").fetchone()[0])


async def _open_close(path: Path) -> None:
    store = SQLiteStore(str(path))
    await store.open()
    await store.close()


async def test_every_field_has_a_column(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    await _open_close(path)
    for class_name, table in TABLES.items():
        cls = next(getattr(m, class_name) for m in MODULES if hasattr(m, class_name))
        fields = {f.name for f in dataclasses.fields(cls)}
        missing = fields - _columns(path, table)
        assert not missing, f"{class_name} fields without a column in {table}: {missing}"


async def test_open_sets_wal_and_version_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    await _open_close(path)
    await _open_close(path)  # a second open migrates nothing (v1 would fail to re-create)
    assert _version(path) == LATEST_VERSION
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    await _open_close(path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(RuntimeError, match="newer"):
        await _open_close(path)


async def test_a_failing_migration_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.sqlite3"
    await _open_close(path)
    broken = (*MIGRATIONS, ("CREATE TABLE half_done (a INTEGER)", "NOT VALID SQL"))
    monkeypatch.setattr(sqlite_module, "MIGRATIONS", broken)
    monkeypatch.setattr(sqlite_module, "LATEST_VERSION", len(broken))
    with pytest.raises(sqlite3.OperationalError):
        await _open_close(path)
    assert _version(path) == LATEST_VERSION
    assert _columns(path, "half_done") == set()


async def test_in_memory_store_works() -> None:
    store = SQLiteStore(":memory:")
    await store.open()
    try:
        entry = await store.append_log("t", datetime.now(UTC), "presence", "entered", None, {})
        assert entry.seq == 1
        assert await store.log_bounds("t") == (1, 1)
    finally:
        await store.close()


async def test_v3_keeps_the_credentials_of_a_v2_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database made before sealing: its credentials still redeem, and read as
    having no sealed values; the outbox tables exist afterwards."""
    from tests.contract.records import sha

    path = tmp_path / "s.sqlite3"
    monkeypatch.setattr(sqlite_module, "MIGRATIONS", MIGRATIONS[:2])
    monkeypatch.setattr(sqlite_module, "LATEST_VERSION", 2)
    await _open_close(path)
    assert _version(path) == 2
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute(
            "INSERT INTO credentials (id, meeting_id, team_id, room_id, link_digest,"
            " key_digest, not_before, not_after) VALUES ('c1', 'm1', 't', 'r', ?, ?, 0, ?)",
            (sha("link"), sha("key"), 2**52),
        )
    monkeypatch.undo()
    store = SQLiteStore(str(path))
    await store.open()
    try:
        assert _version(path) == LATEST_VERSION
        credential = await store.redeem_link(sha("link"), sha("device"), datetime.now(UTC))
        assert credential is not None
        assert (credential.link_sealed, credential.key_sealed) == (None, None)
        assert await store.list_messages("m1") == []
    finally:
        await store.close()
    assert {"id", "trigger", "state", "claimed_until"} <= _columns(path, "outbox")
