"""The SQLite connection's own thread, and group commit on top of it, on a real
SQLite database (signalling/store/sqlite_thread.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from signalling.store.group_commit import GroupCommit
from signalling.store.sqlite_thread import SQLiteThread


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SQLiteThread]:
    thread = SQLiteThread(lambda: sqlite3.connect(tmp_path / "t.sqlite3", isolation_level=None))
    await thread.start()
    await thread.run(lambda c: c.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
    try:
        yield thread
    finally:
        await thread.close()


async def test_calls_run_in_order_on_one_thread_that_is_not_the_loops(db: SQLiteThread) -> None:
    seen: list[tuple[int, int | None]] = []

    def note(n: int) -> int:
        seen.append((n, threading.get_ident()))
        return n * 10

    got = await asyncio.gather(*(db.run(lambda _c, n=n: note(n)) for n in range(100)))
    assert got == [n * 10 for n in range(100)]
    assert [n for n, _ in seen] == list(range(100))
    assert len({ident for _, ident in seen}) == 1
    assert seen[0][1] != threading.get_ident()


async def test_an_error_reaches_its_caller_only(db: SQLiteThread) -> None:
    def insert(n: int) -> object:
        return db.run(lambda c: c.execute("INSERT INTO t VALUES (?)", (n,)).rowcount)

    results = await asyncio.gather(insert(1), insert(1), insert(2), return_exceptions=True)
    assert results[0] == 1 and results[2] == 1
    assert isinstance(results[1], sqlite3.IntegrityError)
    rows = await db.run(lambda c: c.execute("SELECT n FROM t ORDER BY n").fetchall())
    assert rows == [(1,), (2,)]


async def test_close_lets_queued_calls_finish_and_refuses_new_ones(tmp_path: Path) -> None:
    thread = SQLiteThread(lambda: sqlite3.connect(tmp_path / "c.sqlite3", isolation_level=None))
    await thread.start()
    await thread.run(lambda c: c.execute("CREATE TABLE t (n INTEGER)"))

    def insert(n: int) -> object:
        return thread.run(lambda c: c.execute("INSERT INTO t VALUES (?)", (n,)).rowcount)

    # gather starts its tasks in order: the twenty calls are queued before close's
    done = await asyncio.gather(*(insert(n) for n in range(20)), thread.close())
    assert done == [1] * 20 + [None]
    with pytest.raises(RuntimeError):
        await thread.run(lambda c: None)
    again = sqlite3.connect(tmp_path / "c.sqlite3")
    assert again.execute("SELECT COUNT(*) FROM t").fetchone() == (20,)
    again.close()


async def test_calls_made_while_a_batch_is_written_make_the_next_batch() -> None:
    batches: list[list[int]] = []
    writing, release = asyncio.Event(), asyncio.Event()

    async def write(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        if len(batches) == 1:
            writing.set()
            await release.wait()
        return [i * 2 for i in items]

    commit: GroupCommit[int, int] = GroupCommit(write)
    first = asyncio.ensure_future(commit(1))
    await writing.wait()  # the first batch is being written
    # the ten calls' tasks start before the writer resumes (the loop runs in order)
    rest = asyncio.gather(*(commit(i) for i in range(2, 12)))
    release.set()
    assert await first == 2
    assert await rest == [i * 2 for i in range(2, 12)]
    assert batches == [[1], list(range(2, 12))]


async def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_still_runs() -> None:
    calls = 0

    async def write(items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise sqlite3.OperationalError("database is locked")
        return list(items)

    commit: GroupCommit[int, int] = GroupCommit(write)
    failed = await asyncio.gather(commit(1), commit(2), return_exceptions=True)
    assert all(isinstance(f, sqlite3.OperationalError) for f in failed)
    assert await asyncio.gather(commit(3), commit(4)) == [3, 4]


async def test_group_commit_of_real_transactions_keeps_every_row(db: SQLiteThread) -> None:
    sizes: list[int] = []

    async def write(items: Sequence[int]) -> list[int]:
        sizes.append(len(items))

        def insert(c: sqlite3.Connection) -> list[int]:
            c.execute("BEGIN IMMEDIATE")
            c.executemany("INSERT INTO t VALUES (?)", [(i,) for i in items])
            c.execute("COMMIT")
            return list(items)

        return await db.run(insert)

    commit: GroupCommit[int, int] = GroupCommit(write)
    assert await asyncio.gather(*(commit(i) for i in range(500))) == list(range(500))
    rows = await db.run(lambda c: c.execute("SELECT COUNT(*) FROM t").fetchone())
    assert rows == (500,)
    assert sum(sizes) == 500 and len(sizes) < 500  # batched, not one transaction each
