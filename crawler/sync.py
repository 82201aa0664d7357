"""SyncFetcher: the same Fetcher, driven from blocking code through a private
event loop thread (an anyio blocking portal). Not a second implementation."""

from __future__ import annotations

import functools
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Self, TypedDict, TypeVar, Unpack

from anyio.from_thread import BlockingPortal, start_blocking_portal

from crawler.engines import Engine
from crawler.fetcher import Fetcher, Result
from crawler.middleware import Middleware
from crawler.models import HeadersLike, Request, Response, Timeouts

__all__ = ["FetcherOptions", "SyncFetcher"]

T = TypeVar("T")


class FetcherOptions(TypedDict, total=False):
    """The keyword arguments of ``Fetcher``, for ``SyncFetcher``'s signature."""

    concurrency: int
    per_host_concurrency: int
    timeout: float | Timeouts
    retries: int
    backoff: float
    max_backoff: float
    retry_statuses: Iterable[int]
    rate_limit: str | float | None
    user_agent: str
    headers: HeadersLike | None
    cookies: Mapping[str, str] | None
    proxy: str | None
    verify_tls: bool | str
    block_private: bool
    allow_private: Iterable[str]
    max_bytes: int
    body_memory: int | None
    max_redirects: int
    follow_redirects: bool
    middleware: list[Middleware]


class SyncFetcher:
    """``with SyncFetcher(...) as fetcher: fetcher.get(url)``; same arguments as ``Fetcher``.

    Safe to call from several threads at once: calls run concurrently on the
    private loop.
    """

    def __init__(self, engine: str | Engine = "aiohttp", **options: Unpack[FetcherOptions]):
        self.fetcher = Fetcher(engine, **options)
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None

    def __enter__(self) -> Self:
        if self._portal is None:
            self._portal_cm = start_blocking_portal(backend="asyncio")
            portal = self._portal_cm.__enter__()
            try:
                portal.call(self.fetcher.__aenter__)
            except BaseException:
                self._portal_cm.__exit__(None, None, None)
                raise
            self._portal = portal
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        portal, cm = self._portal, self._portal_cm
        self._portal = self._portal_cm = None
        if portal is not None and cm is not None:
            try:
                portal.call(self.fetcher.aclose)
            finally:
                cm.__exit__(None, None, None)

    def _call(self, func: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        if self._portal is None:
            raise RuntimeError("SyncFetcher is not open: use `with SyncFetcher(...) as fetcher:`")
        return self._portal.call(functools.partial(func, *args, **kwargs))

    def fetch(self, request: Request) -> Response:
        return self._call(self.fetcher.fetch, request)

    def get(
        self,
        url: str,
        *,
        headers: HeadersLike | None = None,
        timeout: float | Timeouts | None = None,
    ) -> Response:
        return self._call(self.fetcher.get, url, headers=headers, timeout=timeout)

    def head(
        self,
        url: str,
        *,
        headers: HeadersLike | None = None,
        timeout: float | Timeouts | None = None,
    ) -> Response:
        return self._call(self.fetcher.head, url, headers=headers, timeout=timeout)

    def post(
        self,
        url: str,
        data: bytes | str | Mapping[str, str] | None = None,
        *,
        json: Any = None,
        headers: HeadersLike | None = None,
        timeout: float | Timeouts | None = None,
    ) -> Response:
        return self._call(self.fetcher.post, url, data, json=json, headers=headers, timeout=timeout)

    def map(self, urls: Iterable[str | Request]) -> Iterator[Result]:
        """Results in completion order; ``urls`` is read on the loop thread, lazily."""
        results = self.fetcher.map(urls)
        try:
            while True:
                try:
                    yield self._call(_next, results)
                except StopAsyncIteration:
                    return
        finally:
            if self._portal is not None:
                self._portal.call(results.aclose)


async def _next(results: AsyncIterator[Result]) -> Result:
    return await anext(results)
