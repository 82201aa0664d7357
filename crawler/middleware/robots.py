"""robots.txt (RFC 9309) as middleware: fetch once per origin, cache, refuse what it disallows."""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from protego import Protego
from yarl import URL

from crawler.errors import (
    BodyTooLarge,
    FetchError,
    InvalidURL,
    RequestDropped,
    TooManyRedirects,
)
from crawler.middleware.chain import Handler
from crawler.middleware.ratelimit import RateLimit
from crawler.middleware.redirects import next_request
from crawler.models import Request, Response, make_headers
from crawler.urls import origin, parse_http_url

__all__ = ["Robots"]

_PRODUCT_TOKEN = re.compile(r"[A-Za-z_-]+")  # RFC 9309 section 2.2.1
# Headers of the original request that make no sense on a plain GET for robots.txt:
# a body's headers, and conditional or partial requests that would turn a 200 into
# a 304 or a 206.
_DROP_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
        "if-range",
        "range",
    }
)


@dataclass(frozen=True, slots=True)
class _Rules:
    """What an origin's robots.txt says: a parse, or a blanket answer."""

    parser: Protego | None = None
    allow_all: bool = True


_ALLOW_ALL = _Rules(allow_all=True)
_DISALLOW_ALL = _Rules(allow_all=False)


@dataclass(slots=True)
class _Entry:
    # None as a result means "the fetching request was cancelled or failed: try again".
    future: asyncio.Future[_Rules | None]
    expires_at: float = math.inf


MAX_CRAWL_DELAY = 60.0  # seconds; a larger Crawl-delay is treated as this


class Robots:
    """Refuse requests that an origin's robots.txt disallows for ``user_agent``.

    The first request to an origin (``scheme://host:port``) fetches
    ``/robots.txt`` through ``call_next`` (so retry, pacing and timeouts apply),
    once: concurrent requests to that origin wait for the same fetch, and if the
    request doing the fetch is cancelled, one of the waiters starts it afresh.
    The fetch is a GET with the original request's headers (body, conditional and
    range headers dropped), timeouts, ``max_bytes`` and ``meta={"robots": True}``;
    up to ``max_redirects`` redirects are followed here, each through ``call_next``.

    Outcomes, per RFC 9309:

    - 2xx: parsed with protego; cached for ``max_age`` seconds.
    - 4xx (except 429), a 3xx without ``Location``, a redirect chain longer than
      ``max_redirects`` or to an invalid URL: "unavailable", everything allowed;
      cached for ``max_age``.
    - 5xx, 429, or any ``FetchError`` (unreachable, timeout, malformed):
      "unreachable", everything disallowed; cached for ``error_max_age``. 429 is
      treated as a server error, as Google does: a host that asks us to slow down
      must not be answered with an unrestricted crawl.
    - A body over ``max_bytes``: everything allowed, cached for ``error_max_age``.
      RFC 9309 asks crawlers to parse at least the first 500 KiB, but the engines
      refuse an oversized body outright rather than truncate it, so there are no
      rules to parse; treating a giant robots.txt as "unreachable" would shut
      out a whole site for a file-size quirk, so it counts as "unavailable", and
      the short expiry re-checks it sooner.

    Any other exception (``RetryLater``, ``RequestDropped`` from an inner layer,
    cancellation) propagates to the request that triggered the fetch and caches
    nothing.

    Groups are matched on the product token of ``user_agent``: its leading run of
    letters, ``_`` and ``-`` (``"crawler"`` in ``"crawler/0.1 (+https://x.org/bot)"``).
    The full string is not passed on because protego matches a group name anywhere
    after a word boundary, so the ``bot`` or ``example`` in the comment URL would
    select groups meant for other crawlers. protego still lets a group that is a
    prefix of the token (``User-agent: crawl``) apply when no exact group exists.

    With ``rate_limit``, a ``Crawl-delay`` for the agent becomes that host's
    minimum interval; ``on_sitemaps(origin, urls)`` is called after each parse
    that lists ``Sitemap:`` URLs. At most ``max_origins`` origins are cached, the
    oldest evicted first. Requests for ``/robots.txt`` itself, or with
    ``meta["robots"] is True``, pass straight through. Time is read from
    ``clock``; tests inject one.
    """

    def __init__(
        self,
        user_agent: str,
        *,
        rate_limit: RateLimit | None = None,
        max_age: float = 86400,
        error_max_age: float = 600,
        max_bytes: int = 512_000,
        max_redirects: int = 5,
        max_origins: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        on_sitemaps: Callable[[str, list[str]], None] | None = None,
    ) -> None:
        if max_redirects < 0:
            raise ValueError(f"max_redirects must be non-negative, got {max_redirects!r}")
        if max_origins < 1:
            raise ValueError(f"max_origins must be at least 1, got {max_origins!r}")
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, got {max_bytes!r}")
        self.user_agent = user_agent
        token = _PRODUCT_TOKEN.match(user_agent.strip())
        self.product_token = token[0].lower() if token else ""
        self.rate_limit = rate_limit
        self.max_age = max_age
        self.error_max_age = error_max_age
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.max_origins = max_origins
        self.on_sitemaps = on_sitemaps
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    async def __call__(self, request: Request, call_next: Handler) -> Response:
        if not await self.allowed(request, call_next):
            raise RequestDropped("robots", request=request)
        return await call_next(request)

    async def allowed(self, request: Request, call_next: Handler) -> bool:
        """Whether robots.txt lets ``user_agent`` fetch ``request.url``, fetching
        the origin's robots.txt through ``call_next`` when it is not cached."""
        if request.meta.get("robots") is True:
            return True
        try:
            url = parse_http_url(request.url)
        except ValueError:
            return True  # not ours to judge: the engine rejects it with InvalidURL
        if url.path == "/robots.txt":
            return True
        rules = await self._rules(origin(url), url, request, call_next)
        if rules.parser is None:
            return rules.allow_all
        allowed: bool = rules.parser.can_fetch(request.url, self.product_token)
        return allowed

    def cached_origins(self) -> int:
        """How many origins have a robots.txt answer cached or being fetched."""
        return len(self._entries)

    # fetching once per origin ------------------------------------------------------------

    async def _rules(self, origin: str, url: URL, request: Request, call_next: Handler) -> _Rules:
        while True:
            entry = self._entries.get(origin)
            if entry is not None and entry.future.done() and self._clock() >= entry.expires_at:
                del self._entries[origin]
                entry = None
            if entry is None:
                return await self._fetch(origin, url, request, call_next)
            # shield: a waiter's cancellation must not cancel the fetch others wait on.
            rules = await asyncio.shield(entry.future)
            if rules is not None:
                return rules
            # The request doing the fetch was cancelled or failed: take over.

    async def _fetch(self, origin: str, url: URL, request: Request, call_next: Handler) -> _Rules:
        entry = _Entry(asyncio.get_running_loop().create_future())
        while len(self._entries) >= self.max_origins:
            self._entries.popitem(last=False)
        self._entries[origin] = entry
        try:
            rules, ttl = await self._download(url, request, call_next)
        except BaseException:
            if self._entries.get(origin) is entry:
                del self._entries[origin]
            entry.future.set_result(None)
            raise
        entry.expires_at = self._clock() + ttl
        entry.future.set_result(rules)
        if rules.parser is not None:
            self._announce(origin, rules.parser)
        return rules

    async def _download(
        self, url: URL, request: Request, call_next: Handler
    ) -> tuple[_Rules, float]:
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _DROP_HEADERS]
        robots_request = Request(
            str(url.origin().with_path("/robots.txt")),
            headers=make_headers(headers),
            timeouts=request.timeouts,
            max_bytes=self.max_bytes,
            meta={"robots": True},
        )
        try:
            for hop in range(self.max_redirects + 1):
                response = await call_next(robots_request)
                if not response.is_redirect:
                    return self._judge(response)
                if hop == self.max_redirects:
                    break
                try:
                    robots_request = next_request(response)
                except InvalidURL:
                    break
        except TooManyRedirects:  # from a redirect-following layer below us
            pass
        except BodyTooLarge:
            return _ALLOW_ALL, self.error_max_age
        except FetchError:
            return _DISALLOW_ALL, self.error_max_age
        return _ALLOW_ALL, self.max_age  # too many redirects, or to nowhere: unavailable

    def _judge(self, response: Response) -> tuple[_Rules, float]:
        status = response.status
        if 200 <= status < 300:
            text = response.body.decode("utf-8", errors="replace").removeprefix("\ufeff")
            return _Rules(parser=Protego.parse(text)), self.max_age
        if status >= 500 or status == 429:
            return _DISALLOW_ALL, self.error_max_age
        return _ALLOW_ALL, self.max_age

    def _announce(self, origin: str, parser: Protego) -> None:
        """Hand a fresh parse's Crawl-delay and sitemaps to whoever asked for them."""
        if self.rate_limit is not None:
            delay = parser.crawl_delay(self.product_token)
            if delay and delay > 0:
                # Honoured, but not to the point of letting one line stall a host for days.
                self.rate_limit.set_min_interval(origin, min(float(delay), MAX_CRAWL_DELAY))
        if self.on_sitemaps is not None:
            sitemaps = list(parser.sitemaps)
            if sitemaps:
                self.on_sitemaps(origin, sitemaps)
