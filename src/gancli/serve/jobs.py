"""Generation off the event loop, bounded: at most ``max_jobs`` jobs hold a worker thread, one runs torch.

The page stays responsive under many clicks: a waiting request holds neither a thread nor a batch,
only its place in the queue; past ``max_waiting`` waiting requests the server answers 503 (retry).
Torch work is one job at a time because the pipeline seeds the process-wide random generator for
noise inputs (two jobs at once could swap each other's noise, and seeds must stay exact); one job's
forward pass already spreads over the cores.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

from gancli.errors import GancliError


class Busy(GancliError):
    """More requests wait than the server queues (answered 503)."""


class JobQueue:
    def __init__(self, max_jobs: int = 2, max_waiting: int = 1024):
        if max_jobs < 1:
            raise GancliError(f"--max-jobs must be at least 1, got {max_jobs}")
        self.max_jobs, self.max_waiting = max_jobs, max_waiting
        self._slots = asyncio.Semaphore(max_jobs)
        self._torch = threading.Lock()
        self.waiting = 0

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on a worker thread, under the queue's bounds; its exceptions pass through."""
        from starlette.concurrency import run_in_threadpool

        if self.waiting >= self.max_waiting:
            raise Busy(f"the server is busy ({self.waiting} requests waiting); try again in a moment")
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            return await run_in_threadpool(self._exclusive, fn, *args)
        finally:
            self._slots.release()

    def _exclusive(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self._torch:
            return fn(*args)
