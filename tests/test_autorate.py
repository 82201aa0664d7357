"""``rate_limit.per_host = "auto"`` on a fake clock: simulated hosts that refuse past a
rate, or slow down with load, against the limiter as a crawl uses it; and the hard
limits servers state in their headers."""

from __future__ import annotations

import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web
from multidict import CIMultiDict

from crawler.config import Config, parse_config
from crawler.crawl import Crawler
from crawler.errors import ConnectError, FetchTimeout
from crawler.middleware import RateLimit
from crawler.middleware.autorate import AutoOptions
from crawler.middleware.server_limits import ServerLimit, read_server_limit
from crawler.models import Request, Response
from tests.fakes import FakeTime
from tests.rounds_site import RoundsSite

WARM_UP = 5.0  # seconds the tests leave auto to find a host's pace
# A crawl's slow start from 2/s, at x1.5 a second, passes 20/s in under 6 s.
CRAWL_WARM_UP = 8.0


class Host:
    """A simulated host on the fake clock: it takes ``latency(load)`` seconds per
    request (``load``: requests it accepted in the last second) and answers 429 to
    any past ``allows`` in a sliding second. Each exchange: (start, status, latency)."""

    def __init__(
        self,
        time: FakeTime,
        *,
        allows: float = float("inf"),
        latency: Callable[[int], float] = lambda load: 0.005,
        headers: Callable[[float], dict[str, str]] = lambda now: {},
    ) -> None:
        self.time = time
        self.allows = allows
        self.latency = latency
        self.headers = headers
        self.accepted: deque[float] = deque()
        self.exchanges: list[tuple[float, int, float]] = []

    async def __call__(self, request: Request) -> Response:
        start = self.time.now
        while self.accepted and self.accepted[0] <= start - 1.0:
            self.accepted.popleft()
        refused = len(self.accepted) >= self.allows
        if not refused:
            self.accepted.append(start)
        took = self.latency(len(self.accepted))
        self.time.now += took
        status = 429 if refused else 200
        self.exchanges.append((start, status, took))
        return Response(request, status, CIMultiDict(self.headers(self.time.now)),
                        elapsed=took)  # fmt: skip

    def after(self, seconds: float) -> list[tuple[float, int, float]]:
        first = self.exchanges[0][0]
        return [e for e in self.exchanges if e[0] >= first + seconds]


async def crawl(limits: RateLimit, host: Host, seconds: float, url: str = "http://h.test/") -> None:
    """One request after another, as fast as the limiter lets them start."""
    end = host.time.now + seconds
    while host.time.now < end:
        await limits(Request(url), host)


def auto(time: FakeTime, **options: object) -> RateLimit:
    return RateLimit(
        "auto",
        auto=AutoOptions(start=2.0, ceiling=50.0),
        clock=time.clock,
        wall_clock=time.clock,
        sleep=time.sleep,
        **options,
    )  # type: ignore[arg-type]


async def test_auto_settles_under_a_host_that_refuses_past_20_per_second() -> None:
    time = FakeTime()
    host = Host(time, allows=20)
    limits = auto(time)
    await crawl(limits, host, 120.0)
    settled = host.after(WARM_UP)
    refused = sum(status == 429 for _, status, _ in settled)
    span = settled[-1][0] - settled[0][0]
    served = len(settled) - refused
    assert refused / len(settled) < 0.03, f"{refused} of {len(settled)} refused"
    assert served / span > 14.0, f"{served / span:.1f} requests/s served"
    assert 14.0 <= limits.rates()["h.test:80"] <= 21.0
    assert limits.refused()["h.test:80"] == refused + sum(
        status == 429 for _, status, _ in host.exchanges[: len(host.exchanges) - len(settled)]
    )


async def test_auto_keeps_latency_within_twice_the_unloaded_baseline() -> None:
    time = FakeTime()
    # 10 ms alone, 1 ms more for each request of the last second: 30 ms at 20/s.
    host = Host(time, latency=lambda load: 0.010 + 0.001 * load)
    await crawl(auto(time), host, 120.0)
    latencies = [took for _, _, took in host.after(WARM_UP)]
    assert sum(latencies) / len(latencies) < 2 * 0.010
    assert len(latencies) / (120 - WARM_UP) > 4.0  # it still crawls


async def test_a_slow_answer_now_and_then_is_no_push_back() -> None:
    time = FakeTime()
    answers = itertools.count()
    # 10 ms, but every 25th answer takes 300 ms (a pause, a full queue somewhere).
    host = Host(time, latency=lambda load: 0.300 if next(answers) % 25 == 24 else 0.010)
    limits = auto(time)
    await crawl(limits, host, 20.0)
    # One request at a time, so the slow ones cap what gets through at about 46/s; a
    # rate that took each for a trend fell below 1/s.
    assert limits.rates()["h.test:80"] > 20.0
    assert len(host.after(10.0)) / 10.0 > 15.0


async def test_one_fast_first_answer_is_no_baseline_for_slower_pages() -> None:
    time = FakeTime()
    answers = itertools.count()
    # A robots.txt in 10 ms, then pages of 100 ms each: the pages' latency is no load.
    host = Host(time, latency=lambda load: 0.010 if next(answers) == 0 else 0.100)
    limits = auto(time)
    await crawl(limits, host, 60.0)
    assert limits.rates()["h.test:80"] > 9.0  # one at a time: 10/s is all there is
    assert len(host.after(30.0)) / 30.0 > 9.0


async def test_auto_climbs_to_its_ceiling_on_a_host_without_limits() -> None:
    time = FakeTime()
    host = Host(time)
    limits = auto(time)
    await crawl(limits, host, 20.0)  # from 2/s at x1.5 a second: 50/s within 8 s
    assert limits.rates()["h.test:80"] == 50.0
    assert len(host.after(10.0)) >= 0.9 * 50 * (20 - 10)


async def test_a_429_with_retry_after_holds_every_start_that_long() -> None:
    time = FakeTime()
    starts: list[float] = []

    async def answer(request: Request) -> Response:
        starts.append(time.now)
        time.now += 0.005
        if len(starts) == 3:
            return Response(request, 429, CIMultiDict({"Retry-After": "5"}))
        return Response(request, 200, CIMultiDict())

    limits = auto(time)
    for _ in range(5):
        await limits(Request("http://h.test/"), answer)
    assert starts[3] - starts[2] >= 5.0
    assert limits.refused() == {"h.test:80": 1}


@pytest.mark.parametrize(
    "headers",
    [
        {"RateLimit-Policy": '"default";q=100;w=10'},  # the IETF draft: 100 per 10 s
        {"RateLimit-Policy": "10;w=1"},  # its oldest form
        {"X-RateLimit-Remaining": "1000", "X-RateLimit-Reset": "100"},  # 1000 in 100 s
    ],
)
async def test_a_rate_the_server_states_is_a_hard_ceiling(headers: dict[str, str]) -> None:
    time = FakeTime()
    host = Host(time, headers=lambda now: headers)
    limits = auto(time)
    await crawl(limits, host, 20.0)
    assert len(host.after(WARM_UP)) <= 10.0 * (20 - WARM_UP) + 1


async def test_a_spent_quota_holds_starts_until_its_reset() -> None:
    time = FakeTime()
    reset_at = time.now + 30.0  # GitHub's form: a Unix time

    def headers(now: float) -> dict[str, str]:
        left = "0" if now < reset_at else "100"
        return {"X-RateLimit-Remaining": left, "X-RateLimit-Reset": str(int(reset_at))}

    host = Host(time, headers=headers)
    limits = RateLimit(None, clock=time.clock, wall_clock=lambda: time.now + 1.7e9,
                       sleep=time.sleep, max_backoff=60.0)  # fmt: skip
    reset_at += 1.7e9
    for _ in range(3):
        await limits(Request("http://h.test/"), host)
    starts = [start for start, _, _ in host.exchanges]
    assert starts[1] - starts[0] == pytest.approx(30.0, abs=0.01)


async def test_timeouts_slow_auto_down_and_hosts_keep_their_own_settings() -> None:
    time = FakeTime()
    host = Host(time)
    limits = auto(time, hosts={"slow.test": "1/s", "fixed.test": None})
    await crawl(limits, host, 5.0)
    before = limits.rates()["h.test:80"]

    async def timing_out(request: Request) -> Response:
        time.now += 1.0
        raise FetchTimeout("read timed out", phase="read")

    async def no_such_name(request: Request) -> Response:
        raise ConnectError("DNS: no such name", kind="dns")

    with pytest.raises(ConnectError):  # a name that does not resolve says nothing of load
        await limits(Request("http://h.test/"), no_such_name)
    assert limits.rates()["h.test:80"] == before
    with pytest.raises(FetchTimeout):
        await limits(Request("http://h.test/"), timing_out)
    assert limits.rates()["h.test:80"] <= before * 0.7
    await crawl(limits, host, 5.0, url="http://slow.test:8080/")
    slow = [s for s, _, _ in host.exchanges if s >= host.exchanges[-1][0] - 4.0]
    assert len(slow) <= 5  # one a second, the host's own rate
    assert "slow.test:8080" not in limits.rates()


async def test_a_resumed_crawl_starts_each_host_where_it_left_off() -> None:
    time = FakeTime()
    host = Host(time)
    limits = auto(time)
    limits.resume({"h.test:80": 12.0})
    await crawl(limits, host, 1.0)
    assert 11 <= len(host.exchanges) <= 14  # 12/s from the start, no slow start from 2/s


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"RateLimit-Policy": '"burst";q=100;w=60, "daily";q=1000;w=86400'},
         ServerLimit(rate=1000 / 86400)),
        ({"RateLimit": '"burst";r=0;t=30'}, ServerLimit(wait=30.0)),
        ({"RateLimit": '"burst";r=50;t=10'}, ServerLimit(rate=5.0)),
        ({"RateLimit": "limit=100, remaining=20, reset=4"}, ServerLimit(rate=5.0)),
        ({"RateLimit-Limit": "100", "RateLimit-Remaining": "0", "RateLimit-Reset": "7"},
         ServerLimit(wait=7.0)),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(1_700_000_090)},
         ServerLimit(wait=90.0)),
        ({"RateLimit-Policy": "not (a structured; field"}, None),
        ({"X-RateLimit-Remaining": "-3", "X-RateLimit-Reset": "nan"}, None),
        ({"RateLimit": '"x";r=0;t=99999999999'}, ServerLimit(wait=86400.0)),
        ({"RateLimit-Policy": '"x";q=10;w=0.5'}, ServerLimit(rate=20.0)),  # a Decimal
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(1_700_000_090_000)},
         ServerLimit(wait=90.0)),  # a Unix time in milliseconds
    ],
)  # fmt: skip
def test_server_limits_are_read_in_every_dialect(
    headers: dict[str, str], expected: ServerLimit | None
) -> None:
    assert read_server_limit(CIMultiDict(headers), now=1_700_000_000.0) == expected


# -- a whole crawl on the real clock ------------------------------------------------------


class LimitedSite(RoundsSite):
    """Refuses (429, no Retry-After) any request past ``allows`` in a sliding second;
    records each request's arrival and status."""

    def __init__(self, pages: int, allows: int) -> None:
        super().__init__(pages, validators=False)
        self.allows = allows
        self.accepted: deque[float] = deque()
        self.arrivals: list[tuple[float, int]] = []

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        now = time.monotonic()
        with self._lock:
            while self.accepted and self.accepted[0] <= now - 1.0:
                self.accepted.popleft()
            refused = len(self.accepted) >= self.allows
            if not refused:
                self.accepted.append(now)
            self.arrivals.append((now, 429 if refused else 200))
        if refused:
            return web.Response(status=429, text="slow down")
        return await super()._dispatch(request)


def limited_config(site: LimitedSite, out: Path, max_pages: int) -> Config:
    return parse_config({
        "crawl": {"start_urls": [site.url("/")], "sitemaps": False, "max_pages": max_pages},
        "rate_limit": {"per_host": "auto", "max_per_host": "50/s"},
        "output": {"dir": str(out)},
    })  # fmt: skip


async def test_a_crawl_at_auto_settles_under_the_site_limit_and_resumes_from_it(
    tmp_path: Path,
) -> None:
    with LimitedSite(pages=400, allows=20) as site:
        stats = await Crawler(limited_config(site, tmp_path, max_pages=260)).run()
        first = list(site.arrivals)
        host = f"127.0.0.1:{site.port}"
        saved = json.loads((tmp_path / "stats.json").read_text())
        site.arrivals.clear()
        await Crawler(limited_config(site, tmp_path, max_pages=300)).run()  # resumes
        resumed = list(site.arrivals)
    start = first[0][0]
    settled = [(at, status) for at, status in first if at >= start + CRAWL_WARM_UP]
    refused = sum(status == 429 for _, status in settled)
    served = len(settled) - refused
    assert refused / len(settled) < 0.03, f"{refused} of {len(settled)} refused"
    assert served / (settled[-1][0] - settled[0][0]) > 14.0
    assert stats.refused[host] == sum(status == 429 for _, status in first)
    assert saved["refused"] == {host: stats.refused[host]}
    assert 10.0 <= saved["rates_per_s"][host] <= 22.0
    # The resumed run starts at the learned rate, not at rate_limit.start's 2/s.
    assert len([at for at, _ in resumed if at < resumed[0][0] + 1.0]) >= 8
