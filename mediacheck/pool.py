"""Worker processes as seen from the hub: spawn, talk, watch, stop.

A :class:`WorkerProcess` is one spawned worker (:mod:`mediacheck.worker`) plus the
hub's end of its channel. Its lifecycle::

    STARTING --"ready" received--> READY --stop()--> STOPPING --exit--> DEAD
        |                            |
        +-------- exit / kill -------+------------------------------> DEAD

The owner (:class:`mediacheck.service.MediaCheckService`) gets every message through
``on_message`` and a single ``on_exit`` call once the channel ends, whatever the cause
(crash, SIGKILL, stop); replacing a dead worker is the owner's decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import multiprocessing
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

import structlog

from mediacheck import logconfig
from mediacheck.channel import ChannelClosed, Message, encode, read_message
from mediacheck.logconfig import LogConfig
from mediacheck.peer import ProbeSettings
from mediacheck.worker import worker_main

log = structlog.get_logger("mediacheck.pool")

#: "spawn", never "fork": forking a process that has threads and a running event loop
#: copies locks in whatever state they were in (Python docs, multiprocessing).
START_METHOD: Literal["spawn"] = "spawn"


class WorkerState(enum.StrEnum):
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"
    DEAD = "dead"


class WorkerProcess:
    """One worker process and the hub's end of its channel."""

    def __init__(
        self,
        index: int,
        settings: ProbeSettings,
        heartbeat: float,
        on_message: Callable[[WorkerProcess, Message], None],
        on_exit: Callable[[WorkerProcess], None],
        log_level: int | None = None,
        niceness: int = 0,
    ) -> None:
        self.index = index
        self._niceness = niceness
        self.state = WorkerState.STARTING
        self.in_flight: set[str] = set()
        self.reserved = 0  # slots promised to queued checks, not yet dispatched
        self.ever_ready = False
        self.last_seen = 0.0
        self._settings = settings
        self._heartbeat = heartbeat
        self._log_level = log_level
        self._on_message = on_message
        self._on_exit = on_exit
        self._process: multiprocessing.process.BaseProcess | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._log = log.bind(worker=index)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def load(self) -> int:
        return len(self.in_flight) + self.reserved

    def release(self) -> None:
        """A reserved slot was used (or given up)."""
        self.reserved = max(0, self.reserved - 1)

    def _set_state(self, new: WorkerState) -> None:
        if new != self.state:
            self._log.info("worker state", old=self.state.value, new=new.value, pid=self.pid)
            self.state = new

    def _log_config(self) -> LogConfig:
        """The hub's own log format (and level, unless this worker was given one)."""
        config = logconfig.current()
        return config if self._log_level is None else replace(config, level=self._log_level)

    async def start(self, within: float) -> None:
        """Spawn the process and wait for its ``ready``; raises TimeoutError/ChannelClosed."""
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        context = multiprocessing.get_context(START_METHOD)
        self._process = context.Process(
            target=worker_main,
            args=(theirs, self._settings, self._heartbeat, self._log_config()),
            name=f"mediacheck-worker-{self.index}",
            daemon=True,
        )
        try:
            self._process.start()
            if self._niceness and self._process.pid is not None:
                # Lowering a child's priority needs no privilege; see MediaCheckSettings.
                ours_now = os.getpriority(os.PRIO_PROCESS, 0)
                lower = min(19, ours_now + self._niceness)
                os.setpriority(os.PRIO_PROCESS, self._process.pid, lower)
        finally:
            theirs.close()  # the child has its copy; ours must go for EOF to mean "dead"
        reader, self._writer = await asyncio.open_connection(sock=ours)
        self._ready = loop.create_future()
        # Mark a late failure as seen: after a start timeout nobody awaits this any more.
        self._ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.last_seen = loop.time()
        self._reader_task = loop.create_task(self._read(reader))
        try:
            async with asyncio.timeout(within):
                await asyncio.shield(self._ready)
        except BaseException:
            self.kill()
            raise
        self.ever_ready = True
        if self.state == WorkerState.STARTING:  # not if stop() came first
            self._set_state(WorkerState.READY)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                message = await read_message(reader)
                self.last_seen = loop.time()
                if message["kind"] == "ready":
                    if self._ready is not None and not self._ready.done():
                        self._ready.set_result(None)
                elif message["kind"] != "alive":
                    self._on_message(self, message)
        except ChannelClosed:
            pass
        finally:
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(ChannelClosed("worker exited before it was ready"))
            await self._reap()
            self._set_state(WorkerState.DEAD)
            self._on_exit(self)

    async def _reap(self) -> None:
        """Collect the exited process (its channel is closed, so it exits promptly)."""
        if self._writer is not None:
            self._writer.close()
        process = self._process
        if process is None:
            return
        if not await wait_exit(process, 5.0):
            self.kill()
            await wait_exit(process, 5.0)
        if process.exitcode not in (0, None):
            self._log.warning("worker exited", pid=process.pid, exitcode=process.exitcode)

    def send(self, kind: str, **fields: Any) -> bool:
        """Send a message; False if the channel is already gone."""
        if self._writer is None or self._writer.is_closing() or self.state == WorkerState.DEAD:
            return False
        self._writer.write(encode({"kind": kind, **fields}))
        return True

    def kill(self) -> None:
        """SIGKILL the process (a hung or unwanted worker); ``on_exit`` follows."""
        pid = self.pid
        if pid is not None and self._process is not None and self._process.exitcode is None:
            self._log.warning("killing worker", pid=pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    async def stop(self, grace: float) -> None:
        """Ask the worker to stop (it closes its peers), kill it after ``grace`` seconds."""
        if self.state != WorkerState.DEAD:
            self._set_state(WorkerState.STOPPING)
            self.send("stop")
        task = self._reader_task
        if task is None:
            return
        try:
            async with asyncio.timeout(grace):
                await asyncio.shield(task)
        except TimeoutError:
            self.kill()
            await task


async def wait_exit(process: multiprocessing.process.BaseProcess, within: float) -> bool:
    """Wait without blocking the loop until ``process`` exits (and reap it)."""
    if process.exitcode is not None:
        return True
    loop = asyncio.get_running_loop()
    exited = loop.create_future()
    sentinel = process.sentinel

    def _on_ready() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(sentinel, _on_ready)
    try:
        async with asyncio.timeout(within):
            await exited
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(sentinel)
    process.join(0)
    return True
