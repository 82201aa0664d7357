"""Give every request its timeouts and hold each attempt to its wall-clock total."""

from __future__ import annotations

import asyncio

from crawler.errors import FetchTimeout
from crawler.models import Handler, Request, Response, Timeouts, attempt_deadline

__all__ = ["Timeout"]

_DEFAULT = Timeouts()


class Timeout:
    """Fills in ``default`` for requests that carry no ``timeouts`` and cancels an
    attempt at its ``total`` whatever the engine does, so no engine bug or
    blocking library call can hold a caller past its deadline."""

    def __init__(self, default: Timeouts | float = _DEFAULT) -> None:
        self.default = Timeouts.of(default)

    async def __call__(self, request: Request, call_next: Handler) -> Response:
        if request.timeouts is None:
            request = request.replace(timeouts=self.default)
        total = request.timeouts.total if request.timeouts else self.default.total
        try:
            async with asyncio.timeout(total) as deadline:
                with attempt_deadline(deadline):
                    return await call_next(request)
        except FetchTimeout:
            raise
        except TimeoutError as exc:
            raise FetchTimeout(
                f"total timeout after {total:g}s", phase="total", request=request
            ) from exc
