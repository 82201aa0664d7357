"""A cancel that redis-py loses, raised again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

__all__ = ["keep_cancellation"]


@contextlib.contextmanager
def keep_cancellation() -> Iterator[None]:
    """Raise ``CancelledError`` when the task was cancelled during the block and the
    block ended all the same. redis-py sends each command under ``asyncio.wait_for``,
    which on Python 3.11 returns the send's result and drops a cancel that arrives
    in the loop step where the send finishes (python/cpython#86296; 3.12 fixed it):
    the task went on as if never cancelled, and whoever awaited it waited forever
    (a worker's progress task, cancelled as its run ended, kept the worker alive)."""
    task = asyncio.current_task()
    cancels = 0 if task is None else task.cancelling()
    yield
    if task is not None and task.cancelling() > cancels:
        raise asyncio.CancelledError
