"""The media check over ``/ws``: hub side of mediacheck.MediaCheckService.

``mediacheck.offer`` is handed to a worker process; the answer comes back on
the participant's socket, then progress and the result, in that order (one
task per check pumps them). The verdict becomes the participant's ``checked``
presence event, which turns the dashboard's yellow ? into ✓ or ✗, and the
room's hosts get a fresh lobby view with the new indicator.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

from mediacheck.service import CheckHandle, MediaCheckService, MediaCheckSettings, Progress
from signalling.metrics import Metrics
from signalling.protocol import MediaCheckOffer
from signalling.session import Session
from signalling.settings import Settings

log = structlog.get_logger("vestibule.checks")


#: told of each verdict: the session and the ``checked`` event's detail
VerdictListener = Callable[..., Awaitable[None]]


class MediaChecks:
    """Runs at most one check per session; a new offer supersedes a running one.

    ``start`` and ``stop`` own the worker pool (the app's cleanup context)."""

    def __init__(
        self,
        service: MediaCheckService,
        metrics: Metrics,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        on_verdict: VerdictListener,
    ) -> None:
        self.service = service
        self.metrics = metrics
        self._spawn = spawn
        self._on_verdict = on_verdict
        self._running: dict[str, tuple[asyncio.Task[None], CheckHandle]] = {}

    async def start(self) -> None:
        await self.service.start()
        log.info("media check workers started", workers=self.service.settings.worker_count)

    async def stop(self) -> None:
        for task, _ in list(self._running.values()):
            task.cancel()
        with contextlib.suppress(Exception):
            await self.service.stop()

    async def offer(self, session: Session, msg: MediaCheckOffer) -> None:
        self.cancel(session)
        check_id = "c" + secrets.token_hex(6)
        progress: asyncio.Queue[Progress] = asyncio.Queue()
        handle = await self.service.begin(check_id, msg.sdp, on_progress=progress.put_nowait)
        body: dict[str, Any] = {
            "type": "mediacheck.answer",
            "check": check_id,
            "sdp": handle.answer_sdp,
        }
        if msg.ref is not None:
            body["ref"] = msg.ref
        await session.send(body)
        task = asyncio.get_running_loop().create_task(self._pump(session, handle, progress))
        self._running[session.pid] = (task, handle)
        task.add_done_callback(lambda _: self._forget(session.pid, task))
        log.info(
            "media check started",
            check=check_id,
            participant=session.pid,
            meeting=session.who.meeting_id,
        )

    def _forget(self, pid: str, task: asyncio.Task[None]) -> None:
        running = self._running.get(pid)
        if running is not None and running[0] is task:
            del self._running[pid]

    async def _pump(
        self, session: Session, handle: CheckHandle, progress: asyncio.Queue[Progress]
    ) -> None:
        result_task = asyncio.ensure_future(handle.result())
        try:
            while not result_task.done():
                getter = asyncio.ensure_future(progress.get())
                done, _ = await asyncio.wait(
                    {getter, result_task}, return_when=asyncio.FIRST_COMPLETED
                )
                if getter in done:
                    step = getter.result()
                    await session.send(
                        {
                            "type": "mediacheck.progress",
                            "check": handle.check_id,
                            "phase": step.phase,
                            "elapsed": round(step.elapsed, 2),
                        }
                    )
                else:
                    getter.cancel()
            result = result_task.result()
        finally:
            if not result_task.done():
                result_task.cancel()
        outcome = result.to_dict()
        await session.send({"type": "mediacheck.result", "check": handle.check_id, **outcome})
        self.metrics.mediacheck_verdicts.labels(result.verdict).inc()
        log.info(
            "media check finished",
            check=handle.check_id,
            verdict=result.verdict,
            reasons=[f.code for f in result.reasons],
            participant=session.pid,
        )
        await self._on_verdict(
            session,
            verdict=result.verdict,
            reasons=[f.code for f in result.reasons],
            warnings=[f.code for f in result.warnings],
        )

    def cancel(self, session: Session) -> None:
        running = self._running.pop(session.pid, None)
        if running is not None:
            task, handle = running
            task.cancel()
            self._spawn(handle.cancel())


def service_settings(settings: Settings) -> MediaCheckSettings:
    # The server's peer uses the deployment's own STUN servers and nothing else (aiortc
    # would otherwise contact a public one). It needs no TURN: the server is the
    # reachable end, and the browser brings its own TURN relay from welcome.
    servers = [{"urls": list(settings.stun_urls)}] if settings.stun_urls else []
    return MediaCheckSettings(
        workers=settings.mediacheck_workers,
        queue=settings.mediacheck_queue,
        ice_servers=tuple(servers),
    )
