"""At most N requests in flight, waiting *outside* the timeout."""

from __future__ import annotations

import asyncio

from crawler.models import Handler, Request, Response

__all__ = ["Concurrency"]


class Concurrency:
    """Admit at most ``limit`` requests to the rest of the chain at once.

    The engine bounds its connections too, but a request waiting there is already
    inside ``Timeout``: a caller that gathers a thousand fetches would see the last
    ones time out in the queue. Placed before ``Timeout``, the wait is free."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit!r}")
        self._slots = asyncio.Semaphore(limit)

    async def __call__(self, request: Request, call_next: Handler) -> Response:
        async with self._slots:
            return await call_next(request)
