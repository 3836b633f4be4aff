"""Load processes: a pool of spawned workers, each running its own event loop.

The load runs in processes separate from the server (and from the process that
orchestrates and measures it). Every worker keeps its connections in a
:class:`WorkerState` between calls, so a benchmark opens its pairs once and then runs
several phases on them. A call is a module-level coroutine function (picklable by
name) with its arguments; the pool sends one call to every worker, then collects every
answer, so phases start together (each call also carries an absolute start time on
CLOCK_MONOTONIC, which is system-wide).

Between calls a worker's loop does not run: the server's keep-alives (20 s) are far
longer than the pauses between phases, and unread bytes simply wait in the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any

from loadtest.bare_relay import loop_factory, raise_open_files_limit
from loadtest.wsclient import WsClient


@dataclass(slots=True)
class Pair:
    """Two connected clients that may signal each other (A is the host on the hub)."""

    a: WsClient
    a_id: str
    b: WsClient
    b_id: str
    #: the wire format of the target: ``signal`` (the hub and the bare relay) or
    #: ``peerjs`` (PeerJS server's ``CANDIDATE`` with ``dst`` and ``payload``)
    dialect: str = "signal"


@dataclass(slots=True)
class WorkerState:
    """What a worker holds between calls."""

    pairs: list[Pair] = field(default_factory=list)
    clients: list[WsClient] = field(default_factory=list)

    def close_all(self) -> None:
        for pair in self.pairs:
            pair.a.close()
            pair.b.close()
        for client in self.clients:
            client.close()
        self.pairs.clear()
        self.clients.clear()


Call = Callable[..., Awaitable[Any]]


class WorkerFailed(RuntimeError):
    """A worker raised or did not answer; carries its traceback."""


def _worker_main(conn: Connection) -> None:
    raise_open_files_limit()
    factory = loop_factory()
    loop = factory() if factory is not None else asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    state = WorkerState()
    try:
        while True:
            request = conn.recv()
            if request is None:
                break
            fn, args = request
            try:
                conn.send(("ok", loop.run_until_complete(fn(state, *args))))
            except Exception:  # everything goes back to the orchestrator
                conn.send(("error", traceback.format_exc()))
    finally:
        state.close_all()
        # one more turn lets transports write their close frames
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()


class WorkerPool:
    """``count`` spawned load processes; use as a context manager."""

    def __init__(self, count: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs: list[BaseProcess] = []
        for index in range(count):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker_main, args=(child,), name=f"load-{index}", daemon=True
            )
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)

    @property
    def size(self) -> int:
        return len(self._conns)

    def submit(self, fn: Call, args: Sequence[tuple[Any, ...]]) -> None:
        """Start ``fn(state, *args[i])`` in worker i, for every worker, without waiting."""
        if len(args) != len(self._conns):
            raise ValueError(f"{len(args)} argument tuples for {len(self._conns)} workers")
        for conn, arg in zip(self._conns, args, strict=True):
            conn.send((fn, arg))

    def collect(self, *, timeout: float) -> list[Any]:
        """The results of the submitted call, in worker order."""
        results = []
        for index, conn in enumerate(self._conns):
            if not conn.poll(timeout):
                raise WorkerFailed(f"worker {index}: no answer in {timeout:.0f} s")
            status, value = conn.recv()
            if status != "ok":
                raise WorkerFailed(f"worker {index} failed:\n{value}")
            results.append(value)
        return results

    def call(self, fn: Call, args: Sequence[tuple[Any, ...]], *, timeout: float) -> list[Any]:
        """Run ``fn(state, *args[i])`` in worker i (all at once); their results in order."""
        self.submit(fn, args)
        return self.collect(timeout=timeout)

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.send(None)
        for proc in self._procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self._conns:
            conn.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def split(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """``items`` dealt into ``parts`` lists of near-equal length (round robin)."""
    return [list(items[index::parts]) for index in range(parts)]
