"""Per-host politeness: concurrency, pacing, and back-off when a host pushes back,
per process or, with a shared store, for a whole cluster of workers."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from crawler.middleware.retry import parse_retry_after
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


@dataclass(slots=True)
class _Host:
    semaphore: asyncio.Semaphore
    active: int = 0
    next_at: float = 0.0  # the earliest time the next request may start
    penalty: float = 0.0  # the current back-off after 429/503; 0 when the host is happy
    min_interval: float = 0.0  # a host's own floor, e.g. robots Crawl-delay
    penalty_since: float = float("-inf")  # when the current penalty was set


class RateLimit:
    """Each host (``host:port`` as written) gets at most ``per_host_concurrency``
    requests in flight and, with a ``rate``, one request start every ``1/rate``
    seconds (burst 1). A 429 or 503 pushes that host's next start back by its
    ``Retry-After`` or by a doubling back-off up to ``max_backoff``.

    Hosts never share a lock or a queue, so a slow host delays only itself.

    With ``shared``, the limits hold for all the workers of a crawl together: the
    start slot and a cluster-wide concurrency slot are taken from ``shared`` in one
    step (after this process's own per-host semaphore, which saves asking it for
    what this process alone already exceeds), and back-offs are pushed to every
    worker. A cluster slot lapses ``LEASE_MARGIN`` seconds after the request's
    total timeout, should this worker die holding it. A cancelled wait keeps its
    start slot (the host loses one start); ``delay`` knows only this worker's
    back-offs. Without ``shared`` the limits are this process's, kept in memory.
    """

    def __init__(
        self,
        rate: str | float | None = None,
        *,
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
        per_second = parse_rate(rate)
        self.interval = 1.0 / per_second if per_second else 0.0
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
                response = await call_next(request)
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
        interval = max(self.interval, host.min_interval)
        wait = await shared.acquire(
            key, holder, limit=self.per_host_concurrency, interval=interval, lease=lease
        )
        try:
            if wait > 0:
                await self._sleep(wait)
            started = self._clock()
            response = await call_next(request)
            penalty = self._observe(host, response, started)
            if penalty is not None:  # before our slot frees: no worker starts in between
                await shared.push_back(key, penalty)
            return response
        finally:
            await shared.release(key, holder)

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
            host = self._hosts[key] = _Host(asyncio.Semaphore(self.per_host_concurrency))
        return host

    def _sweep(self) -> None:
        """Forget hosts with nothing in flight and nothing to remember, so memory
        stays bounded however many hosts a crawl visits."""
        now = self._clock()
        for key in [
            k
            for k, h in self._hosts.items()
            if h.active == 0 and h.next_at <= now and h.penalty == 0 and h.min_interval == 0
        ]:
            del self._hosts[key]

    async def _pace(self, host: _Host) -> float:
        """Reserve the host's next start slot and wait for it; return the start time."""
        now = self._clock()
        start = max(now, host.next_at)
        reserved = host.next_at = start + max(self.interval, host.min_interval)
        if start > now:
            try:
                await self._sleep(start - now)
            except asyncio.CancelledError:
                if host.next_at == reserved:  # nobody queued behind us: give the slot back
                    host.next_at = start
                raise
        return start

    def _observe(self, host: _Host, response: Response, started: float) -> float | None:
        """Note a 429/503 (or its end); return the back-off it starts, if any."""
        if response.status not in self.backoff_statuses:
            host.penalty = 0.0
            return None
        if started <= host.penalty_since:
            return None  # sent before the host last pushed back: that push-back is counted already
        host.penalty_since = self._clock()
        advised = parse_retry_after(response.headers.get("retry-after"), self._wall_clock())
        host.penalty = min(
            advised if advised is not None else max(2 * host.penalty, self.interval, 1.0),
            self.max_backoff,
        )
        host.next_at = max(host.next_at, self._clock() + host.penalty)
        return host.penalty
