"""The shape of the policy chain: a handler sends a request and returns its
response; a middleware wraps the next handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from crawler.models.request import Request
from crawler.models.response import Response

__all__ = ["Handler", "Middleware"]

Handler = Callable[[Request], Awaitable[Response]]
Middleware = Callable[[Request, Handler], Awaitable[Response]]
