"""The embeddable Fetcher: an engine wrapped in the policy chain, nothing else.

FollowRedirects ▶ [your middleware] ▶ Retry ▶ RateLimit ▶ Concurrency ▶ Timeout ▶ Engine.send
"""

from __future__ import annotations

import asyncio
import json as jsonlib
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from crawler.engines import ENGINES, Engine, EngineOptions, create_engine
from crawler.engines._errors import require_http_url
from crawler.engines._slots import slot_count
from crawler.errors import ConfigError, FetchError
from crawler.guard import address_guard
from crawler.middleware import (
    Concurrency,
    FollowRedirects,
    Middleware,
    RateLimit,
    Retry,
    Timeout,
    compose,
)
from crawler.middleware.chain import Handler
from crawler.middleware.ratelimit import parse_rate
from crawler.middleware.retry import DEFAULT_RETRY_STATUSES
from crawler.models import (
    DEFAULT_MAX_BYTES,
    HeadersLike,
    Request,
    Response,
    Timeouts,
    make_headers,
)
from crawler.resources import AsyncResource
from crawler.urls import parse_http_url

__all__ = ["DEFAULT_USER_AGENT", "Fetcher", "Result"]

DEFAULT_USER_AGENT = "crawler/0.1 (+https://example.org/bot)"


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

    Any HTTP status is a response; only failures to get one raise (``FetchError``
    subclasses). A Fetcher can be opened again after it was closed. ``verify_tls``
    may name a PEM file of the CAs to trust instead of the system's.

    ``block_private=True`` is for URLs you do not control: no connection is made
    to a loopback, private, link-local, multicast or reserved address, however
    the URL spells it, whatever DNS answers, on any redirect hop
    (``BlockedAddress``). ``allow_private`` keeps some reachable: addresses,
    ``address:port`` or networks (``["127.0.0.1:8099", "10.1.2.0/24"]``).

    ``body_memory`` bounds what the bodies being read hold at once: past 256 KiB a
    body needs a share of it until its response is garbage. Keeping many large
    responses alive then makes later large fetches wait (up to their timeout).
    """

    def __init__(
        self,
        engine: str | Engine = "aiohttp",
        *,
        concurrency: int = 64,
        per_host_concurrency: int = 8,
        timeout: float | Timeouts = 30.0,
        retries: int = 0,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        retry_statuses: Iterable[int] = DEFAULT_RETRY_STATUSES,
        rate_limit: str | float | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        headers: HeadersLike | None = None,
        cookies: Mapping[str, str] | None = None,
        proxy: str | None = None,
        verify_tls: bool | str = True,
        block_private: bool = False,
        allow_private: Iterable[str] = (),
        max_bytes: int = DEFAULT_MAX_BYTES,
        body_memory: int | None = None,
        max_redirects: int = 10,
        follow_redirects: bool = True,
        middleware: Sequence[Middleware] = (),
    ) -> None:
        if isinstance(engine, str) and engine not in ENGINES:
            raise ConfigError("engine", engine, "one of " + ", ".join(sorted(ENGINES)))
        _check_int("concurrency", concurrency, 1)
        _check_int("per_host_concurrency", per_host_concurrency, 1)
        _check_int("retries", retries, 0)
        _check_int("max_bytes", max_bytes, 1)
        if body_memory is not None:
            _check_int("body_memory", body_memory, 1)
        _check_int("max_redirects", max_redirects, 0)
        try:
            self.timeouts = Timeouts.of(timeout)
        except (TypeError, ValueError):
            raise ConfigError("timeout", timeout, "a positive number of seconds") from None
        try:
            parse_rate(rate_limit)
        except ValueError:
            raise ConfigError("rate_limit", rate_limit, 'a rate like "10/s" or "30/m"') from None
        if proxy:
            try:
                parse_http_url(proxy)
            except ValueError:
                raise ConfigError("proxy", proxy, "an http:// or https:// URL") from None
        self._engine_spec = engine
        self._options = EngineOptions(
            concurrency=concurrency,
            verify_tls=verify_tls,
            proxy=proxy or None,
            cookies=dict(cookies or {}),
            guard=address_guard(block_private, allow_private, proxy=proxy),
            large_bodies=None if body_memory is None else slot_count(body_memory, max_bytes),
        )
        if block_private and not isinstance(engine, str):
            raise ConfigError(
                "block_private", block_private, "an engine name (a ready engine has its own guard)"
            )
        self.concurrency = concurrency
        self.max_bytes = max_bytes
        self.headers = [("User-Agent", user_agent), *_pairs(headers)]
        self._policy: list[Middleware] = [
            *([FollowRedirects(max_redirects)] if follow_redirects else []),
            *middleware,
            *(
                [
                    Retry(
                        retries,
                        backoff=backoff,
                        max_backoff=max_backoff,
                        statuses=frozenset(retry_statuses),
                    )
                ]
                if retries
                else []
            ),
        ]
        self._rate_limit = rate_limit
        self._max_backoff = max_backoff
        self._per_host_concurrency = per_host_concurrency
        self._engine: Engine | None = None
        self._handler: Handler | None = None

    async def open(self) -> None:
        if self._engine is None:
            spec = self._engine_spec
            engine = create_engine(spec, self._options) if isinstance(spec, str) else spec
            await engine.__aenter__()
            # Per-host state is per opening: a reopened Fetcher starts polite and fresh.
            rate_limit = RateLimit(
                self._rate_limit,
                per_host_concurrency=self._per_host_concurrency,
                max_backoff=self._max_backoff,
            )
            chain: list[Middleware] = [
                *self._policy, rate_limit, Concurrency(self.concurrency), Timeout(self.timeouts)
            ]  # fmt: skip
            self._engine, self._handler = engine, compose(chain, engine.send)

    async def aclose(self) -> None:
        engine, self._engine, self._handler = self._engine, None, None
        if engine is not None:
            await engine.aclose()

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
        merged = [(k, v) for k, v in self.headers if k.lower() not in own] + extra
        return Request(
            url=url,
            method=method,
            headers=make_headers(merged),
            body=body.encode() if isinstance(body, str) else body,
            timeouts=None if timeout is None else Timeouts.of(timeout),
            max_bytes=self.max_bytes,
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
                if pull is None and not exhausted and len(fetches) < self.concurrency:
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


def _check_int(key: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        expected = "a positive integer" if minimum == 1 else "a non-negative integer"
        raise ConfigError(key, value, expected)
