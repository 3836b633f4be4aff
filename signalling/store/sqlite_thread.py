"""One SQLite connection on a thread of its own, and group commit on top of it.

SQLite calls block, so they run off the event loop, on one thread that owns the
connection and runs what it is given in order. What it is given is a function
of the connection: a whole transaction (``BEGIN IMMEDIATE``, its statements,
``COMMIT``) is one call, one hop to the thread and one back, where a hop per
statement (aiosqlite's interface) cost a transaction of five statements five
hops, and needed a lock to keep another caller's statements out of it meanwhile
(docs/decisions.md, "SQLite runs whole transactions on its thread").

A hop is the expensive part of a short statement: measured here, about 120 us of
CPU for a hop taken alone against about 1 us for ``SELECT 1`` run in place. Two
things make it cheaper under load: results are handed back to the loop in bursts
(one wake-up for whatever finished while the loop was busy), and group commit
(signalling/store/group_commit.py) makes the calls that queue up while one batch
is written into the next batch, one transaction for all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["SQLiteThread"]

R = TypeVar("R")

#: results handed back to the loop in one wake-up at most (a burst longer than
#: this is handed back in parts, so the first callers do not wait for the last)
BURST = 32

#: a call waiting for the thread: the caller's loop, its future, the function
_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[Any], Any]]
#: finished calls: each future, whether it returned, and what it returned or raised
_Done = list[tuple["asyncio.Future[Any]", bool, Any]]


def _settle(done: _Done) -> None:
    """On the loop: each finished call's result or exception to its caller."""
    for future, ok, value in done:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            assert isinstance(value, BaseException)
            future.set_exception(value)


class SQLiteThread:
    """Runs functions of one ``sqlite3.Connection`` on the connection's own thread."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="sqlite", daemon=True)
        self._conn: sqlite3.Connection | None = None
        self._open = False

    async def start(self) -> None:
        """Start the thread and connect on it (the connection never leaves it)."""
        self._thread.start()
        self._open = True
        try:
            await self.run(self._connected)
        except BaseException:
            await self.close()
            raise

    def _connected(self, _: object) -> None:
        self._conn = self._connect()

    async def run(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        """``fn(connection)`` run on the thread, after every call made before it."""
        if not self._open:
            raise RuntimeError("the SQLite connection is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._jobs.put((loop, future, fn))
        return await future

    async def close(self) -> None:
        """Let every queued call finish, close the connection and end the thread."""
        if not self._open:
            return
        with contextlib.suppress(Exception):
            await self.run(self._disconnect)
        self._open = False
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)

    def _disconnect(self, _: sqlite3.Connection) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def _work(self) -> None:
        """The thread: run jobs in order; hand results back once the queue is
        empty (or every BURST), one wake-up of each loop for all of them."""
        done: dict[asyncio.AbstractEventLoop, _Done] = {}
        while True:
            try:
                job = self._jobs.get_nowait() if done else self._jobs.get()
            except queue.Empty:
                self._hand_back(done)
                continue
            if job is None:
                self._hand_back(done)
                return
            loop, future, fn = job
            try:
                value = fn(self._conn)
            except BaseException as exc:  # handed to the caller
                done.setdefault(loop, []).append((future, False, exc))
            else:
                done.setdefault(loop, []).append((future, True, value))
            if sum(len(v) for v in done.values()) >= BURST:
                self._hand_back(done)

    @staticmethod
    def _hand_back(done: dict[asyncio.AbstractEventLoop, _Done]) -> None:
        for loop, items in done.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, items)
        done.clear()
