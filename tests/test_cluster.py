"""Politeness shared by several workers through a real Redis: each "worker" has its own
Redis client and its own RateLimit or Robots; the rate and concurrency tests run the
workers in threads, each with its own event loop and engine, as separate processes would.
The server measures what reaches it: arrival times, requests in flight, hits."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from redis.asyncio import Redis

from crawler.crawl.cluster import SharedPoliteness
from crawler.engines import create_engine
from crawler.errors import FrontierError, HTTPStatusError, RetryLater
from crawler.middleware import RateLimit, Robots, Timeout, compose
from crawler.middleware.autorate import AutoOptions
from crawler.middleware.chain import Handler
from crawler.models import Request
from tests.server import LoopbackServer
from tests.test_autorate import LimitedSite

NAME = "polite"
UA = "crawler/0.1 (+https://example.org/bot)"
RULES = "User-agent: *\nDisallow: /private\n"


class PoliteServer(LoopbackServer):
    """Records each path's arrival times and the peak of requests in flight; holds
    ``/robots.txt`` until ``open_robots()`` and answers it with ``robots``."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.in_flight = 0
        self.peak = 0
        self.robots: tuple[int, str] = (200, RULES)
        self._robots_gate = asyncio.Event()  # used on the server's own loop only

    def open_robots(self) -> None:
        self._loop.call_soon_threadsafe(self._robots_gate.set)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/robots.txt":
            await asyncio.wait_for(self._robots_gate.wait(), 10)
            status, text = self.robots
            return web.Response(status=status, text=text)
        with self._lock:
            self.arrivals[request.path].append(time.monotonic())
        self.in_flight += 1  # on the server's loop: no lock needed
        self.peak = max(self.peak, self.in_flight)
        try:
            return await super()._dispatch(request)
        finally:
            self.in_flight -= 1


@pytest.fixture
def polite_server() -> Iterator[PoliteServer]:
    with PoliteServer() as running:
        yield running


def most_in_one_second(times: list[float]) -> int:
    """The most arrivals in any closed one-second window."""
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t <= start + 1.0) for i, start in enumerate(times))


def run_workers(
    count: int, work: Callable[[int, SharedPoliteness], Awaitable[Any]], url: str
) -> list[Any]:
    """``work(i, shared)`` in ``count`` threads, each with its own loop and Redis
    client, started together; re-raises the first failure."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    async def main(i: int) -> None:
        async with SharedPoliteness.from_url(url, name=NAME) as shared:
            await asyncio.to_thread(barrier.wait, 10)
            results[i] = await work(i, shared)

    def thread(i: int) -> None:
        try:
            asyncio.run(main(i))
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    if errors:
        raise errors[0]
    return results


async def send_all(limit: RateLimit, urls: list[str]) -> list[int]:
    async with create_engine("aiohttp") as engine:
        handler = compose([limit, Timeout(10)], engine.send)
        responses = await asyncio.gather(*(handler(Request(url)) for url in urls))
    return [response.status for response in responses]


async def polite_keys(redis_url: str) -> dict[str, int]:
    """Every key the politeness store wrote, with its remaining lifetime in ms."""
    client = Redis.from_url(redis_url)
    try:
        return {
            key.decode(): await client.pttl(key) for key in await client.keys(f"crawl:{NAME}:*")
        }
    finally:
        await client.aclose()


# pacing and concurrency ----------------------------------------------------------------


def test_three_workers_together_keep_to_the_rate(
    polite_server: PoliteServer, redis_url: str
) -> None:
    per_worker = 21

    async def work(i: int, shared: SharedPoliteness) -> list[int]:
        urls = [polite_server.url(f"/ok?worker={i}&n={n}") for n in range(per_worker)]
        return await send_all(RateLimit("20/s", shared=shared), urls)

    statuses = run_workers(3, work, redis_url)
    assert statuses == [[200] * per_worker] * 3
    arrivals = sorted(polite_server.arrivals["/ok"])
    assert len(arrivals) == 3 * per_worker
    peak = most_in_one_second(arrivals)
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    print(
        f"\nmost in one second: {peak}; rate: {rate:.2f}/s over {arrivals[-1] - arrivals[0]:.2f} s"
    )
    assert peak <= 22
    assert rate >= 18.0  # paced, not merely slow


def test_the_concurrency_limit_holds_for_the_cluster(
    polite_server: PoliteServer, redis_url: str
) -> None:
    async def work(i: int, shared: SharedPoliteness) -> list[int]:
        urls = [polite_server.url(f"/slow?delay=0.2&worker={i}&n={n}") for n in range(4)]
        return await send_all(RateLimit(None, per_host_concurrency=2, shared=shared), urls)

    statuses = run_workers(3, work, redis_url)
    assert statuses == [[200] * 4] * 3
    assert polite_server.hits_for("/slow") == 12
    assert polite_server.peak == 2  # never more, and the limit is used in full


async def test_keys_expire_so_redis_does_not_grow(
    polite_server: PoliteServer, redis_url: str
) -> None:
    async with SharedPoliteness.from_url(redis_url, name=NAME) as shared:
        limit = RateLimit("10/s", shared=shared)
        await send_all(limit, [polite_server.url(f"/ok?n={n}") for n in range(3)])
        await shared.push_back("example.test:80", 30)
        await shared.acquire("example.test:80", "held", limit=1, lease=60)
    keys = await polite_keys(redis_url)
    assert f"crawl:{NAME}:pace:example.test:80" in keys
    assert f"crawl:{NAME}:busy:example.test:80" in keys  # held for 30 s of waiting + 60 s
    assert f"crawl:{NAME}:busy:127.0.0.1:{polite_server.port}" not in keys  # all released
    assert all(0 < ttl <= 91_000 for ttl in keys.values())


async def test_reserve_spaces_starts_across_workers(redis_url: str) -> None:
    async with (
        SharedPoliteness.from_url(redis_url, name=NAME) as a,
        SharedPoliteness.from_url(redis_url, name=NAME) as b,
    ):
        waits = [
            await a.reserve("h:1", 0.5),
            await b.reserve("h:1", 0.5),
            await a.reserve("h:1", 0.5),
        ]
        other = await b.reserve("h:2", 0.5)
    assert waits[0] == pytest.approx(0.0, abs=0.05)
    assert waits[1] == pytest.approx(0.5, abs=0.05)
    assert waits[2] == pytest.approx(1.0, abs=0.05)
    assert other == pytest.approx(0.0, abs=0.05)  # hosts are apart


async def test_a_released_slot_frees_at_once_a_dead_holders_after_its_lease(redis_url: str) -> None:
    async with (
        SharedPoliteness.from_url(redis_url, name=NAME) as dead,
        SharedPoliteness.from_url(redis_url, name=NAME) as alive,
    ):
        await alive.acquire("h:1", "first", limit=1, lease=60)
        await alive.release("h:1", "first")
        started = time.monotonic()
        await dead.acquire("h:1", "killed", limit=1, lease=0.5)  # never released
        freed_at_once = time.monotonic() - started
        await alive.acquire("h:1", "next", limit=1, lease=60)
        waited = time.monotonic() - started
    assert freed_at_once < 0.2
    assert 0.45 <= waited < 1.5


async def test_a_429_seen_by_one_worker_delays_the_others(
    polite_server: PoliteServer, redis_url: str
) -> None:
    async with (
        SharedPoliteness.from_url(redis_url, name=NAME) as a,
        SharedPoliteness.from_url(redis_url, name=NAME) as b,
    ):
        assert await send_all(
            RateLimit(None, shared=a), [polite_server.url("/retry-after?value=1")]
        ) == [429]
        assert await send_all(RateLimit(None, shared=b), [polite_server.url("/ok")]) == [200]
    gap = polite_server.arrivals["/ok"][0] - polite_server.arrivals["/retry-after"][0]
    assert gap >= 0.95  # b never saw the 429; without the shared push-back it goes at once


async def test_a_dead_redis_stops_the_crawl_with_a_frontier_error(closed_port: int) -> None:
    shared = SharedPoliteness.from_url(f"redis://127.0.0.1:{closed_port}/0", name=NAME)
    limit = RateLimit("10/s", shared=shared)

    async def never(request: Request) -> Any:
        raise AssertionError("sent without asking Redis")

    with pytest.raises(FrontierError, match=r"cluster politeness at redis://127\.0\.0\.1"):
        await limit(Request("http://a.test/"), never)
    with pytest.raises(FrontierError, match="connecting"):
        await shared.open()
    await shared.aclose()


def test_constructor_validates() -> None:
    client = Redis()
    with pytest.raises(ValueError, match="crawl name"):
        SharedPoliteness(client, name="a:b")
    with pytest.raises(ValueError, match="lease_timeout"):
        SharedPoliteness(client, name="ok", lease_timeout=0)


# robots.txt ----------------------------------------------------------------------------


class CountingStore(SharedPoliteness):
    """Calls ``on_refused(self)`` when a claim is refused: another worker is fetching."""

    def __init__(self, redis: Redis, on_refused: Callable[[SharedPoliteness], None]) -> None:
        super().__init__(redis, name=NAME)
        self.on_refused = on_refused

    async def claim_robots(self, origin: str, seconds: float) -> bool:
        won = await super().claim_robots(origin, seconds)
        if not won:
            self.on_refused(self)
        return won


async def ask_robots(
    polite_server: PoliteServer, redis_url: str, paths: list[str]
) -> list[list[bool | BaseException]]:
    """Three workers ask about ``paths`` at once; robots.txt is answered only after
    two of them were refused the claim, so they wait for the third's answer."""
    refused: set[int] = set()

    def on_refused(store: SharedPoliteness) -> None:
        refused.add(id(store))
        if len(refused) == 2:
            polite_server.open_robots()

    clients = [Redis.from_url(redis_url) for _ in range(3)]
    stores = [CountingStore(client, on_refused) for client in clients]
    async with create_engine("aiohttp") as engine:

        async def worker(store: SharedPoliteness) -> list[bool | BaseException]:
            limit = RateLimit(None, shared=store)
            robots = Robots(UA, rate_limit=limit, shared=store)
            handler: Handler = compose([limit, Timeout(10)], engine.send)
            answers = await asyncio.gather(
                *(robots.allowed(Request(polite_server.url(path)), handler) for path in paths),
                return_exceptions=True,
            )
            return list(answers)

        try:
            return await asyncio.gather(*(worker(store) for store in stores))
        finally:
            for client in clients:
                await client.aclose()


async def test_robots_txt_is_fetched_once_for_all_workers(
    polite_server: PoliteServer, redis_url: str
) -> None:
    answers = await ask_robots(polite_server, redis_url, ["/ok", "/private/x"])
    assert answers == [[True, False]] * 3
    assert polite_server.hits_for("/robots.txt") == 1
    keys = await polite_keys(redis_url)
    robots_key = f"crawl:{NAME}:robots:http://127.0.0.1:{polite_server.port}"
    assert robots_key in keys  # the claim is gone, the answer stays for max_age
    assert f"crawl:{NAME}:robots-claim:http://127.0.0.1:{polite_server.port}" not in keys
    assert 86_000_000 < keys[robots_key] <= 86_400_000


async def test_an_unreachable_robots_txt_defers_every_worker_for_the_same_reason(
    polite_server: PoliteServer, redis_url: str
) -> None:
    polite_server.robots = (503, "down")
    answers = await ask_robots(polite_server, redis_url, ["/ok"])
    assert polite_server.hits_for("/robots.txt") == 1
    for (answer,) in answers:
        assert isinstance(answer, RetryLater)
        cause = answer.__cause__
        assert isinstance(cause, HTTPStatusError)  # rebuilt from the store: the same kind
        assert str(cause) == "robots.txt unreachable: 503 Service Unavailable"
        assert cause.response.status == 503


async def test_a_claimer_that_fails_lets_another_worker_fetch(
    polite_server: PoliteServer, redis_url: str
) -> None:
    polite_server.open_robots()
    async with (
        SharedPoliteness.from_url(redis_url, name=NAME) as a,
        SharedPoliteness.from_url(redis_url, name=NAME) as b,
    ):

        async def broken(request: Request) -> Any:
            raise RuntimeError("a bug below robots")

        with pytest.raises(RuntimeError):
            await Robots(UA, shared=a).allowed(Request(polite_server.url("/ok")), broken)
        assert not [key for key in await polite_keys(redis_url) if "robots" in key]  # let go
        async with create_engine("aiohttp") as engine:
            robots = Robots(UA, shared=b, claim_timeout=60)  # no waiting for a claim that lasts
            assert await robots.allowed(Request(polite_server.url("/ok")), engine.send)
            assert not await robots.allowed(Request(polite_server.url("/private/x")), engine.send)
    assert polite_server.hits_for("/robots.txt") == 1


async def test_an_answer_stored_between_look_and_claim_is_used(
    polite_server: PoliteServer, redis_url: str
) -> None:
    polite_server.open_robots()
    url = polite_server.url("/private/x")
    async with (
        create_engine("aiohttp") as engine,
        SharedPoliteness.from_url(redis_url, name=NAME) as other,
    ):

        class Unlucky(SharedPoliteness):
            """Its first look finds nothing; right after it, another worker stores
            its answer and lets go of its claim."""

            looked = False

            async def get_robots(self, origin: str) -> tuple[bytes, float] | None:
                if self.looked:
                    return await super().get_robots(origin)
                self.looked = True
                assert not await Robots(UA, shared=other).allowed(Request(url), engine.send)
                return None

        client = Redis.from_url(redis_url)
        try:
            assert not await Robots(UA, shared=Unlucky(client, name=NAME)).allowed(
                Request(url), engine.send
            )
        finally:
            await client.aclose()
    assert polite_server.hits_for("/robots.txt") == 1


# an adaptive rate, one for the cluster ---------------------------------------------------


def test_two_workers_at_auto_share_one_rate_under_a_20_per_second_host(redis_url: str) -> None:
    seconds, warm_up = 20.0, 8.0  # from 4/s at x1.5 a second, 20/s within 4 s

    async def work(i: int, shared: SharedPoliteness) -> float:
        limits = RateLimit("auto", shared=shared, auto=AutoOptions(start=4.0, ceiling=50.0))
        async with create_engine("aiohttp") as engine:
            handler = compose([limits, Timeout(10)], engine.send)
            end = time.monotonic() + seconds

            async def keep_asking() -> None:
                while time.monotonic() < end:
                    await handler(Request(site.url(f"/p/{i}.html")))

            await asyncio.gather(*(keep_asking() for _ in range(4)))
        return limits.rates()[f"127.0.0.1:{site.port}"]

    with LimitedSite(pages=2, allows=20) as site:
        learned = run_workers(2, work, redis_url)
        arrivals = list(site.arrivals)
    first = arrivals[0][0]
    settled = [status for at, status in arrivals if first + warm_up <= at < first + seconds]
    refused = settled.count(429)
    assert refused / len(settled) < 0.03, f"{refused} of {len(settled)} refused"
    assert (len(settled) - refused) / (seconds - warm_up) > 14.0
    shared = asyncio.run(shared_rate(redis_url, f"127.0.0.1:{site.port}"))
    # One rate for the cluster: each worker paces by the value the last answer gave it.
    assert all(abs(rate - shared) <= 0.2 * shared for rate in learned), (learned, shared)
    assert 10.0 <= shared <= 22.0


async def shared_rate(redis_url: str, host: str) -> float:
    client = Redis.from_url(redis_url)
    try:
        return float(await client.hget(f"crawl:{NAME}:rate:{host}", "r"))
    finally:
        await client.aclose()
