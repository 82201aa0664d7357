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
    BlockedAddress,
    BodyTooLarge,
    FetchError,
    InvalidURL,
    RequestDropped,
    RetryLater,
    TooManyRedirects,
)
from crawler.middleware.ratelimit import RateLimit
from crawler.middleware.redirects import next_request
from crawler.middleware.robots_rules import (
    ALLOW_ALL,
    Fetched,
    RobotsStore,
    Rules,
    judge,
    reworded,
    shared_answer,
    status_error,
    unreachable,
)
from crawler.models import Handler, Lineage, Request, Response, make_headers
from crawler.urls import origin, origin_and_path

__all__ = ["Robots", "RobotsStore"]

# Groups are matched on the product token of the user agent (RFC 9309 2.2.1): its
# leading run of letters, "_" and "-" ("crawler" in "crawler/0.1 (+https://x.org/bot)").
# Not the full string: protego matches a group name anywhere after a word boundary,
# so the "bot" or "example" in the comment URL would select other crawlers' groups.
# protego still lets a group that is a prefix of the token ("User-agent: crawl")
# apply when no exact group exists.
_PRODUCT_TOKEN = re.compile(r"[A-Za-z_-]+")
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


@dataclass(slots=True)
class _Entry:
    # None as a result means "the fetching request was cancelled or failed: try again".
    future: asyncio.Future[Rules | None]
    expires_at: float = math.inf


MAX_CRAWL_DELAY = 60.0  # seconds; a larger Crawl-delay is treated as this
ERROR_MAX_AGE = 600.0  # seconds an unreachable or oversized robots.txt is trusted
PARSE_BYTES = 500 * 1024  # RFC 9309 2.5: parse at least the first 500 KiB
DOWNLOAD_FACTOR = 4  # robots.txt bodies up to this many times PARSE_BYTES are read
CLAIM_TIMEOUT = 30.0  # seconds other workers wait for one worker's robots.txt fetch
ROBOTS = Lineage(kind="robots")


class Robots:
    """Refuse requests that an origin's robots.txt disallows for ``user_agent``.

    The first request to an origin (``scheme://host:port``) fetches
    ``/robots.txt`` through ``call_next`` (so retry, pacing and timeouts apply),
    once: concurrent requests to that origin wait for the same fetch, and if the
    request doing the fetch is cancelled, one of the waiters starts it afresh.
    The fetch is a GET with the original request's headers (body, conditional and
    range headers dropped), timeouts, ``max_download`` and lineage kind ``robots``;
    up to ``max_redirects`` redirects are followed here, each through ``call_next``.

    Outcomes, per RFC 9309:

    - 2xx: the first ``max_bytes`` (500 KiB, cut at a line break) parsed with
      protego; cached for ``max_age`` seconds. The body is downloaded up to
      ``max_download`` bytes (four times ``max_bytes``), because the engines refuse
      an oversized body rather than truncate it.
    - 4xx (except 429), a 3xx without ``Location``, a redirect chain longer than
      ``max_redirects`` or to an invalid URL, a blocked address: "unavailable",
      everything allowed; cached for ``max_age`` (a blocked address for
      ``error_max_age``: the page request meets the same guard and says so).
    - A body over ``max_download``: everything allowed, cached for
      ``error_max_age``: there are no rules to parse, and shutting a whole site
      out for a file-size quirk would be worse.
    - 5xx, 429, or any other ``FetchError`` (unreachable, timeout, malformed), or a
      ``RetryLater`` from an inner retry layer: "unreachable", everything
      disallowed, cached for ``error_max_age`` (default ``ERROR_MAX_AGE``; a
      shorter ``Retry-After`` wins). 429 counts as a server error, as Google does:
      a host that asks us to slow down must not be answered with an unrestricted
      crawl.

    While an origin is unreachable its requests are not refused for good: with
    ``defer`` (the default, what a crawl needs) each raises ``RetryLater`` with
    ``not_before`` at the cached answer's expiry and the reason as ``__cause__``
    (``robots.txt unreachable: 503 Service Unavailable``), so a brief outage
    delays the origin instead of ending its crawl; the crawler re-queues the
    request and reports the cause once its tries run out. ``defer=False`` (for
    code embedding a ``Fetcher``, which has no queue to defer to) raises
    ``RequestDropped("robots")`` with the same ``__cause__``.

    Any other exception (``RequestDropped`` from an inner layer, a bug,
    cancellation) propagates to the request that triggered the fetch and caches
    nothing.

    Groups are matched on the product token of ``user_agent`` (see ``_PRODUCT_TOKEN``).

    With ``rate_limit``, a ``Crawl-delay`` for the agent becomes that host's
    minimum interval; ``on_sitemaps(origin, urls)`` is called after each parse
    that lists ``Sitemap:`` URLs. At most ``max_origins`` origins are cached, the
    oldest evicted first. Requests for ``/robots.txt`` itself, or of lineage kind
    ``robots``, pass straight through. Time is read from
    ``clock`` and ``not_before`` from ``wall_clock``; tests inject both.

    With ``shared`` (the workers of one crawl), an origin missing here is taken
    from the store, fetched by the one worker that claims it (``shared_answer``);
    the cache here stays in front: a worker asks the store once per origin and
    lifetime.
    """

    def __init__(
        self,
        user_agent: str,
        *,
        rate_limit: RateLimit | None = None,
        max_age: float = 86400,
        error_max_age: float | None = None,
        max_bytes: int = PARSE_BYTES,
        max_download: int | None = None,
        max_redirects: int = 5,
        max_origins: int = 10_000,
        defer: bool = True,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        on_sitemaps: Callable[[str, list[str]], None] | None = None,
        shared: RobotsStore | None = None,
        claim_timeout: float = CLAIM_TIMEOUT,
    ) -> None:
        if max_redirects < 0:
            raise ValueError(f"max_redirects must be non-negative, got {max_redirects!r}")
        if max_origins < 1:
            raise ValueError(f"max_origins must be at least 1, got {max_origins!r}")
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, got {max_bytes!r}")
        max_download = DOWNLOAD_FACTOR * max_bytes if max_download is None else max_download
        if max_download < max_bytes:
            raise ValueError(f"max_download must be at least max_bytes, got {max_download!r}")
        if not claim_timeout > 0:
            raise ValueError(f"claim_timeout must be positive, got {claim_timeout!r}")
        self.user_agent = user_agent
        token = _PRODUCT_TOKEN.match(user_agent.strip())
        self.product_token = token[0].lower() if token else ""
        self.rate_limit = rate_limit
        self.max_age = max_age
        # Read at construction, not import: a test can lower the module's default.
        self.error_max_age = ERROR_MAX_AGE if error_max_age is None else error_max_age
        self.max_bytes = max_bytes
        self.max_download = max_download
        self.max_redirects = max_redirects
        self.max_origins = max_origins
        self.defer = defer
        self.on_sitemaps = on_sitemaps
        self.shared = shared
        self.claim_timeout = claim_timeout
        self._clock = clock
        self._wall_clock = wall_clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    async def __call__(self, request: Request, call_next: Handler) -> Response:
        if not await self.allowed(request, call_next):
            raise RequestDropped("robots", request=request)
        return await call_next(request)

    async def allowed(self, request: Request, call_next: Handler) -> bool:
        """Whether robots.txt lets ``user_agent`` fetch ``request.url``, fetching
        the origin's robots.txt through ``call_next`` when it is not cached."""
        if request.lineage.kind == "robots":
            return True
        try:
            key, path = origin_and_path(request.url)
        except ValueError:
            return True  # not ours to judge: the engine rejects it with InvalidURL
        if path == "/robots.txt":
            return True
        rules, expires_at = await self._rules(key, request, call_next)
        if rules.unreachable is not None:
            self._refuse_for_now(request, rules.unreachable, expires_at)
        return rules.allows(request.url, self.product_token)

    def known_verdict(self, url: str) -> bool | None:
        """Whether robots.txt lets ``user_agent`` fetch ``url``, when the origin's answer
        is cached and fresh and disallows nothing for being unreachable; ``None`` when
        only ``allowed`` can tell. A crawl asks this of the links it finds, so a page
        that links a disallowed URL does not queue a request only to drop it."""
        try:
            entry = self._entries.get(origin(url))
        except ValueError:
            return None
        fresh = entry is not None and entry.future.done() and self._clock() < entry.expires_at
        rules = entry.future.result() if entry is not None and fresh else None
        if rules is None or rules.unreachable is not None or url.endswith("/robots.txt"):
            return None  # a robots.txt is always allowed: the middleware says so
        return rules.allows(url, self.product_token)

    def _refuse_for_now(self, request: Request, cause: FetchError, expires_at: float) -> None:
        """robots.txt could not be fetched: try ``request`` again when the answer expires."""
        if not self.defer:
            raise RequestDropped("robots", request=request) from cause
        wait = max(expires_at - self._clock(), 0.0)
        raise RetryLater(
            self._wall_clock() + wait, request=request, reason=f"{cause} (retry in {wait:.0f}s)"
        ) from cause

    def cached_origins(self) -> int:
        """How many origins have a robots.txt answer cached or being fetched."""
        return len(self._entries)

    # fetching once per origin ------------------------------------------------------------

    async def _rules(
        self, origin: str, request: Request, call_next: Handler
    ) -> tuple[Rules, float]:
        """The origin's rules and when they expire (on ``clock``)."""
        while True:
            entry = self._entries.get(origin)
            if entry is not None and entry.future.done() and self._clock() >= entry.expires_at:
                del self._entries[origin]
                entry = None
            if entry is None:
                entry = await self._fetch(origin, request, call_next)
            # shield: a waiter's cancellation must not cancel the fetch others wait on.
            rules = await asyncio.shield(entry.future)
            if rules is not None:
                return rules, entry.expires_at
            # The request doing the fetch was cancelled or failed: take over.

    async def _fetch(self, origin: str, request: Request, call_next: Handler) -> _Entry:
        entry = _Entry(asyncio.get_running_loop().create_future())
        while len(self._entries) >= self.max_origins:
            self._entries.popitem(last=False)
        self._entries[origin] = entry
        try:
            if self.shared is None:
                rules, ttl, _ = await self._download(request, call_next)
            else:
                rules, ttl = await shared_answer(
                    self.shared,
                    origin,
                    lambda: self._download(request, call_next),
                    self.claim_timeout,
                )
        except BaseException:
            if self._entries.get(origin) is entry:
                del self._entries[origin]
            entry.future.set_result(None)
            raise
        entry.expires_at = self._clock() + ttl
        entry.future.set_result(rules)
        if rules.parser is not None:
            self._announce(origin, rules.parser)
        return entry

    async def _download(self, request: Request, call_next: Handler) -> Fetched:
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _DROP_HEADERS]
        robots_request = Request(
            str(URL(request.url).origin().with_path("/robots.txt")),
            headers=make_headers(headers),
            timeouts=request.timeouts,
            max_bytes=self.max_download,
            lineage=ROBOTS,
        )
        try:
            for hop in range(self.max_redirects + 1):
                response = await call_next(robots_request)
                if not response.is_redirect:
                    return judge(response, self.max_bytes, self.max_age, self.error_max_age)
                if hop == self.max_redirects:
                    break
                try:
                    robots_request = next_request(response)
                except InvalidURL:
                    break
        except TooManyRedirects:  # from a redirect-following layer below us
            pass
        except (BodyTooLarge, BlockedAddress):
            return Fetched(ALLOW_ALL, self.error_max_age)
        except FetchError as exc:
            return Fetched(unreachable(reworded(exc)), self.error_max_age)
        except RetryLater as later:  # an inner Retry would rather wait than sleep: so do we
            advised = max(later.not_before - self._wall_clock(), 0.0)
            cause: FetchError
            if later.response is not None:
                cause = status_error(later.response)
            elif isinstance(later.__cause__, FetchError):
                cause = reworded(later.__cause__)
            else:
                cause = FetchError(f"robots.txt unreachable: {later}", request=later.request)
            return Fetched(unreachable(cause), min(advised, self.error_max_age))
        return Fetched(ALLOW_ALL, self.max_age)  # too many redirects, or to nowhere

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
