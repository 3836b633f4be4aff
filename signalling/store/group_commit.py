"""Group commit: calls made while one batch is written make the next batch.

A store call that is cheap once batched (a SQLite transaction, a Redis round
trip) but costly alone (a thread hop, a round trip with its own wake-ups) is
queued instead of made: while a batch is being written, every call made
meanwhile waits for the next batch, written as soon as the one before it is
done. Nothing waits for a timer: a lone call is written at once, and under load
the batches grow with the load.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

P = TypeVar("P")
R = TypeVar("R")


class GroupCommit(Generic[P, R]):
    """Calls made while one batch is written join the next batch: each batch is
    one call of ``write`` (one transaction on the thread) and each caller gets
    the result of its own item. If the batch's write fails, every caller in it
    gets the error, and nothing of the batch was written."""

    def __init__(self, write: Callable[[Sequence[P]], Awaitable[Sequence[R]]]) -> None:
        self._write = write
        self._pending: list[tuple[P, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, item: P) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    results = await self._write([item for item, _ in batch])
                except asyncio.CancelledError:
                    for _, future in batch + self._pending:
                        future.cancel()
                    self._pending = []
                    raise
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._writer = None
