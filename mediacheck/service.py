"""The media-check service the signalling hub calls: a bounded pool of worker processes.

Checks must never slow signalling, so they run in worker *processes* (each with its
own event loop and aiortc peers); the hub only relays the offer, the answer, progress
and the result. Admission is bounded: ``workers x per_worker`` checks run at
once, up to ``queue`` more wait for a slot (FIFO, at most ``hard_cap`` seconds), and
anything beyond raises :class:`rooms.errors.Busy` with a ``retry_after`` at once:
never an unbounded wait.

A worker that crashes, is killed or stops sending heartbeats (a hung loop) fails its
in-flight checks with ``worker_failed`` and is replaced; the hub process stays up.
A worker whose check outlives the hard cap by :data:`HARD_CAP_GRACE` is treated as
hung too (the worker enforces the cap itself, so this means it is not running).

Typical use (the hub)::

    service = MediaCheckService(MediaCheckSettings(ice_servers=...))
    await service.start()
    handle = await service.begin(check_id, offer_sdp, on_progress=send_progress)
    send_answer(handle.answer_sdp, handle.answer_type)
    result = await handle.result()
    ...
    await service.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from mediacheck.channel import Message
from mediacheck.peer import ProbeSettings
from mediacheck.pool import WorkerProcess, WorkerState
from mediacheck.result import CheckResult, Finding, Progress
from mediacheck.verdict import Reason, failure
from rooms.errors import BadMessage, Busy, Conflict

__all__ = [
    "CheckHandle",
    "CheckResult",
    "Finding",
    "MediaCheckService",
    "MediaCheckSettings",
    "Progress",
]

log = structlog.get_logger("mediacheck.service")

#: Seconds past the hard cap before the hub gives up on a worker's check: the worker
#: enforces the cap itself and closing a peer takes well under a second.
HARD_CAP_GRACE = 5.0
#: A browser offer with audio, video and its candidates is 3-10 KB; far beyond is abuse.
MAX_OFFER_CHARS = 64 * 1024
#: How long ``cancel()`` and ``stop()`` wait for a worker to confirm before acting alone.
CONFIRM_TIMEOUT = 5.0
#: Pause before respawning a worker that died while starting (a crash loop otherwise
#: burns a core on imports).
RESPAWN_BACKOFF = 1.0


@dataclass(frozen=True)
class MediaCheckSettings:
    """Pool size, ICE servers and the time budget of a check (seconds)."""

    workers: int = 0  # 0 = os.cpu_count()
    #: concurrent checks per worker process. A 480p check costs ~0.55 s of CPU over
    #: its ~4 s (loadtest mediacheck, docs/benchmarks.md), ~0.14 of a core: two per
    #: worker, one worker per core, keeps a loaded machine's signalling responsive.
    per_worker: int = 2
    queue: int = 8  # waiting checks beyond capacity before Busy
    ice_servers: tuple[Mapping[str, Any], ...] = ()  # [{"urls": [...], "username", "credential"}]
    connect_timeout: float = 10.0
    first_frame_timeout: float = 3.0
    window: float = 4.0
    hard_cap: float = 15.0
    #: a worker sends "alive" this often; silent for ``heartbeat_timeout`` = hung, killed
    heartbeat: float = 1.0
    heartbeat_timeout: float = 5.0
    #: spawning a worker imports aiortc and PyAV: seconds on a loaded machine
    start_timeout: float = 60.0
    #: the workers' log level; None: the server's own (their format is always the server's)
    log_level: int | None = None
    #: workers run at this nice value: when the machine is short of CPU the kernel
    #: serves signalling first (media checks must not stall signalling: docs/architecture.md);
    #: a starved check measures fewer frames per second, which only warns below 15.
    niceness: int = 10

    def __post_init__(self) -> None:
        if self.workers < 0 or self.per_worker < 1 or self.queue < 0:
            raise ValueError("workers >= 0, per_worker >= 1 and queue >= 0 are required")
        if self.heartbeat <= 0 or self.heartbeat_timeout <= self.heartbeat:
            raise ValueError("heartbeat_timeout must exceed a positive heartbeat")
        self.probe()  # validates the time budget

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1

    @property
    def capacity(self) -> int:
        return self.worker_count * self.per_worker

    @property
    def retry_after(self) -> float:
        """What to tell a refused client: about one typical check's duration."""
        return min(self.hard_cap, self.first_frame_timeout + self.window)

    def probe(self) -> ProbeSettings:
        return ProbeSettings(
            ice_servers=tuple(dict(s) for s in self.ice_servers),
            connect_timeout=self.connect_timeout,
            first_frame_timeout=self.first_frame_timeout,
            window=self.window,
            hard_cap=self.hard_cap,
        )


@dataclass(eq=False)
class _Check:
    check_id: str
    worker: WorkerProcess
    dispatched_at: float
    on_progress: Callable[[Progress], None] | None
    answer: asyncio.Future[tuple[str, str]]
    result: asyncio.Future[CheckResult]


class CheckHandle:
    """A running check: its answer for the browser, and its result to come."""

    def __init__(self, service: MediaCheckService, check: _Check, sdp: str, sdp_type: str):
        self.check_id = check.check_id
        self.answer_sdp = sdp
        self.answer_type = sdp_type
        self._service = service
        self._check = check

    async def result(self) -> CheckResult:
        """The result; always resolves (``timeout``, ``worker_failed``... included)."""
        return await asyncio.shield(self._check.result)

    async def cancel(self) -> None:
        """The client went away: stop the check and close its peer."""
        await self._service._cancel(self._check)

    def stats(self) -> dict[str, Any]:
        """The service's :meth:`MediaCheckService.stats` plus this check's worker pid."""
        return {**self._service.stats(), "worker_pid": self._check.worker.pid}


class MediaCheckService:
    """Runs media checks in a pool of worker processes; see the module docstring."""

    def __init__(self, settings: MediaCheckSettings) -> None:
        self.settings = settings
        self._workers: list[WorkerProcess] = []
        self._checks: dict[str, _Check] = {}
        self._waiters: deque[asyncio.Future[WorkerProcess]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = False
        self._watchdog: asyncio.Task[None] | None = None

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Spawn the workers and wait until each is ready."""
        if self._running:
            return
        self._running = True
        self._workers = [self._new_worker(i) for i in range(self.settings.worker_count)]
        try:
            await asyncio.gather(*(w.start(self.settings.start_timeout) for w in self._workers))
        except BaseException:
            await self.stop()
            raise
        self._watchdog = asyncio.get_running_loop().create_task(self._watch())
        log.info("media check pool started", workers=len(self._workers))

    async def stop(self) -> None:
        """Fail in-flight and queued checks, stop the workers and reap them."""
        self._running = False
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
            self._watchdog = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(Busy("media checks are shutting down", self._retry()))
        for check in list(self._checks.values()):
            self._finish(check, failure(Reason.WORKER_FAILED, self._elapsed(check)))
        await asyncio.gather(*(w.stop(CONFIRM_TIMEOUT) for w in self._workers))
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers = []

    def _new_worker(self, index: int) -> WorkerProcess:
        return WorkerProcess(
            index,
            self.settings.probe(),
            self.settings.heartbeat,
            on_message=self._on_message,
            on_exit=self._on_exit,
            log_level=self.settings.log_level,
            niceness=self.settings.niceness,
        )

    def _spawn_task(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- admission -----------------------------------------------------------------

    async def begin(
        self,
        check_id: str,
        offer_sdp: str,
        offer_type: str = "offer",
        on_progress: Callable[[Progress], None] | None = None,
    ) -> CheckHandle:
        """Start a check and return once the worker has produced the answer.

        Raises :class:`Busy` (with ``retry_after``) when every slot and the queue are
        taken, :class:`BadMessage` for an offer aiortc cannot use, :class:`Conflict`
        when ``check_id`` is already running.
        """
        if not self._running:
            raise Busy("media checks are not available", self._retry())
        if check_id in self._checks:
            raise Conflict("a media check with this id is already running")
        if offer_type != "offer":
            raise BadMessage("a media check needs an SDP offer")
        if len(offer_sdp) > MAX_OFFER_CHARS:
            raise BadMessage("the offer is too large")
        worker = None if self._waiters else self._free_worker()
        if worker is None:
            worker = await self._queue_for_slot()
            if check_id in self._checks:  # the same id was started while this one queued
                self._wake()
                raise Conflict("a media check with this id is already running")
        loop = asyncio.get_running_loop()
        check = _Check(
            check_id=check_id,
            worker=worker,
            dispatched_at=loop.time(),
            on_progress=on_progress,
            answer=loop.create_future(),
            result=loop.create_future(),
        )
        self._checks[check_id] = check
        worker.in_flight.add(check_id)
        if not worker.send("begin", id=check_id, sdp=offer_sdp, type=offer_type):
            self._finish(check, failure(Reason.WORKER_FAILED, 0.0))  # died meanwhile
        try:
            sdp, sdp_type = await asyncio.shield(check.answer)
        except asyncio.CancelledError:
            # The hub gave up waiting (its client left): do not leak the check.
            if not check.result.done():
                self._spawn_task(self._cancel(check))
            raise
        return CheckHandle(self, check, sdp, sdp_type)

    def _free_worker(self) -> WorkerProcess | None:
        ready = [
            w
            for w in self._workers
            if w.state == WorkerState.READY and w.load < self.settings.per_worker
        ]
        return min(ready, key=lambda w: w.load) if ready else None

    def _retry(self) -> float:
        return self.settings.retry_after

    async def _queue_for_slot(self) -> WorkerProcess:
        if len(self._waiters) >= self.settings.queue:
            raise Busy("all media-check slots are taken", self._retry())
        waiter: asyncio.Future[WorkerProcess] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.settings.hard_cap):
                worker = await waiter
        except BaseException as exc:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # Woken with a reserved slot but cancelled before using it: hand it on.
                waiter.result().release()
                self._wake()
            if isinstance(exc, TimeoutError):
                raise Busy("no media-check slot became free in time", self._retry()) from exc
            raise
        worker.release()
        return worker

    def _wake(self) -> None:
        """Give free slots to queued checks, first come first served."""
        while self._waiters:
            worker = self._free_worker()
            if worker is None:
                return
            waiter = self._waiters.popleft()
            if waiter.done():
                continue
            worker.reserved += 1
            waiter.set_result(worker)

    # --- worker events -------------------------------------------------------------

    def _on_message(self, worker: WorkerProcess, message: Message) -> None:
        check = self._checks.get(str(message.get("id", "")))
        if check is None or check.worker is not worker:
            return  # a late message about a check already failed or cancelled
        kind = message["kind"]
        if kind == "answer" and not check.answer.done():
            check.answer.set_result((str(message["sdp"]), str(message["type"])))
        elif kind == "reject":
            if not check.answer.done():
                check.answer.set_exception(BadMessage(str(message.get("message", ""))))
            self._finish(check, None)
        elif kind == "progress" and check.on_progress is not None:
            try:
                check.on_progress(Progress(str(message["phase"]), float(message["elapsed"])))
            except Exception:
                log.exception("progress callback failed", check_id=check.check_id)
        elif kind == "result":
            self._finish(check, CheckResult.from_dict(message["result"]))

    def _finish(self, check: _Check, result: CheckResult | None) -> None:
        """Resolve a check once (result None: rejected before it began) and free its slot."""
        if self._checks.get(check.check_id) is check:
            del self._checks[check.check_id]
        check.worker.in_flight.discard(check.check_id)
        if not check.answer.done():
            check.answer.set_exception(Busy("the media check could not start", self._retry()))
            check.answer.exception()  # seen: begin() may already have gone
        if not check.result.done():
            check.result.set_result(result or failure(Reason.CANCELLED, self._elapsed(check)))
        self._wake()

    def _elapsed(self, check: _Check) -> float:
        return asyncio.get_running_loop().time() - check.dispatched_at

    def _on_exit(self, worker: WorkerProcess) -> None:
        for check_id in list(worker.in_flight):
            check = self._checks.get(check_id)
            if check is not None:
                log.warning("media check lost with its worker", check_id=check_id, pid=worker.pid)
                self._finish(check, failure(Reason.WORKER_FAILED, self._elapsed(check)))
        worker.in_flight.clear()
        worker.reserved = 0
        if self._running and worker in self._workers:
            self._spawn_task(self._replace(worker))

    async def _replace(self, dead: WorkerProcess) -> None:
        if not dead.ever_ready:
            await asyncio.sleep(RESPAWN_BACKOFF)
        fresh = self._new_worker(dead.index)
        index = self._workers.index(dead)
        self._workers[index] = fresh
        try:
            await fresh.start(self.settings.start_timeout)
        except Exception:
            log.exception("media check worker failed to start", worker=dead.index)
            return  # its on_exit schedules the next attempt
        self._wake()

    async def _cancel(self, check: _Check) -> None:
        if check.result.done():
            return
        check.worker.send("cancel", id=check.check_id)
        try:
            async with asyncio.timeout(CONFIRM_TIMEOUT):
                await asyncio.shield(check.result)
        except TimeoutError:
            self._finish(check, failure(Reason.CANCELLED, self._elapsed(check)))

    async def _watch(self) -> None:
        """Kill workers that stopped sending heartbeats or sit on a check past its cap."""
        loop = asyncio.get_running_loop()
        overdue = self.settings.hard_cap + HARD_CAP_GRACE
        while True:
            await asyncio.sleep(self.settings.heartbeat)
            now = loop.time()
            for worker in self._workers:
                if worker.state != WorkerState.READY:
                    continue
                if now - worker.last_seen > self.settings.heartbeat_timeout:
                    log.warning("media check worker is silent", pid=worker.pid)
                    worker.kill()
                elif any(
                    now - check.dispatched_at > overdue
                    for check in self._checks.values()
                    if check.worker is worker
                ):
                    log.warning("media check worker overran the hard cap", pid=worker.pid)
                    worker.kill()

    # --- introspection -------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Capacity, checks in flight and queued, and the workers (alive count, pids)."""
        alive = [w for w in self._workers if w.state == WorkerState.READY]
        return {
            "capacity": self.settings.capacity,
            "in_flight": len(self._checks),
            "queued": sum(1 for w in self._waiters if not w.done()),
            "queue_limit": self.settings.queue,
            "workers": len(self._workers),
            "workers_alive": len(alive),
            "worker_pids": [w.pid for w in alive],
        }
