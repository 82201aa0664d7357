"""Per-host politeness: concurrency, pacing, and back-off when a host pushes back,
per process or, with a shared store, for a whole cluster of workers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from crawler.errors import ConnectError, FetchTimeout, FrontierError
from crawler.middleware.autorate import DEFAULT_AUTO, FLOOR, AutoOptions, AutoRate
from crawler.middleware.retry import parse_retry_after
from crawler.middleware.server_limits import read_server_limit
from crawler.models import Handler, Request, Response
from crawler.policy.checks import parse_rate
from crawler.urls import host_key

__all__ = ["RateLimit", "SharedLimits"]

_SWEEP_AT = 1024
# A cluster concurrency slot lapses this long after the request's total timeout
# (which bounds a live request), so a killed worker's slots free themselves.
LEASE_MARGIN = 10.0
UNTIMED_LEASE = 120.0  # seconds, for a request that carries no timeouts


class SharedLimits(Protocol):
    """Per-host limits kept for every worker of a crawl (``crawl.cluster.SharedPoliteness``).

    Hosts are ``host:port`` keys; failures raise ``FrontierError``, except in
    ``release``, which must not raise (its slot lapses after ``lease`` anyway)."""

    async def acquire(
        self,
        host: str,
        holder: str,
        *,
        limit: int,
        interval: float = 0.0,
        lease: float | None = None,
    ) -> float:
        """Wait for one of ``limit`` slots on ``host`` and take its next start slot,
        ``interval`` after the one before; return the seconds to wait for it."""
        ...

    async def release(self, host: str, holder: str) -> None: ...

    async def push_back(self, host: str, seconds: float) -> None:
        """No request to ``host`` starts, from any worker, for ``seconds``."""
        ...

    async def adapt(
        self, host: str, event: str, *, age: float, auto: AutoOptions, resumed: float | None
    ) -> float:
        """Move the cluster's one learned rate for ``host`` by an answer's ``event``
        (``"ok"``, ``"seen"`` or ``"back"``) to a request sent ``age`` seconds ago;
        return the rate."""
        ...


@dataclass(slots=True)
class _Host:
    semaphore: asyncio.Semaphore
    interval: float = 0.0  # seconds between starts that the configuration sets
    auto: AutoRate | None = None  # the learned rate, for a host at "auto"
    active: int = 0
    next_at: float = 0.0  # the earliest time the next request may start
    penalty: float = 0.0  # the current back-off after 429/503; 0 when the host is happy
    min_interval: float = 0.0  # a host's own floor, e.g. robots Crawl-delay
    penalty_since: float = float("-inf")  # when the current penalty was set
    server_rate: float | None = None  # the most the server's RateLimit headers allow
    server_until: float = 0.0  # ... kept this long after the last answer that said so
    refused: int = 0  # 429 and 503 answers
    paced_at: float = float("-inf")  # when a request last waited for the host's rate

    def learn(
        self, started: float, now: float, *, latency: float | None, shared: bool,
        paced: bool = False,
    ) -> str | None:  # fmt: skip
        """Tell ``auto`` what an answer says (``latency`` None: a push-back). Alone, it
        moves this process's rate; ``shared``: the event for the cluster's rate
        (``SharedLimits.adapt``): ``"back"``, ``"ok"`` (paced) or ``"seen"``."""
        auto = self.auto
        if auto is None:
            return None
        if not shared:
            if latency is None:
                auto.pushed_back(started, now)
            else:
                auto.answered(started, latency, now, paced=paced)
            return None
        if latency is None or auto.too_slow(latency, now):
            return "back"
        return "ok" if paced else "seen"

    def spacing(self) -> float:
        """Seconds between request starts: the configured or learned rate, within
        every hard limit (the server's own headers, robots ``Crawl-delay``)."""
        interval = self.interval if self.auto is None else 1.0 / self.auto.rate
        if self.server_rate is not None:
            interval = max(interval, 1.0 / self.server_rate)
        return max(interval, self.min_interval)


class RateLimit:
    """Each host (``host:port`` as written) gets at most ``per_host_concurrency``
    requests in flight and, with a ``rate``, one request start every ``1/rate``
    seconds (burst 1). A 429 or 503 pushes that host's next start back by its
    ``Retry-After`` or by a doubling back-off up to ``max_backoff``. With
    ``rate="auto"`` each host's rate is learned (``autorate.AutoRate``, from
    ``auto``'s start up to its ceiling) and a 429 or 503 lowers it instead; ``hosts``
    sets a rate or ``"auto"`` per host name (any port). On every host, the server's
    own ``RateLimit`` headers (``server_limits``) are hard limits.

    Hosts never share a lock or a queue, so a slow host delays only itself.

    With ``shared``, the limits hold for all the workers of a crawl together: the
    start slot and a cluster-wide concurrency slot are taken from ``shared`` in one
    step (after this process's own per-host semaphore, which saves asking it for
    what this process alone already exceeds), and back-offs are pushed to every
    worker. A cluster slot lapses ``LEASE_MARGIN`` seconds after the request's
    total timeout, should this worker die holding it. A cancelled wait keeps its
    start slot (the host loses one start); ``delay`` knows only this worker's
    back-offs. With ``shared`` and ``auto``, a host's learned rate is one value for
    the whole cluster (``SharedLimits.adapt``). Without ``shared`` the limits are
    this process's, kept in memory.
    """

    def __init__(
        self,
        rate: str | float | None = None,
        *,
        hosts: Mapping[str, str | float | None] | None = None,
        auto: AutoOptions = DEFAULT_AUTO,
        per_host_concurrency: int = 8,
        backoff_statuses: Collection[int] = (429, 503),
        max_backoff: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        shared: SharedLimits | None = None,
    ) -> None:
        if per_host_concurrency < 1:
            raise ValueError(
                f"per_host_concurrency must be at least 1, got {per_host_concurrency!r}"
            )
        self.interval = _interval(rate)
        self.auto = auto
        # Per host name (any port): an interval, or AUTO.
        self._overrides = {name.lower(): _interval(value) for name, value in (hosts or {}).items()}
        self._resumed: dict[str, float] = {}  # learned rates a resumed crawl starts from
        self.per_host_concurrency = per_host_concurrency
        self.backoff_statuses = frozenset(backoff_statuses)
        self.max_backoff = max_backoff
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._hosts: dict[str, _Host] = {}
        self.shared = shared
        # Holders are named uniquely across the cluster: this instance, then a count.
        self._holder = f"{secrets.token_hex(6)}:"
        self._holders = itertools.count()

    async def __call__(self, request: Request, call_next: Handler) -> Response:
        key = host_key(request.url)
        host = self._host(key)
        host.active += 1
        try:
            async with host.semaphore:
                if self.shared is not None:
                    return await self._shared_call(self.shared, key, host, request, call_next)
                started = await self._pace(host)
                response = await self._send(key, host, request, call_next, started)
                self._observe(host, response, started)
                return response
        finally:
            host.active -= 1

    async def _shared_call(
        self, shared: SharedLimits, key: str, host: _Host, request: Request, call_next: Handler
    ) -> Response:
        holder = f"{self._holder}{next(self._holders)}"
        timeouts = request.timeouts
        lease = timeouts.total + LEASE_MARGIN if timeouts is not None else UNTIMED_LEASE
        interval = host.spacing()
        wait = await shared.acquire(
            key, holder, limit=self.per_host_concurrency, interval=interval, lease=lease
        )
        try:
            if wait > 0:
                host.paced_at = self._clock()
                await self._sleep(wait)
            started = self._clock()
            response = await self._send(key, host, request, call_next, started)
            penalty, event = self._observe(host, response, started)
            if penalty is not None:  # before our slot frees: no worker starts in between
                await shared.push_back(key, penalty)
            if event is not None:
                await self._adapt(shared, key, host, event, started)
            return response
        finally:
            await shared.release(key, holder)

    async def _send(
        self, key: str, host: _Host, request: Request, call_next: Handler, started: float
    ) -> Response:
        try:
            return await call_next(request)
        except (FetchTimeout, ConnectError) as exc:  # a host that cannot keep up?
            if isinstance(exc, ConnectError) and exc.kind in ("dns", "tls"):
                raise  # a name or a certificate: no sign of load
            event = host.learn(started, self._clock(), latency=None, shared=self.shared is not None)
            if event is not None and self.shared is not None:
                # The fetch's own error is the one to raise; a Redis that is gone is
                # reported by the next acquire.
                with contextlib.suppress(FrontierError):
                    await self._adapt(self.shared, key, host, event, started)
            raise

    async def _adapt(
        self, shared: SharedLimits, key: str, host: _Host, event: str, started: float
    ) -> None:
        if host.auto is not None:
            host.auto.rate = await shared.adapt(
                key, event, age=self._clock() - started, auto=self.auto,
                resumed=self._resumed.get(key),
            )  # fmt: skip

    def rates(self) -> dict[str, float]:
        """The rate each host at ``auto`` has learned, requests per second, by ``host:port``."""
        found = dict(self._resumed)
        found.update({key: h.auto.rate for key, h in self._hosts.items() if h.auto is not None})
        return found

    def refused(self) -> dict[str, int]:
        """429 and 503 answers so far, by ``host:port``, for hosts that gave any."""
        return {key: host.refused for key, host in self._hosts.items() if host.refused}

    def resume(self, rates: Mapping[str, float]) -> None:
        """Start hosts at ``auto`` from the rates a crawl's last run learned."""
        self._resumed.update(rates)

    def set_min_interval(self, url: str, seconds: float) -> None:
        """Space request starts to ``url``'s host at least ``seconds`` apart (robots
        ``Crawl-delay``); never makes the host faster than the configured rate."""
        host = self._host(host_key(url))
        host.min_interval = max(host.min_interval, seconds)

    def delay(self, url: str) -> float:
        """Seconds until a request to ``url``'s host may start (0 when it may now)."""
        host = self._hosts.get(host_key(url))
        return max(0.0, host.next_at - self._clock()) if host else 0.0

    def _host(self, key: str) -> _Host:
        host = self._hosts.get(key)
        if host is None:
            if len(self._hosts) >= _SWEEP_AT:
                self._sweep()
            interval = self._overrides.get(key.rpartition(":")[0].lower(), self.interval)
            host = self._hosts[key] = _Host(asyncio.Semaphore(self.per_host_concurrency))
            if interval is AUTO:
                host.auto = AutoRate(self.auto, self._clock(), self._resumed.get(key))
            else:
                host.interval = interval
        return host

    def _sweep(self) -> None:
        """Forget hosts with nothing in flight and nothing to remember, so memory
        stays bounded however many hosts a crawl visits."""
        now = self._clock()
        for key in [
            k
            for k, h in self._hosts.items()
            if h.active == 0
            and h.next_at <= now
            and h.penalty == 0
            and h.min_interval == 0
            and h.server_rate is None
            and not h.refused
        ]:
            auto = self._hosts.pop(key).auto
            if auto is not None:
                self._resumed[key] = auto.rate

    async def _pace(self, host: _Host) -> float:
        """Reserve the host's next start slot and wait for it; return the start time."""
        now = self._clock()
        start = max(now, host.next_at)
        reserved = host.next_at = start + host.spacing()
        if start > now:
            host.paced_at = now
            try:
                await self._sleep(start - now)
            except asyncio.CancelledError:
                if host.next_at == reserved:  # nobody queued behind us: give the slot back
                    host.next_at = start
                raise
        return start

    def _observe(
        self, host: _Host, response: Response, started: float
    ) -> tuple[float | None, str | None]:
        """Note what the answer says of the host: its own limits, a 429/503 (or its
        end), its latency for ``auto``; return the back-off it starts, if any, and
        the event for a shared ``auto`` rate (``_Host.learn``)."""
        now = self._clock()
        wait = self._server_limit(host, response, now)
        if response.status not in self.backoff_statuses:
            host.penalty = 0.0
            paced = now - host.paced_at <= PACED_LATELY
            latency = response.elapsed or now - started
            shared = self.shared is not None
            return wait, host.learn(started, now, latency=latency, paced=paced, shared=shared)
        host.refused += 1
        advised = parse_retry_after(response.headers.get("retry-after"), self._wall_clock())
        if host.auto is not None:  # the rate answers a push-back; Retry-After still holds
            event = host.learn(started, now, latency=None, shared=self.shared is not None)
            if advised is None:
                return wait, event
            return max(self._hold(host, advised, now), wait or 0.0), event
        if started <= host.penalty_since:
            return None, None  # sent before the host last pushed back: counted already
        host.penalty_since = now
        fallback = max(2 * host.penalty, self.interval, 1.0)
        host.penalty = self._hold(host, advised if advised is not None else fallback, now)
        return host.penalty, None

    def _hold(self, host: _Host, seconds: float, now: float) -> float:
        """Start nothing on ``host`` for ``seconds`` (at most ``max_backoff``): the wait."""
        wait = min(seconds, self.max_backoff)
        host.next_at = max(host.next_at, now + wait)
        return wait

    def _server_limit(self, host: _Host, response: Response, now: float) -> float | None:
        """Apply the ``RateLimit`` headers: a rate they allow becomes the host's hard
        ceiling; a spent quota holds every start until its reset (at most
        ``max_backoff``), which is returned."""
        limit = read_server_limit(response.headers, self._wall_clock())
        if limit is None:
            if host.server_rate is not None and now >= host.server_until:
                host.server_rate = None  # the server stopped saying so a while ago
            return None
        if limit.rate is not None:
            host.server_rate = max(limit.rate, FLOOR)
            host.server_until = now + SERVER_LIMIT_KEPT
        return self._hold(host, limit.wait, now) if limit.wait else None


AUTO: Final = -1.0  # an interval that means "learn it"
SERVER_LIMIT_KEPT: Final = 60.0  # seconds a stated limit outlives the last answer stating it
PACED_LATELY: Final = 1.0  # seconds: a wait for the rate this recent means it holds requests back


def _interval(rate: str | float | None) -> float:
    """Seconds between starts for a rate: 0 for none, ``AUTO`` for ``"auto"``."""
    if rate == "auto":
        return AUTO
    per_second = parse_rate(rate)
    return 1.0 / per_second if per_second else 0.0
