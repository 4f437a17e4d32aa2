"""The batched writer's one worker thread: all sink and file work runs there, in submission order.

One thread because a database connection is not shared across threads, and because order matters: a spill
queued after a write runs after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["WriterThread"]

_T = TypeVar("_T")


class WriterThread:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-writer")

    def submit(self, fn: Callable[..., _T], *args: Any) -> asyncio.Future[_T]:
        """Queue ``fn(*args)``; cancelling the returned future does not stop work that already started."""
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await self.submit(fn, *args)

    async def run_to_the_end(self, fn: Callable[..., _T], *args: Any) -> tuple[_T, bool]:
        """Run ``fn(*args)`` and wait until it is done, even through cancellation.

        Returns its result and whether a cancellation came meanwhile: the caller accounts for the work, then
        raises :class:`asyncio.CancelledError` itself. An exception of ``fn`` propagates (a cancellation that
        came meanwhile is then dropped: the error wins).
        """
        work = self.submit(fn, *args)
        cancelled = False
        while not work.done():
            try:
                await asyncio.wait((work,))
            except asyncio.CancelledError:
                cancelled = True
        return work.result(), cancelled

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False)
