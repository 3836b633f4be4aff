"""The worker process: its own event loop, running many checks as aiortc peers.

The hub starts it with multiprocessing's "spawn" context (never "fork": the hub has
threads and a running loop) and talks to it over one half of a socketpair
(:mod:`mediacheck.channel`). Messages from the hub: ``begin`` (id, sdp, type),
``cancel`` (id), ``stop``. Messages to the hub: ``ready`` (pid) once, ``alive``
every ``heartbeat`` seconds (the hub kills a worker that falls silent: a hung loop),
and per check ``answer`` | ``reject``, ``progress``..., ``result``.

If the hub goes away the channel ends and the worker closes every peer and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from typing import Any

import structlog

from mediacheck import logconfig
from mediacheck.channel import ChannelClosed, Message, encode, read_message
from mediacheck.logconfig import LogConfig
from mediacheck.offer import OfferRejected
from mediacheck.peer import ProbeSettings, run_check
from mediacheck.verdict import Reason, failure

log = structlog.get_logger("mediacheck.worker")


class Worker:
    """Serves one hub channel: runs each ``begin`` as a task, reports back."""

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        settings: ProbeSettings,
        heartbeat: float,
    ) -> None:
        self._writer = writer
        self._settings = settings
        self._heartbeat = heartbeat
        self._checks: dict[str, asyncio.Task[None]] = {}
        self._cancelled: set[str] = set()

    def send(self, kind: str, **fields: Any) -> None:
        if not self._writer.is_closing():
            self._writer.write(encode({"kind": kind, **fields}))

    async def serve(self, reader: asyncio.StreamReader) -> None:
        """Run until ``stop`` or until the hub goes away; every peer is closed on exit."""
        self.send("ready", pid=os.getpid())
        beat = asyncio.get_running_loop().create_task(self._beat())
        try:
            while True:
                try:
                    message = await read_message(reader)
                except ChannelClosed:
                    log.info("hub channel closed; stopping")
                    return
                if message["kind"] == "stop":
                    return
                self._dispatch(message)
        finally:
            beat.cancel()
            tasks = list(self._checks.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(beat, *tasks, return_exceptions=True)
            await self._close_writer()

    async def _close_writer(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()

    def _dispatch(self, message: Message) -> None:
        kind = message["kind"]
        check_id = str(message.get("id", ""))
        if kind == "begin" and check_id not in self._checks:
            task = asyncio.get_running_loop().create_task(
                self._run(check_id, str(message["sdp"]), str(message["type"]))
            )
            self._checks[check_id] = task
            task.add_done_callback(lambda _t: self._checks.pop(check_id, None))
        elif kind == "cancel" and check_id in self._checks:
            self._cancelled.add(check_id)
            self._checks[check_id].cancel()

    async def _beat(self) -> None:
        while True:
            self.send("alive")
            await self._writer.drain()
            await asyncio.sleep(self._heartbeat)

    async def _run(self, check_id: str, sdp: str, sdp_type: str) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            result = await run_check(
                sdp,
                sdp_type,
                self._settings,
                on_answer=lambda answer: self.send(
                    "answer", id=check_id, sdp=answer.sdp, type=answer.type
                ),
                on_progress=lambda p: self.send("progress", id=check_id, **p.to_dict()),
                check_id=check_id,
            )
        except OfferRejected as exc:
            self.send("reject", id=check_id, message=str(exc))
            return
        except asyncio.CancelledError:
            if check_id in self._cancelled:
                self._cancelled.discard(check_id)
                cancelled = failure(Reason.CANCELLED, loop.time() - started)
                self.send("result", id=check_id, result=cancelled.to_dict())
                return
            raise
        except Exception:
            log.exception("media check crashed", check_id=check_id)
            crashed = failure(Reason.WORKER_FAILED, loop.time() - started)
            self.send("result", id=check_id, result=crashed.to_dict())
            return
        log.info("media check done", check_id=check_id, verdict=result.verdict)
        self.send("result", id=check_id, result=result.to_dict())


async def _serve(sock: socket.socket, settings: ProbeSettings, heartbeat: float) -> None:
    reader, writer = await asyncio.open_connection(sock=sock)
    await Worker(writer, settings, heartbeat).serve(reader)


def worker_main(
    sock: socket.socket, settings: ProbeSettings, heartbeat: float, log_config: LogConfig
) -> None:
    """Entry point of a spawned worker process."""
    # A spawned process starts with nothing configured: log like the hub (its format,
    # on the stderr it shares with the hub), never on stdout.
    logconfig.configure(log_config)
    # aiortc/aioice log every packet problem at DEBUG/INFO through stdlib logging.
    logging.getLogger("aiortc").setLevel(max(log_config.level, logging.WARNING))
    logging.getLogger("aioice").setLevel(max(log_config.level, logging.WARNING))
    # Ctrl-C reaches the whole process group: the hub decides when workers stop
    # (and if the hub dies, the channel ends and the worker exits on its own).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        asyncio.run(_serve(sock, settings, heartbeat))
    except Exception:
        # Logged here, as one line in the hub's format, rather than printed by
        # multiprocessing as a bare traceback; the hub sees the exit code.
        log.critical("worker failed", exc_info=True)
        sys.exit(1)
