"""Task ownership: every background task has an owner that cancels and awaits it.

A component that starts short-lived tasks (closing a connection without waiting,
cancelling a media check, catching a dashboard up) spawns them through its
:class:`TaskOwner`; the owner is closed at shutdown, so no task outlives the app.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class TaskOwner:
    """A set of running tasks, cancelled and awaited together by :meth:`close`."""

    __slots__ = ("_tasks",)

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task of this owner."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel every task still running and wait until they have all ended."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
