"""Politeness shared by every worker of one crawl, kept in Redis: the per-host pace
and concurrency limits hold for the sum of all workers, and robots.txt is fetched
once per origin, not once per worker.

Keys, under the frontier's prefix ``crawl:<name>:`` (clearing a crawl clears them)::

    pace:<host>            STRING  the host's next free start slot (µs on Redis's clock);
                                   expires when that slot has passed: idle hosts cost nothing
    busy:<host>            ZSET    holder -> expiry (µs) of each request in flight to the host;
                                   the key expires with its last holder
    robots:<origin>        STRING  the origin's robots.txt answer (zlib), opaque to this
                                   module; expires when the answer does (``ttl``)
    robots-claim:<origin>  STRING  the token of the worker fetching it; expires after the
                                   claim's ``seconds``
    rate:<host>            HASH    the rate "auto" learned for the host, for every worker,
                                   and what moves it (``_cluster_scripts.ADAPT``); expires
                                   a day after its last answer

Every key has a TTL, so Redis holds state only for hosts busy in the last minute or
so and origins whose robots.txt is still fresh (``max_age``, 24 h). Under
``maxmemory`` with ``volatile-lru`` Redis evicts these keys, never the frontier's
(which have no TTL).

Every script reads the time from Redis (``TIME``): workers' clocks need not agree.
One Redis, not Redis Cluster (a host's two keys share no hash slot), as for the frontier.
Every script is safe to run twice (a reply lost, then a retry): a second ``acquire``
only rewrites the same holder and a second ``reserve`` wastes one slot, so
``from_url`` lets redis-py retry on connection errors. Redis errors become
``FrontierError``: the crawl stops, as it does when its frontier's Redis fails,
rather than carry on with per-process limits that multiply the load on every host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import secrets
import zlib
from collections.abc import Iterator
from typing import Any, Self

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from crawler.crawl._cluster_scripts import ADAPT, CLAIM, NOW, PUSH_BACK, PUT, TAKE
from crawler.errors import FrontierError
from crawler.frontier.base import CRAWL_NAME
from crawler.frontier.cancellation import keep_cancellation
from crawler.middleware.autorate import TUNING, AutoOptions
from crawler.models import AsyncResource
from crawler.urls import redact_password

__all__ = ["SharedPoliteness"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
SOCKET_TIMEOUT = 10.0
RETRIES = 2  # per command, on connection errors and timeouts: the scripts may run twice
LEASE_TIMEOUT = 120.0  # seconds a concurrency slot outlives its start when no lease is given
POLL_MIN, POLL_MAX = 0.01, 0.05  # seconds between tries for a full host's slot
_US = 1_000_000


class SharedPoliteness(AsyncResource):
    """One worker's handle on the politeness state of the crawl ``name``.

    Built on a ``redis.asyncio.Redis`` the caller owns, or with ``from_url``, which
    makes a client this object closes. ``async with`` checks that Redis answers.
    Hosts are ``host:port`` keys (``crawler.urls.host_key``), origins
    ``scheme://host:port``. ``lease_timeout`` is how long a concurrency slot is held
    when ``acquire`` is given no ``lease``.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        name: str,
        lease_timeout: float = LEASE_TIMEOUT,
        where: str = "redis",
    ) -> None:
        if not CRAWL_NAME.fullmatch(name):
            raise ValueError(f"crawl name must match {CRAWL_NAME.pattern}: {name!r}")
        if not lease_timeout > 0:
            raise ValueError(f"lease_timeout must be positive, got {lease_timeout!r}")
        self.name = name
        self.prefix = f"crawl:{name}:"
        self.lease_timeout = lease_timeout
        self._redis = redis
        self._where = where
        self._owned = False
        self._take = redis.register_script(NOW + TAKE)
        self._push_back = redis.register_script(NOW + PUSH_BACK)
        self._adapt = redis.register_script(NOW + ADAPT)
        self._claim = redis.register_script(CLAIM)
        self._put = redis.register_script(PUT)
        # The token of each claim this object holds: a claim that ran out and was
        # taken by another worker is never let go of by us.
        self._claims: dict[str, str] = {}

    @classmethod
    def from_url(cls, url: str, *, name: str, lease_timeout: float = LEASE_TIMEOUT) -> Self:
        """A handle with a client of its own, retrying a command twice on a dropped
        connection (every script here is safe to repeat)."""
        where = redact_password(url)
        try:
            client = Redis.from_url(
                url,
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=SOCKET_TIMEOUT,
                retry=Retry(ExponentialBackoff(cap=0.5), RETRIES),
            )
        except ValueError as exc:
            raise FrontierError(f"bad redis URL for cluster politeness {where}: {exc}") from exc
        shared = cls(client, name=name, lease_timeout=lease_timeout, where=where)
        shared._owned = True
        return shared

    async def open(self) -> None:
        """Fail now, with the reason, rather than at the first request."""
        with self._errors("connecting"):
            await self._redis.ping()

    async def aclose(self) -> None:
        """Close the client's connections if ``from_url`` made it (it reconnects if
        used again); a caller's client is left alone."""
        if self._owned:
            await self._redis.aclose()

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Translate redis-py's exceptions, once, into the one the crawl stops on; a
        cancel redis-py lost is raised again (``keep_cancellation``)."""
        try:
            with keep_cancellation():
                yield
        except RedisError as exc:
            raise FrontierError(f"cluster politeness at {self._where}, {doing}: {exc}") from exc

    # pacing and concurrency --------------------------------------------------------------

    async def reserve(self, host: str, interval: float) -> float:
        """Take ``host``'s next start slot for the whole cluster: the first request
        starts now, each next one ``interval`` seconds after the slot before it
        (burst 1). Returns the seconds to wait for the slot taken."""
        return await self._slot(host, interval, 0, "", 0.0) / _US

    async def acquire(
        self,
        host: str,
        holder: str,
        *,
        limit: int,
        interval: float = 0.0,
        lease: float | None = None,
    ) -> float:
        """Wait until fewer than ``limit`` holders have ``host``, then become one and
        take its next start slot (as ``reserve``), in one step: a slot is never
        taken by a request that then waits for concurrency, so starts keep their
        spacing. Returns the seconds to wait for the slot.

        ``holder`` must be unique in the cluster; ``release`` it when done. Its slot
        lapses ``lease`` seconds (``lease_timeout``) after its start, so a worker
        killed mid-request blocks nobody for longer: give at least the request's
        total timeout, which already bounds a live holder, and no refresh is needed.
        A full host is polled every 10 ms, growing to 50 ms, with jitter."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit!r}")
        lease = self.lease_timeout if lease is None else lease
        pause = POLL_MIN
        while True:
            wait = await self._slot(host, interval, limit, holder, lease)
            if wait >= 0:
                return wait / _US
            await asyncio.sleep(pause * random.uniform(0.8, 1.2))
            pause = min(pause * 1.5, POLL_MAX)

    async def release(self, host: str, holder: str) -> None:
        """Give ``holder``'s slot on ``host`` back. Never raises a Redis error: the
        slot lapses on its own, and the next ``acquire`` reports a Redis that is gone."""
        try:
            with keep_cancellation():
                await self._redis.zrem(self._key("busy", host), holder)
        except RedisError as exc:
            log.warning("cluster politeness at %s: releasing %s: %s", self._where, host, exc)

    async def push_back(self, host: str, seconds: float) -> None:
        """Start no request to ``host``, from any worker, for ``seconds`` from now
        (a 429 or 503 told one of us to back off)."""
        with self._errors(f"backing off {host}"):
            await self._push_back(
                keys=[self._key("pace", host)], args=[_micros(seconds)], client=self._redis
            )

    async def adapt(
        self, host: str, event: str, *, age: float, auto: AutoOptions, resumed: float | None
    ) -> float:
        """Move ``host``'s learned rate, one value for the whole cluster, by what one
        answer says (``event``: ``"ok"`` clean and paced, ``"seen"`` clean,
        ``"back"`` a push-back, to a request sent ``age`` seconds ago); the rate.
        ``resumed``: where a resumed crawl left the host, if Redis no longer has it."""
        args: list[Any] = [event, auto.start, auto.ceiling, _micros(age), resumed or 0, *TUNING]
        with self._errors(f"adapting the rate of {host}"):
            rate = await self._adapt(keys=[self._key("rate", host)], args=args,
                                     client=self._redis)  # fmt: skip
        return float(rate)

    async def _slot(self, host: str, interval: float, limit: int, holder: str, lease: float) -> int:
        """µs to wait for the slot taken, or -1 when the host is full (``_TAKE``)."""
        keys = [self._key("pace", host), self._key("busy", host)]
        args: list[Any] = [_micros(interval), limit, holder, _micros(lease)]
        with self._errors(f"pacing {host}"):
            return int(await self._take(keys=keys, args=args, client=self._redis))

    # robots.txt --------------------------------------------------------------------------

    async def get_robots(self, origin: str) -> tuple[bytes, float] | None:
        """The answer stored for ``origin`` and the seconds it stays fresh, or None."""
        with self._errors(f"reading robots.txt of {origin}"):
            async with self._redis.pipeline(transaction=True) as pipe:
                key = self._key("robots", origin)
                pipe.get(key)
                pipe.pttl(key)
                stored, left = await pipe.execute()
        if stored is None:
            return None
        try:
            return zlib.decompress(stored), max(int(left), 0) / 1000
        except zlib.error:
            log.warning("cluster politeness: robots.txt of %s is unreadable", origin)
            return None  # the caller fetches it again and overwrites it

    async def claim_robots(self, origin: str, seconds: float) -> bool:
        """Become, for ``seconds``, the one worker that fetches ``origin``'s
        robots.txt; False while another worker's claim lasts."""
        token = self._claims.get(origin) or secrets.token_hex(8)
        ms = max(math.ceil(seconds * 1000), 1)
        with self._errors(f"claiming robots.txt of {origin}"):
            won = await self._claim(
                keys=[self._key("robots-claim", origin)], args=[token, ms], client=self._redis
            )
        if won:
            self._claims[origin] = token
        return bool(won)

    async def put_robots(self, origin: str, answer: bytes, ttl: float) -> None:
        """Store ``answer`` for ``ttl`` seconds (nothing when ``ttl`` is 0) and let go
        of this worker's claim, if it still holds one."""
        token = self._claims.pop(origin, "")
        keys = [self._key("robots", origin), self._key("robots-claim", origin)]
        ms = max(math.ceil(ttl * 1000), 0)
        with self._errors(f"storing robots.txt of {origin}"):
            await self._put(
                keys=keys,
                args=[token, zlib.compress(answer) if ms else b"", ms],
                client=self._redis,
            )

    async def unclaim_robots(self, origin: str) -> None:
        """Let go of the claim on ``origin`` without an answer (the fetch failed), so
        another worker fetches at once instead of when the claim runs out. Never
        raises a Redis error: it is called while another error propagates, and an
        unreleased claim only runs out later."""
        try:
            await self.put_robots(origin, b"", 0)
        except FrontierError as exc:
            log.warning("%s", exc)

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"


def _micros(seconds: float) -> int:
    return max(round(seconds * _US), 0)
