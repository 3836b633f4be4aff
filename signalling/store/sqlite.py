"""SQLiteStore: the embedded default store, one durable database file.

The connection lives on a thread of its own (signalling/store/sqlite_thread.py) so
SQLite never blocks the event loop, in autocommit mode: a write that is one
statement (most of them) is atomic on its own, and a multi-statement write is one
function run on that thread as ``BEGIN IMMEDIATE ... COMMIT`` (IMMEDIATE takes the
write lock up front, so two processes on one file queue on ``busy_timeout``
instead of failing on a read-to-write upgrade). Either way a call is one hop to
the thread, and since the thread runs calls one at a time, in order, no other
caller's statement can land inside a transaction. Redemptions of link tokens (a
guest's join) are group-committed: those asked for while a batch is written go
in the next batch, one transaction.

Pragmas, and why:

- ``journal_mode=WAL``: readers never block the writer, and commits append to
  the log instead of rewriting pages.
- ``synchronous=NORMAL``: with WAL, a commit is written to the WAL file (the OS
  page cache) before COMMIT returns, so it survives the process being killed;
  only an OS crash or power loss may lose the last transactions (the WAL is
  synced at checkpoints). FULL would fsync on every commit: measured here,
  ~200 us per commit against ~24 us with NORMAL, on every presence event and
  redemption (the joins/s figure, docs/benchmarks.md, "Targets"), to guard against power
  loss that a telehealth session does not outlive anyway.
  tests/contract/test_sqlite_durability.py kills a writer with SIGKILL and
  checks that every commit it reported is there.
- ``foreign_keys=ON``: a record naming a missing parent is refused (NotFound).
- ``busy_timeout``: how long a writer waits for another process's write lock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from rooms.accounts import ApiKey, AuditEntry, Group, Organisation, StaffAccount, Team
from rooms.credentials import Credential
from rooms.errors import Busy, Conflict, NotFound
from rooms.hours import WorkingHours
from rooms.invitations import Invitation
from rooms.meeting import Meeting, MeetingType
from rooms.outbox import MessageState, OutboxMessage, TeamMessaging, Trigger
from rooms.presence import LogEntry
from rooms.room import Room
from rooms.validate import email_key
from signalling.store import codec
from signalling.store.base import Entry, LogAppend
from signalling.store.group_commit import GroupCommit
from signalling.store.sqlite_thread import SQLiteThread

if TYPE_CHECKING:
    from signalling.store.base import Store
from signalling.store.sqlite_schema import LATEST_VERSION, MIGRATIONS, TABLES

__all__ = ["SQLiteStore"]

R = TypeVar("R")

#: RETURNING needs SQLite 3.35 (2021-03); redemption is one UPDATE ... RETURNING.
_MIN_SQLITE = (3, 35, 0)


def _table(cls: type[Any]) -> str:
    return TABLES[cls.__name__]


def _as_dict(row: sqlite3.Row) -> dict[str, Any]:
    return {key: row[key] for key in row.keys()}  # noqa: SIM118 (Row is not a dict)


def _to_log_entry(row: sqlite3.Row) -> LogEntry:
    return LogEntry(
        seq=row["seq"],
        team_id=row["team_id"],
        at=codec.from_micros(row["at"]),
        topic=row["topic"],
        kind=row["kind"],
        meeting_id=row["meeting_id"],
        data=codec.load_json(row["data"]),
    )


def _check_batch(meetings: Sequence[Meeting], credentials: Sequence[Credential]) -> None:
    ids = {m.id for m in meetings}
    if any(c.meeting_id not in ids for c in credentials):
        raise ValueError("add_meetings: every credential must belong to a meeting of the call")


def _insert(conn: sqlite3.Connection, record: Any, extra: Mapping[str, Any] | None = None) -> None:
    row = codec.to_row(record) | dict(extra or {})
    columns = ", ".join(row)
    marks = ", ".join("?" * len(row))
    sql = f"INSERT INTO {_table(type(record))} ({columns}) VALUES ({marks})"  # noqa: S608
    conn.execute(sql, tuple(row.values()))


def _in_transaction(fn: Callable[[sqlite3.Connection], R], conn: sqlite3.Connection) -> R:
    """On the connection's thread: ``fn`` between BEGIN IMMEDIATE and COMMIT,
    rolled back if it (or the COMMIT) fails."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        with suppress(sqlite3.OperationalError):  # no transaction was active
            conn.execute("ROLLBACK")
        raise
    return result


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
    rows = conn.execute("SELECT version FROM schema_version").fetchall()
    if not rows:
        conn.execute("INSERT INTO schema_version VALUES (0)")
    version = rows[0][0] if rows else 0
    if version > LATEST_VERSION:
        raise RuntimeError(
            f"database schema v{version} is newer than this Vestibule (v{LATEST_VERSION})"
        )
    for migration in MIGRATIONS[version:]:
        for statement in migration:
            conn.execute(statement)
    conn.execute("UPDATE schema_version SET version = ?", (LATEST_VERSION,))


def _entry_statement(conn: sqlite3.Connection) -> str:
    """The redemption of ``SQLiteStore._redeem`` returning, besides the credential,
    its meeting and room as JSON objects of every column (RETURNING may hold
    subqueries; no column of either table is a BLOB, so JSON keeps every value's
    type)."""

    def as_json(table: str, alias: str) -> str:
        cols = [row[1] for row in conn.execute(f"PRAGMA table_info({table})").fetchall()]
        return "json_object(" + ", ".join(f"'{c}', {alias}.{c}" for c in cols) + ")"

    meeting = as_json(_table(Meeting), "m")
    room = as_json(_table(Room), "r")
    return (
        "UPDATE credentials SET redeemed_at = ?1, device_digest = ?2"  # noqa: S608
        " WHERE link_digest = ?3 AND redeemed_at IS NULL AND revoked_at IS NULL"
        " AND not_before <= ?1 AND not_after > ?1 RETURNING *,"
        f" (SELECT {meeting} FROM {_table(Meeting)} m"
        " WHERE m.id = credentials.meeting_id) AS entry_meeting,"
        f" (SELECT {room} FROM {_table(Meeting)} m JOIN {_table(Room)} r ON r.id = m.room_id"
        " WHERE m.id = credentials.meeting_id) AS entry_room"
    )


class SQLiteStore:
    """The Store interface (signalling.store.base) on one SQLite file.

    ``path`` may be ":memory:" for throwaway use (no WAL, not shared).
    """

    def __init__(self, path: str, *, busy_timeout_ms: int = 5000) -> None:
        self._path = path
        # 5 s: our write transactions take milliseconds; waiting longer than
        # this means something is wrong, and the caller gets Busy.
        self._busy_timeout_ms = busy_timeout_ms
        self._db: SQLiteThread | None = None
        #: redeem_link_entry's statement (it names every column: made once opened)
        self._entry_sql = ""
        #: link redemptions, group-committed (one transaction per batch)
        self._redemptions: GroupCommit[tuple[int, str, str], sqlite3.Row | None] = GroupCommit(
            self._redeem_batch
        )

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        """Connect, set the pragmas and apply pending migrations in one transaction."""
        if sqlite3.sqlite_version_info < _MIN_SQLITE:
            raise RuntimeError(f"SQLite >= 3.35 needed, found {sqlite3.sqlite_version}")
        db = SQLiteThread(self._connect)
        self._db = db
        try:
            await db.start()
            self._entry_sql = await db.run(self._prepare)
        except BaseException:
            await self.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        """On the connection's thread: the connection, in autocommit mode."""
        conn = sqlite3.connect(self._path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> str:
        """On the connection's thread: pragmas, migrations; redemption's statement."""
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchall()
        if self._path != ":memory:" and mode[0][0] != "wal":
            raise RuntimeError("SQLite refused WAL journal mode")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        _in_transaction(_migrate, conn)
        return _entry_statement(conn)

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    # -- plumbing ----------------------------------------------------------------

    def _connection(self) -> SQLiteThread:
        if self._db is None:
            raise RuntimeError("SQLiteStore is not open")
        return self._db

    async def _write(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        """``fn`` as one write transaction on the connection's thread (one hop);
        errors become domain errors, and nothing of a failed ``fn`` is kept."""
        db = self._connection()
        async with _translated():
            return await db.run(partial(_in_transaction, fn))

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run one statement (autocommit: atomic on its own) and return its rows."""
        db = self._connection()
        async with _translated():
            return await db.run(lambda conn: conn.execute(sql, params).fetchall())

    async def _get(self, cls: type[R], record_id: str) -> R:
        rows = await self._fetch(f"SELECT * FROM {_table(cls)} WHERE id = ?", (record_id,))  # noqa: S608
        if not rows:
            raise NotFound(f"no {cls.__name__} {record_id}")
        return codec.from_row(cls, _as_dict(rows[0]))

    async def _select(self, cls: type[R], where: str, params: Sequence[Any], order: str) -> list[R]:
        sql = f"SELECT * FROM {_table(cls)} WHERE {where} ORDER BY {order}"  # noqa: S608
        return [codec.from_row(cls, _as_dict(row)) for row in await self._fetch(sql, params)]

    async def _add(self, record: Any, extra: Mapping[str, Any] | None = None) -> None:
        # One statement in autocommit mode is its own transaction: one thread
        # hop instead of three (BEGIN, INSERT, COMMIT).
        row = codec.to_row(record) | dict(extra or {})
        columns = ", ".join(row)
        marks = ", ".join("?" * len(row))
        sql = f"INSERT INTO {_table(type(record))} ({columns}) VALUES ({marks})"  # noqa: S608
        await self._fetch(sql, tuple(row.values()))

    async def _update(self, record: Any, extra: Mapping[str, Any] | None = None) -> None:
        row = codec.to_row(record) | dict(extra or {})
        record_id = row.pop("id")
        assignments = ", ".join(f"{column} = ?" for column in row)
        table = _table(type(record))
        sql = f"UPDATE {table} SET {assignments} WHERE id = ? RETURNING id"  # noqa: S608
        if not await self._fetch(sql, (*row.values(), record_id)):
            raise NotFound(f"no {type(record).__name__} {record_id}")

    # -- organisations, teams, staff, groups ---------------------------------

    async def add_organisation(self, org: Organisation) -> None:
        await self._add(org)

    async def get_organisation(self, org_id: str) -> Organisation:
        return await self._get(Organisation, org_id)

    async def add_team(self, team: Team) -> None:
        await self._add(team)

    async def get_team(self, team_id: str) -> Team:
        return await self._get(Team, team_id)

    async def update_team(self, team: Team) -> None:
        await self._update(team)

    async def list_teams(self, org_id: str) -> list[Team]:
        return await self._select(Team, "org_id = ?", (org_id,), "name, id")

    async def list_team_ids(self) -> list[str]:
        rows = await self._fetch("SELECT id FROM teams ORDER BY id")
        return [str(row[0]) for row in rows]

    async def add_staff(self, account: StaffAccount) -> None:
        await self._add(account, {"email_norm": email_key(account.email)})

    async def get_staff(self, staff_id: str) -> StaffAccount:
        return await self._get(StaffAccount, staff_id)

    async def update_staff(self, account: StaffAccount) -> None:
        await self._update(account, {"email_norm": email_key(account.email)})

    async def find_staff_by_email(self, email: str) -> StaffAccount | None:
        found = await self._select(StaffAccount, "email_norm = ?", (email_key(email),), "id")
        return found[0] if found else None

    async def list_staff(self, team_id: str) -> list[StaffAccount]:
        return await self._select(StaffAccount, "team_id = ?", (team_id,), "name, id")

    async def add_group(self, group: Group) -> None:
        await self._add(group)

    async def update_group(self, group: Group) -> None:
        await self._update(group)

    async def list_groups(self, team_id: str) -> list[Group]:
        return await self._select(Group, "team_id = ?", (team_id,), "name, id")

    # -- rooms and meeting types ---------------------------------------------

    async def add_room(self, room: Room) -> None:
        await self._add(room)

    async def get_room(self, room_id: str) -> Room:
        return await self._get(Room, room_id)

    async def find_room_by_slug(self, slug: str) -> Room | None:
        found = await self._select(Room, "slug = ?", (slug,), "id")
        return found[0] if found else None

    async def update_room(self, room: Room) -> None:
        await self._update(room)

    async def list_rooms(self, team_id: str) -> list[Room]:
        return await self._select(Room, "team_id = ?", (team_id,), "name, id")

    async def add_meeting_type(self, meeting_type: MeetingType) -> None:
        await self._add(meeting_type)

    async def get_meeting_type(self, type_id: str) -> MeetingType:
        return await self._get(MeetingType, type_id)

    async def update_meeting_type(self, meeting_type: MeetingType) -> None:
        await self._update(meeting_type)

    async def list_meeting_types(self, team_id: str) -> list[MeetingType]:
        return await self._select(MeetingType, "team_id = ?", (team_id,), "label, id")

    async def delete_meeting_type(self, type_id: str) -> bool:
        # One statement, under the write lock: the NOT EXISTS check and the
        # delete cannot be split by a meeting booked in between (which, coming
        # after, fails its foreign key: NotFound).
        rows = await self._fetch(
            "DELETE FROM meeting_types WHERE id = ?"
            " AND NOT EXISTS (SELECT 1 FROM meetings WHERE type_id = ?) RETURNING id",
            (type_id, type_id),
        )
        if rows:
            return True
        await self._get(MeetingType, type_id)  # NotFound if it never existed
        return False

    # -- online booking ----------------------------------------------------------

    async def get_working_hours(self, staff_id: str) -> WorkingHours | None:
        found = await self._select(WorkingHours, "staff_id = ?", (staff_id,), "staff_id")
        return found[0] if found else None

    async def put_working_hours(self, hours: WorkingHours) -> None:
        row = codec.to_row(hours)
        columns = ", ".join(row)
        marks = ", ".join("?" * len(row))
        updates = ", ".join(f"{c} = excluded.{c}" for c in row if c != "staff_id")
        await self._fetch(
            f"INSERT INTO working_hours ({columns}) VALUES ({marks})"  # noqa: S608
            f" ON CONFLICT (staff_id) DO UPDATE SET {updates}",
            tuple(row.values()),
        )

    async def book_if_free(self, meeting: Meeting, credential: Credential) -> bool:
        """See Store.book_if_free: the overlap check and the inserts share one
        BEGIN IMMEDIATE transaction, which holds the database's write lock."""
        if meeting.start is None or meeting.end is None:
            raise ValueError("book_if_free: the meeting needs a start")
        _check_batch([meeting], [credential])
        start, end = codec.micros(meeting.start), codec.micros(meeting.end)

        def book(conn: sqlite3.Connection) -> bool:
            clash = conn.execute(
                "SELECT 1 FROM meetings WHERE host_id = ? AND start IS NOT NULL"
                " AND cancelled_at IS NULL AND start < ? AND start + duration > ? LIMIT 1",
                (meeting.host_id, end, start),
            ).fetchall()
            if clash:
                return False
            _insert(conn, meeting)
            _insert(conn, credential)
            return True

        return await self._write(book)

    async def knows_guest(self, team_id: str, email: str) -> bool:
        rows = await self._fetch(
            "SELECT 1 FROM meetings WHERE team_id = ? AND booked_online = 0"
            " AND lower(trim(json_extract(guest, '$.email'))) = ? LIMIT 1",
            (team_id, email_key(email)),
        )
        return bool(rows)

    # -- meetings and credentials ----------------------------------------------

    async def add_meetings(
        self, meetings: Sequence[Meeting], credentials: Sequence[Credential]
    ) -> None:
        """All meetings and credentials, or none. Each credential must belong to
        a meeting of the same call (ValueError); a second live credential for one
        meeting, or a reused id or digest, is a Conflict."""
        _check_batch(meetings, credentials)

        def add(conn: sqlite3.Connection) -> None:
            for meeting in meetings:
                _insert(conn, meeting)
            for credential in credentials:
                _insert(conn, credential)

        await self._write(add)

    async def get_meeting(self, meeting_id: str) -> Meeting:
        return await self._get(Meeting, meeting_id)

    async def update_meeting(self, meeting: Meeting) -> None:
        await self._update(meeting)

    async def list_meetings(
        self,
        team_id: str,
        *,
        host_ids: Collection[str] | None = None,
        start_from: datetime | None = None,
        start_to: datetime | None = None,
    ) -> list[Meeting]:
        """See Store.list_meetings; meetings in planning (no start) come last, by id."""
        where = ["team_id = ?"]
        params: list[Any] = [team_id]
        if host_ids is not None:
            where.append(f"host_id IN ({', '.join('?' * len(host_ids))})")
            params.extend(host_ids)
        if start_from is not None:
            where.append("start >= ?")
            params.append(codec.micros(start_from))
        if start_to is not None:
            where.append("start < ?")
            params.append(codec.micros(start_to))
        return await self._select(Meeting, " AND ".join(where), params, "start IS NULL, start, id")

    async def replace_credential(
        self, meeting_id: str, new: Credential | None, now: datetime
    ) -> None:
        if new is not None and new.meeting_id != meeting_id:
            raise ValueError("replace_credential: the new credential is for another meeting")

        def replace(conn: sqlite3.Connection) -> None:
            if not conn.execute("SELECT 1 FROM meetings WHERE id = ?", (meeting_id,)).fetchall():
                raise NotFound(f"no Meeting {meeting_id}")
            conn.execute(
                "UPDATE credentials SET revoked_at = ? WHERE meeting_id = ? AND revoked_at IS NULL",
                (codec.micros(now), meeting_id),
            )
            if new is not None:
                _insert(conn, new)

        await self._write(replace)

    async def store_chosen_slot(
        self, meeting: Meeting, credential: Credential, now: datetime
    ) -> bool:
        if credential.meeting_id != meeting.id:
            raise ValueError("store_chosen_slot: the credential is for another meeting")
        row = codec.to_row(meeting)
        record_id = row.pop("id")
        assignments = ", ".join(f"{column} = ?" for column in row)
        sql = (
            f"UPDATE meetings SET {assignments} WHERE id = ?"  # noqa: S608
            " AND start IS NULL AND cancelled_at IS NULL RETURNING id"
        )

        def choose(conn: sqlite3.Connection) -> bool:
            if not conn.execute(sql, (*row.values(), record_id)).fetchall():
                if not conn.execute("SELECT 1 FROM meetings WHERE id = ?", (record_id,)).fetchall():
                    raise NotFound(f"no Meeting {record_id}")
                return False
            conn.execute(
                "UPDATE credentials SET revoked_at = ? WHERE meeting_id = ? AND revoked_at IS NULL",
                (codec.micros(now), record_id),
            )
            _insert(conn, credential)
            return True

        return await self._write(choose)

    async def store_review(self, meeting: Meeting) -> Meeting | None:
        # One UPDATE under the database write lock: of concurrent writers in
        # any process, only the first still finds review_rating NULL.
        rows = await self._fetch(
            "UPDATE meetings SET review = ?, review_rating = ?"
            " WHERE id = ? AND review_rating IS NULL RETURNING *",
            (meeting.review, meeting.review_rating, meeting.id),
        )
        if rows:
            return codec.from_row(Meeting, _as_dict(rows[0]))
        await self._get(Meeting, meeting.id)  # NotFound if there is no such meeting
        return None

    async def find_link(self, link_digest: str) -> Credential | None:
        found = await self._select(Credential, "link_digest = ?", (link_digest,), "id")
        return found[0] if found else None

    async def get_credential_for_meeting(self, meeting_id: str) -> Credential | None:
        found = await self._select(
            Credential, "meeting_id = ? AND revoked_at IS NULL", (meeting_id,), "id"
        )
        return found[0] if found else None

    async def live_credentials(self, meeting_ids: Collection[str]) -> dict[str, Credential]:
        ids = list(dict.fromkeys(meeting_ids))
        found: dict[str, Credential] = {}
        for at in range(0, len(ids), 500):  # SQLite's limit on bound parameters
            chunk = ids[at : at + 500]
            marks = ", ".join("?" * len(chunk))
            for credential in await self._select(
                Credential, f"meeting_id IN ({marks}) AND revoked_at IS NULL", chunk, "id"
            ):
                found[credential.meeting_id] = credential
        return found

    async def _redeem(
        self, column: str, digest: str, device_digest: str, now: datetime
    ) -> Credential | None:
        # One conditional UPDATE: SQLite runs it under the database write lock,
        # so of any number of concurrent callers (any process) exactly one
        # matches `redeemed_at IS NULL`; the rule is rooms.tokens.redeemable's.
        at = codec.micros(now)
        rows = await self._fetch(
            "UPDATE credentials SET redeemed_at = ?, device_digest = ?"  # noqa: S608
            f" WHERE {column} = ? AND redeemed_at IS NULL AND revoked_at IS NULL"
            " AND not_before <= ? AND not_after > ? RETURNING *",
            (at, device_digest, digest, at, at),
        )
        return codec.from_row(Credential, _as_dict(rows[0])) if rows else None

    async def redeem_link(
        self, link_digest: str, device_digest: str, now: datetime
    ) -> Credential | None:
        return await self._redeem("link_digest", link_digest, device_digest, now)

    async def redeem_key(
        self, key_digest: str, device_digest: str, now: datetime
    ) -> Credential | None:
        return await self._redeem("key_digest", key_digest, device_digest, now)

    async def redeem_link_entry(
        self, link_digest: str, device_digest: str, now: datetime
    ) -> Entry | None:
        # The UPDATE of _redeem (same rule, same atomicity) with the meeting and
        # room read in its RETURNING clause, group-committed with the other
        # redemptions asked for meanwhile: one transaction, one thread hop.
        found = await self._redemptions((codec.micros(now), device_digest, link_digest))
        if found is None:
            return None
        row = _as_dict(found)
        meeting = codec.load_json(row.pop("entry_meeting"))
        room = codec.load_json(row.pop("entry_room"))
        return Entry(
            codec.from_row(Credential, row),
            codec.from_row(Meeting, dict(meeting)),
            codec.from_row(Room, dict(room)),
        )

    async def _redeem_batch(
        self, batch: Sequence[tuple[int, str, str]]
    ) -> list[sqlite3.Row | None]:
        """Each redemption's row (None: not redeemed), all in one transaction. Each
        UPDATE sees the ones before it, so a link asked for twice in one batch is
        redeemed once, as when the two ran one after the other."""
        sql = self._entry_sql

        def redeem(conn: sqlite3.Connection) -> list[sqlite3.Row | None]:
            if len(batch) == 1:  # one statement is a transaction of its own
                return [next(iter(conn.execute(sql, batch[0]).fetchall()), None)]
            return _in_transaction(
                lambda c: [next(iter(c.execute(sql, p).fetchall()), None) for p in batch], conn
            )

        db = self._connection()
        async with _translated():
            return await db.run(redeem)

    async def find_by_device(self, device_digest: str, now: datetime) -> Credential | None:
        found = await self._select(
            Credential,
            "device_digest = ? AND redeemed_at IS NOT NULL AND revoked_at IS NULL"
            " AND not_after > ?",
            (device_digest, codec.micros(now)),
            "id",
        )
        return found[0] if found else None

    async def get_meeting_facts(self, meeting_id: str) -> Mapping[str, Any] | None:
        rows = await self._fetch(
            "SELECT facts FROM meeting_facts WHERE meeting_id = ?", (meeting_id,)
        )
        return dict(codec.load_json(rows[0]["facts"])) if rows else None

    async def put_meeting_facts(self, meeting_id: str, facts: Mapping[str, Any]) -> None:
        """Replace the meeting's facts (NotFound if there is no such meeting)."""
        await self._fetch(
            "INSERT INTO meeting_facts (meeting_id, facts) VALUES (?, ?)"
            " ON CONFLICT (meeting_id) DO UPDATE SET facts = excluded.facts",
            (meeting_id, codec.dump_json(facts)),
        )

    # -- the outbox ----------------------------------------------------------------

    async def add_messages(self, messages: Sequence[OutboxMessage]) -> None:
        if not messages:
            return

        def add(conn: sqlite3.Connection) -> None:
            for message in messages:
                _insert(conn, message)

        await self._write(add)

    async def list_messages(self, meeting_id: str) -> list[OutboxMessage]:
        return await self._select(OutboxMessage, "meeting_id = ?", (meeting_id,), "due_at, id")

    async def claim_messages(
        self, now: datetime, claimer: str, until: datetime, limit: int
    ) -> list[OutboxMessage]:
        # One UPDATE under the database write lock: of concurrent claimers in
        # any process, exactly one matches a message's unclaimed row.
        at = codec.micros(now)
        rows = await self._fetch(
            "UPDATE outbox SET claimed_by = ?, claimed_until = ?, attempts = attempts + 1"
            " WHERE id IN (SELECT id FROM outbox WHERE state = 'scheduled' AND due_at <= ?"
            " AND (claimed_until IS NULL OR claimed_until <= ?) ORDER BY due_at, id LIMIT ?)"
            " RETURNING *",
            (claimer, codec.micros(until), at, at, limit),
        )
        claimed = [codec.from_row(OutboxMessage, _as_dict(row)) for row in rows]
        return sorted(claimed, key=lambda m: (m.due_at, m.id))

    async def settle_message(self, message: OutboxMessage, claimer: str) -> bool:
        rows = await self._fetch(
            "UPDATE outbox SET state = ?, due_at = ?, last_error = ?, sent_at = ?,"
            " claimed_by = NULL, claimed_until = NULL"
            " WHERE id = ? AND claimed_by = ? RETURNING id",
            (
                str(message.state),
                codec.micros(message.due_at),
                message.last_error,
                None if message.sent_at is None else codec.micros(message.sent_at),
                message.id,
                claimer,
            ),
        )
        return bool(rows)

    async def cancel_messages(
        self, meeting_id: str, now: datetime, triggers: Collection[Trigger] | None = None
    ) -> int:
        where = (
            "meeting_id = ? AND state = 'scheduled'"
            " AND (claimed_until IS NULL OR claimed_until <= ?)"
        )
        params: list[Any] = [str(MessageState.CANCELLED), meeting_id, codec.micros(now)]
        if triggers is not None:
            names = sorted(str(t) for t in triggers)
            where += f" AND trigger IN ({', '.join('?' * len(names))})"
            params.extend(names)
        rows = await self._fetch(
            f"UPDATE outbox SET state = ?, claimed_by = NULL, claimed_until = NULL"  # noqa: S608
            f" WHERE {where} RETURNING id",
            params,
        )
        return len(rows)

    async def next_message_due(self) -> datetime | None:
        rows = await self._fetch(
            "SELECT MIN(MAX(due_at, COALESCE(claimed_until, 0))) FROM outbox"
            " WHERE state = 'scheduled'"
        )
        value = rows[0][0]
        return None if value is None else codec.from_micros(value)

    async def get_messaging(self, team_id: str) -> TeamMessaging | None:
        found = await self._select(TeamMessaging, "team_id = ?", (team_id,), "team_id")
        return found[0] if found else None

    async def put_messaging(self, messaging: TeamMessaging) -> None:
        row = codec.to_row(messaging)
        await self._fetch(
            "INSERT INTO team_messaging (team_id, reminder_offsets, templates) VALUES (?, ?, ?)"
            " ON CONFLICT (team_id) DO UPDATE SET reminder_offsets = excluded.reminder_offsets,"
            " templates = excluded.templates",
            (row["team_id"], row["reminder_offsets"], row["templates"]),
        )

    # -- invitations of new members ----------------------------------------------

    async def add_invitation(self, invitation: Invitation) -> None:
        await self._add(invitation)

    async def get_invitation(self, invitation_id: str) -> Invitation:
        return await self._get(Invitation, invitation_id)

    async def find_invitation(self, digest: str) -> Invitation | None:
        found = await self._select(Invitation, "digest = ?", (digest,), "id")
        return found[0] if found else None

    async def consume_invitation(self, digest: str, now: datetime) -> Invitation | None:
        # One UPDATE under the database write lock: exactly one caller matches.
        at = codec.micros(now)
        rows = await self._fetch(
            "UPDATE invitations SET used_at = ? WHERE digest = ? AND used_at IS NULL"
            " AND created_at <= ? AND expires_at > ? RETURNING *",
            (at, digest, at, at),
        )
        return codec.from_row(Invitation, _as_dict(rows[0])) if rows else None

    # -- API keys and audit --------------------------------------------------

    async def add_api_key(self, key: ApiKey) -> None:
        await self._add(key)

    async def find_api_key(self, digest: str) -> ApiKey | None:
        found = await self._select(ApiKey, "digest = ?", (digest,), "id")
        return found[0] if found else None

    async def append_audit(self, entry: AuditEntry) -> None:
        await self._add(entry)

    # -- ended staff sessions ------------------------------------------------

    async def revoke_session(self, session_id: str, until: datetime, now: datetime) -> None:
        await self._fetch("DELETE FROM revoked_sessions WHERE until <= ?", (codec.micros(now),))
        if until <= now:  # nothing can present an expired cookie: no record needed
            return
        await self._fetch(
            "INSERT INTO revoked_sessions (id, until) VALUES (?, ?)"
            " ON CONFLICT (id) DO UPDATE SET until = max(until, excluded.until)",
            (session_id, codec.micros(until)),
        )

    async def session_revoked(self, session_id: str) -> bool:
        rows = await self._fetch("SELECT 1 FROM revoked_sessions WHERE id = ?", (session_id,))
        return bool(rows)

    async def list_audit(self, org_id: str, *, team_id: str | None = None) -> list[AuditEntry]:
        """Entries of the organisation (optionally of one team), by time then id."""
        if team_id is None:
            return await self._select(AuditEntry, "org_id = ?", (org_id,), "at, id")
        return await self._select(
            AuditEntry, "org_id = ? AND team_id = ?", (org_id, team_id), "at, id"
        )

    # -- the per-team ordered log ----------------------------------------------

    async def append_log(
        self,
        team_id: str,
        at: datetime,
        topic: str,
        kind: str,
        meeting_id: str | None,
        data: Mapping[str, Any],
    ) -> LogEntry:
        payload = codec.dump_json(data)
        # One statement, so one thread hop (the hot path: every presence event).
        # It takes the write lock before reading the counter, so concurrent
        # appenders in any process queue; the log_counters_follow trigger moves
        # the counter in the same statement.
        rows = await self._fetch(
            "INSERT INTO log (team_id, seq, at, topic, kind, meeting_id, data) VALUES (?1,"
            " COALESCE((SELECT last_seq FROM log_counters WHERE team_id = ?1), 0) + 1,"
            " ?2, ?3, ?4, ?5, ?6) RETURNING seq",
            (team_id, codec.micros(at), topic, kind, meeting_id, payload),
        )
        seq = int(rows[0][0])
        return LogEntry(seq, team_id, at, topic, kind, meeting_id, codec.load_json(payload))

    async def write_presence(
        self, appends: Sequence[LogAppend], facts: Mapping[str, Mapping[str, Any]]
    ) -> list[LogEntry]:
        # One thread hop whatever the batch holds: the counters are read inside
        # the write transaction (BEGIN IMMEDIATE holds the write lock, so no other
        # appender, in this process or another, numbers meanwhile) and every row
        # goes in with one executemany; the log_counters_follow trigger keeps the
        # counters in step row by row.
        if not appends and not facts:
            return []
        teams = sorted({a[0] for a in appends})
        payloads = [codec.dump_json(a[5]) for a in appends]
        facts_rows = [(mid, codec.dump_json(f)) for mid, f in facts.items()]

        def write(conn: sqlite3.Connection) -> list[int]:
            last: dict[str, int] = {}
            if teams:
                marks = ", ".join("?" * len(teams))
                found = conn.execute(
                    f"SELECT team_id, last_seq FROM log_counters WHERE team_id IN ({marks})",  # noqa: S608
                    teams,
                ).fetchall()
                last = {row[0]: int(row[1]) for row in found}
            seqs: list[int] = []
            rows: list[tuple[Any, ...]] = []
            for (team_id, at, topic, kind, meeting_id, _), payload in zip(
                appends, payloads, strict=True
            ):
                seq = last.get(team_id, 0) + 1
                last[team_id] = seq
                seqs.append(seq)
                rows.append((team_id, seq, codec.micros(at), topic, kind, meeting_id, payload))
            if rows:
                conn.executemany(
                    "INSERT INTO log (team_id, seq, at, topic, kind, meeting_id, data)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            if facts_rows:
                conn.executemany(
                    "INSERT INTO meeting_facts (meeting_id, facts)"
                    " SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM meetings WHERE id = ?1)"
                    " ON CONFLICT (meeting_id) DO UPDATE SET facts = excluded.facts",
                    facts_rows,
                )
            return seqs

        seqs = await self._write(write)
        return [
            LogEntry(seq, team_id, at, topic, kind, meeting_id, codec.load_json(payload))
            for seq, (team_id, at, topic, kind, meeting_id, _), payload in zip(
                seqs, appends, payloads, strict=True
            )
        ]

    async def get_meeting_facts_many(
        self, meeting_ids: Collection[str]
    ) -> dict[str, Mapping[str, Any]]:
        ids = list(meeting_ids)
        found: dict[str, Mapping[str, Any]] = {}
        for start in range(0, len(ids), 500):  # SQLite's bound on parameters
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = await self._fetch(
                f"SELECT meeting_id, facts FROM meeting_facts WHERE meeting_id IN ({marks})",  # noqa: S608
                chunk,
            )
            found.update({row[0]: dict(codec.load_json(row[1])) for row in rows})
        return found

    async def log_since(self, team_id: str, after_seq: int, limit: int = 1000) -> list[LogEntry]:
        rows = await self._fetch(
            "SELECT * FROM log WHERE team_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (team_id, after_seq, limit),
        )
        return [_to_log_entry(row) for row in rows]

    async def log_bounds(self, team_id: str) -> tuple[int, int]:
        """(lowest retained, highest seq); (0, 0) if nothing was ever appended;
        (highest + 1, highest) when every entry has been trimmed."""
        rows = await self._fetch(
            "SELECT (SELECT last_seq FROM log_counters WHERE team_id = ?1),"
            " (SELECT MIN(seq) FROM log WHERE team_id = ?1)",
            (team_id,),
        )
        highest, lowest = rows[0][0], rows[0][1]
        if highest is None:
            return (0, 0)
        return (int(lowest) if lowest is not None else int(highest) + 1, int(highest))

    async def log_for_meeting(self, team_id: str, meeting_id: str) -> list[LogEntry]:
        rows = await self._fetch(
            "SELECT * FROM log WHERE team_id = ? AND meeting_id = ? ORDER BY seq",
            (team_id, meeting_id),
        )
        return [_to_log_entry(row) for row in rows]

    async def trim_log(self, team_id: str, keep_last: int) -> int:
        if keep_last < 0:
            raise ValueError("keep_last must be >= 0")

        def trim(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "DELETE FROM log WHERE team_id = ?1 AND seq <= (SELECT seq FROM log"
                " WHERE team_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
                (team_id, keep_last),
            )
            return int(cursor.rowcount)

        return await self._write(trim)


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    """SQLite errors as the domain errors of the Store contract."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        name = getattr(exc, "sqlite_errorname", "")
        if name == "SQLITE_CONSTRAINT_FOREIGNKEY":
            raise NotFound("refers to a record that does not exist") from exc
        if name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
            raise Conflict("already exists") from exc
        raise
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED"):
            raise Busy("the database is busy") from exc
        raise


if TYPE_CHECKING:  # mypy holds the class to the interface it implements

    def _implements(store: SQLiteStore) -> Store:
        return store
