"""The embeddable Fetcher: an engine wrapped in the policy chain, nothing else.

FollowRedirects ▶ [your middleware] ▶ Retry ▶ RateLimit ▶ Concurrency ▶ Timeout ▶ Engine.send
"""

from __future__ import annotations

import asyncio
import inspect
import json as jsonlib
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Mapping,
)
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, Self
from urllib.parse import urlencode

from crawler.engines import Engine, require_http_url
from crawler.errors import FetchError
from crawler.middleware import HttpCache, http_cache, policy_chain
from crawler.models import (
    AsyncResource,
    Handler,
    HeadersLike,
    Request,
    Response,
    Timeouts,
    make_headers,
)
from crawler.policy import FetchPolicy

__all__ = ["Fetcher", "Result", "same_parameters"]

P = ParamSpec("P")


def same_parameters(
    source: Callable[P, Any],
) -> Callable[[Callable[..., None]], Callable[Concatenate[Any, P], None]]:
    """Give an ``__init__`` the parameters of ``source``, for type checkers and
    ``help()``: the fetch settings are declared once, on ``FetchPolicy``, and every
    front that takes them (``Fetcher``, ``SyncFetcher``) says so."""
    signature = inspect.signature(source)
    self = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)

    def apply(init: Callable[..., None]) -> Callable[Concatenate[Any, P], None]:
        init.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[self, *signature.parameters.values()], return_annotation=None
        )
        return init

    return apply


@dataclass(frozen=True, slots=True)
class Result:
    """One outcome of ``Fetcher.map``: a response or the error, never both."""

    url: str
    response: Response | None = None
    error: FetchError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Fetcher(AsyncResource):
    """Fetch URLs with every policy applied; an async context manager.

    Takes the settings of ``FetchPolicy`` as keywords (``Fetcher(timeout=10,
    retries=3)``), the engine first: a name or a ready ``Engine``. A bad value
    raises ``ConfigError`` naming its keyword. Any HTTP status is a response;
    only failures to get one raise (``FetchError`` subclasses). A Fetcher can be
    opened again after it was closed.

    ``block_private=True`` is for URLs you do not control: no connection is made
    to a loopback, private, link-local, multicast or reserved address, however
    the URL spells it, whatever DNS answers, on any redirect hop
    (``BlockedAddress``). ``allow_private`` keeps some reachable: addresses,
    ``address:port`` or networks (``["127.0.0.1:8099", "10.1.2.0/24"]``).

    ``body_memory`` bounds what the bodies being read hold at once: past 256 KiB a
    body needs a share of it until its response is garbage. Keeping many large
    responses alive then makes later large fetches wait (up to their timeout).
    """

    @same_parameters(FetchPolicy)
    def __init__(self, *args: Any, **options: Any) -> None:
        self.policy = FetchPolicy(*args, **options)
        self._headers = self.policy.request_headers
        self._engine: Engine | None = None
        self._cache: HttpCache | None = None
        self._handler: Handler | None = None

    @classmethod
    def of(cls, policy: FetchPolicy) -> Self:
        """A Fetcher that fetches by ``policy``."""
        return cls(**policy.arguments())

    async def open(self) -> None:
        if self._engine is None:
            cache = http_cache(self.policy)
            if cache is not None:  # first: a file that is no cache is refused before any socket
                await cache.open()
            engine = self.policy.create_engine()
            try:
                await engine.__aenter__()
            except BaseException:
                if cache is not None:
                    await cache.aclose()
                raise
            # Per-host state is per opening: a reopened Fetcher starts polite and fresh.
            self._engine, self._cache = engine, cache
            self._handler = policy_chain(self.policy, engine.send, cache=cache)

    async def aclose(self) -> None:
        engine, cache = self._engine, self._cache
        self._engine, self._cache, self._handler = None, None, None
        try:
            if engine is not None:
                await engine.aclose()
        finally:
            if cache is not None:
                await cache.aclose()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: HeadersLike | None = None,
        body: bytes | str | None = None,
        timeout: float | Timeouts | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Request:
        """Build a request with this Fetcher's default headers and limits."""
        extra = _pairs(headers)
        own = {name.lower() for name, _ in extra}
        merged = [(k, v) for k, v in self._headers if k.lower() not in own] + extra
        return Request(
            url=url,
            method=method,
            headers=make_headers(merged),
            body=body.encode() if isinstance(body, str) else body,
            timeouts=None if timeout is None else Timeouts.of(timeout),
            max_bytes=self.policy.max_bytes,
            meta=dict(meta or {}),
        )

    async def fetch(self, request: Request) -> Response:
        """Send ``request`` through the whole chain."""
        if self._handler is None:
            raise RuntimeError("Fetcher is not open: use `async with Fetcher(...) as fetcher:`")
        require_http_url(request)
        return await self._handler(request)

    async def get(
        self,
        url: str,
        *,
        headers: HeadersLike | None = None,
        timeout: float | Timeouts | None = None,
    ) -> Response:
        return await self.fetch(self.request("GET", url, headers=headers, timeout=timeout))

    async def head(
        self,
        url: str,
        *,
        headers: HeadersLike | None = None,
        timeout: float | Timeouts | None = None,
    ) -> Response:
        return await self.fetch(self.request("HEAD", url, headers=headers, timeout=timeout))

    async def post(
        self,
        url: str,
        data: bytes | str | Mapping[str, str] | None = None,
        *,
        json: Any = None,
        headers: HeadersLike | None = None,
        timeout: float | Timeouts | None = None,
    ) -> Response:
        """POST raw bytes, a form (a mapping) or ``json``."""
        extra = _pairs(headers)
        body: bytes | str | None
        if json is not None:
            body = jsonlib.dumps(json).encode()
            extra = [("Content-Type", "application/json"), *extra]
        elif isinstance(data, Mapping):
            body = urlencode(data)
            extra = [("Content-Type", "application/x-www-form-urlencoded"), *extra]
        else:
            body = data
        return await self.fetch(
            self.request("POST", url, headers=extra, body=body, timeout=timeout)
        )

    async def map(
        self, urls: Iterable[str | Request] | AsyncIterable[str | Request]
    ) -> AsyncGenerator[Result, None]:
        """Fetch every URL, yielding results in completion order.

        At most ``concurrency`` fetches are in flight and URLs are pulled from
        ``urls`` only as slots free up, so memory stays flat for any number of
        URLs. A failure is a ``Result`` with ``error`` set; it never stops the rest.
        Leaving the loop early cancels what is still in flight.
        """
        source = _aiter(urls)
        fetches: set[asyncio.Task[Result]] = set()
        pull: asyncio.Task[str | Request] | None = None  # the next URL, awaited alongside
        exhausted = False
        try:
            while True:
                if pull is None and not exhausted and len(fetches) < self.policy.concurrency:
                    pull = asyncio.create_task(_next(source))
                waiting: set[asyncio.Task[Any]] = {*fetches, *([pull] if pull else [])}
                if not waiting:
                    return
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if pull is not None and pull in done:
                    try:
                        fetches.add(asyncio.create_task(self._result(pull.result())))
                    except StopAsyncIteration:
                        exhausted = True
                    pull = None
                for task in done & fetches:
                    fetches.discard(task)
                    yield task.result()
        finally:
            leftovers = [*fetches, *([pull] if pull else [])]
            for task in leftovers:
                task.cancel()
            if leftovers:
                await asyncio.gather(*leftovers, return_exceptions=True)

    async def _result(self, item: str | Request) -> Result:
        request = item if isinstance(item, Request) else self.request("GET", item)
        try:
            return Result(request.url, response=await self.fetch(request))
        except FetchError as exc:
            return Result(request.url, error=exc)
        except Exception as exc:  # a bug must not end a million-URL run; keep it visible
            error = FetchError(f"unexpected {type(exc).__name__}: {exc}", request=request)
            error.__cause__ = exc
            return Result(request.url, error=error)


async def _next(source: AsyncIterator[str | Request]) -> str | Request:
    return await anext(source)


async def _aiter(
    items: Iterable[str | Request] | AsyncIterable[str | Request],
) -> AsyncIterator[str | Request]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


def _pairs(headers: HeadersLike | None) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)
