"""SyncFetcher: the same Fetcher, driven from blocking code through a private
event loop thread (an anyio blocking portal). Not a second implementation."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Self, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from crawler.fetcher.client import Fetcher, Result, same_parameters
from crawler.models import HeadersLike, Request, Response, Timeouts
from crawler.policy import FetchPolicy

__all__ = ["SyncFetcher"]

T = TypeVar("T")


class SyncFetcher:
    """``with SyncFetcher(...) as fetcher: fetcher.get(url)``; same arguments as ``Fetcher``.

    Safe to call from several threads at once: calls run concurrently on the
    private loop.
    """

    @same_parameters(FetchPolicy)
    def __init__(self, *args: Any, **options: Any) -> None:
        self.fetcher = Fetcher(*args, **options)
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None

    @classmethod
    def of(cls, policy: FetchPolicy) -> Self:
        """A SyncFetcher that fetches by ``policy``."""
        return cls(**policy.arguments())

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
