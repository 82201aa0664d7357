"""The wall-clock deadline of the attempt in progress, and waits that do not count
against it.

``Timeout`` holds every attempt to its ``total``. A few waits are not the
attempt's own work but a queue in front of it (a page of the headless browser,
say): the caller's budget should start when its turn comes, as it does for
``Concurrency``, which waits before ``Timeout``. An engine that queues inside
``send`` marks that wait with ``outside_deadline()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar

__all__ = ["attempt_deadline", "outside_deadline"]

_current: ContextVar[asyncio.Timeout | None] = ContextVar("attempt_deadline", default=None)


@contextmanager
def attempt_deadline(deadline: asyncio.Timeout) -> Iterator[None]:
    """Make ``deadline`` (an entered ``asyncio.timeout``) the current attempt's."""
    token = _current.set(deadline)
    try:
        yield
    finally:
        _current.reset(token)


@asynccontextmanager
async def outside_deadline() -> AsyncIterator[None]:
    """The time spent inside is added to the current attempt's deadline (if any),
    which is suspended meanwhile, so a long wait is never cut off as a timeout."""
    deadline = _current.get()
    when = deadline.when() if deadline is not None else None
    if deadline is None or when is None or deadline.expired():
        yield
        return
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline.reschedule(None)
    try:
        yield
    finally:
        deadline.reschedule(when + loop.time() - started)
