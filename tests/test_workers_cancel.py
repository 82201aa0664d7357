"""A worker's tasks that wait on Redis end when they are cancelled. redis-py sends each
command under ``asyncio.wait_for``, which on Python 3.11 returns the send's result
and drops a cancellation that arrives in the loop step where the send finishes
(python/cpython#86296): a task cancelled there went on as if nothing had happened.
The run's progress reporter, cancelled as a run ends, looped on forever in a worker
whose run ended at once (the shared page budget already spent), and ``--workers``
waited for that worker forever. Each test cancels a call at every loop step from
its start, so one of the cancels lands in that window."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from crawler.crawl.cluster import SharedPoliteness
from crawler.frontier._redis import RedisFrontier

STEPS = 20  # a call on a live connection sends its command within its first few steps


async def cancelled_at_every_step(call: Callable[[], Awaitable[Any]]) -> None:
    """Cancel ``call()`` after 0, 1, 2, ... loop steps, each on a live connection (a
    cancel during a read closes it), until one is answered first or ``STEPS``: every
    call cancelled must end cancelled."""
    for steps in range(STEPS):
        await call()  # connected, so the steps before the send are the same each time
        task = asyncio.ensure_future(call())
        for _ in range(steps):
            await asyncio.sleep(0)
        if not task.cancel():  # answered first: no later step can be in the send
            return
        await asyncio.wait([task])
        assert task.cancelled(), f"cancelled after {steps} loop steps, the call returned"


async def test_a_cancelled_frontier_call_is_cancelled(redis_url: str) -> None:
    async with RedisFrontier(redis_url, name="cancel", worker="w0") as frontier:
        await cancelled_at_every_step(frontier.stats)
        await cancelled_at_every_step(lambda: frontier.checkpoint(["budget.spent"]))
        await cancelled_at_every_step(lambda: frontier.lease(0))


async def test_a_cancelled_politeness_call_is_cancelled(redis_url: str) -> None:
    async with SharedPoliteness.from_url(redis_url, name="cancel") as shared:
        await cancelled_at_every_step(lambda: shared.reserve("127.0.0.1:80", 0.0))
        await cancelled_at_every_step(lambda: shared.release("127.0.0.1:80", "h"))
