"""Middleware composition: ``(request, call_next) -> response``, in list order.

The first middleware in the list is the outermost: it sees the request first
and the response last, like aiohttp's client middlewares.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from crawler.models import Request, Response

__all__ = ["Handler", "Middleware", "compose"]

Handler = Callable[[Request], Awaitable[Response]]
Middleware = Callable[[Request, Handler], Awaitable[Response]]


def compose(middlewares: Sequence[Middleware], handler: Handler) -> Handler:
    """Fold ``middlewares`` around ``handler``; ``compose([a, b], h)(r)`` runs a → b → h."""
    for middleware in reversed(middlewares):
        handler = _bind(middleware, handler)
    return handler


def _bind(middleware: Middleware, call_next: Handler) -> Handler:
    async def handle(request: Request) -> Response:
        return await middleware(request, call_next)

    return handle
