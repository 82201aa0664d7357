"""Per-host politeness: concurrency, pacing, and back-off when a host pushes back."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

from crawler.middleware.chain import Handler
from crawler.middleware.retry import parse_retry_after
from crawler.models import Request, Response
from crawler.urls import host_key

__all__ = ["RateLimit", "parse_rate"]

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_UNIT_SECONDS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
}
_SWEEP_AT = 1024


def parse_rate(value: str | float | None) -> float | None:
    """Requests per second from ``"10/s"``, ``"30/m"``, ``"100/h"`` or a number; ``None``
    or ``""`` mean unlimited."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError(f"rate must be positive, got {value!r}")
        return float(value)
    match = _RATE.match(value) if isinstance(value, str) else None
    if not match or float(match[1]) <= 0:
        raise ValueError(f'rate must look like "10/s", "30/m" or "100/h", got {value!r}')
    return float(match[1]) / _UNIT_SECONDS[match[2]]


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

    async def __call__(self, request: Request, call_next: Handler) -> Response:
        host = self._host(host_key(request.url))
        host.active += 1
        try:
            async with host.semaphore:
                started = await self._pace(host)
                response = await call_next(request)
                self._observe(host, response, started)
                return response
        finally:
            host.active -= 1

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

    def _observe(self, host: _Host, response: Response, started: float) -> None:
        if response.status not in self.backoff_statuses:
            host.penalty = 0.0
            return
        if started <= host.penalty_since:
            return  # sent before the host last pushed back: that push-back is counted already
        host.penalty_since = self._clock()
        advised = parse_retry_after(response.headers.get("retry-after"), self._wall_clock())
        host.penalty = min(
            advised if advised is not None else max(2 * host.penalty, self.interval, 1.0),
            self.max_backoff,
        )
        host.next_at = max(host.next_at, self._clock() + host.penalty)
