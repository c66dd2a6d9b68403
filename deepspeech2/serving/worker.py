"""One model worker thread: MindSpore inference is not thread-safe, so every request's model work is
queued to a single thread; a cap on waiting jobs keeps memory bounded (extra requests get HTTP 503)."""
from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

__all__ = ["ModelWorker", "WorkerBusy"]


class WorkerBusy(RuntimeError):
    """More jobs are waiting than the worker accepts."""


class ModelWorker:
    """Runs callables one at a time on one thread; ``await worker.run(fn, *args)`` from the event loop."""

    def __init__(self, max_pending: int):
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self.max_pending = max_pending
        self.pending = 0                 # touched only from the event loop thread
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ds2-model")

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.pending >= self.max_pending:
            raise WorkerBusy(f"server busy: {self.pending} requests are already queued (limit {self.max_pending})")
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args))
        finally:
            self.pending -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=True)
