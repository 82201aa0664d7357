"""An engine that answers from a function: for tests of middleware and of code
that embeds the Fetcher, with no sockets at all."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from crawler.models import AsyncResource, HeadersLike, Request, Response, make_headers

__all__ = ["MockEngine", "respond"]

Responder = Callable[[Request], Response | Awaitable[Response]]


def respond(
    request: Request,
    status: int = 200,
    body: bytes | str = b"",
    headers: HeadersLike | None = None,
) -> Response:
    """A response to ``request`` (a shorthand for responders)."""
    data = body.encode() if isinstance(body, str) else body
    return Response(request=request, status=status, headers=make_headers(headers), body=data)


class MockEngine(AsyncResource):
    """Calls ``responder`` for each request and records every request it was sent."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.requests: list[Request] = []

    async def send(self, request: Request) -> Response:
        self.requests.append(request)
        result = self.responder(request)
        if inspect.isawaitable(result):
            return await result
        return result

    async def aclose(self) -> None:
        return None
