"""Middleware on a mock engine with an injected clock and sleep: no sockets, no real waiting."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from crawler import (
    ConnectError,
    FetchTimeout,
    FollowRedirects,
    MockEngine,
    ProtocolError,
    RateLimit,
    Request,
    Response,
    Retry,
    RetryLater,
    Timeout,
    Timeouts,
    TooManyRedirects,
)
from crawler.engines.mock import respond
from crawler.middleware import compose
from crawler.middleware.retry import parse_retry_after
from crawler.policy import parse_rate
from tests.fakes import FakeTime, start_waiting
from tests.guards import WAIT


def statuses(*codes: int, headers: dict[str, str] | None = None) -> Callable[[Request], Response]:
    """A responder that answers with ``codes`` in turn, then repeats the last."""
    remaining = list(codes)

    def responder(request: Request) -> Response:
        code = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        return respond(request, code, headers=headers)

    return responder


# composition -------------------------------------------------------------------------------


async def test_compose_runs_in_list_order() -> None:
    trace: list[str] = []

    def tracer(name: str):  # type: ignore[no-untyped-def]
        async def middleware(request: Request, call_next):  # type: ignore[no-untyped-def]
            trace.append(f"{name}>")
            response = await call_next(request)
            trace.append(f"<{name}")
            return response

        return middleware

    engine = MockEngine(statuses(200))
    handler = compose([tracer("a"), tracer("b")], engine.send)
    await handler(Request("http://x.test/"))
    assert trace == ["a>", "b>", "<b", "<a"]


# retry -------------------------------------------------------------------------------------


async def run_retry(
    engine: MockEngine, request: Request | None = None, **options: object
) -> Response:
    fake = options.pop("fake", None) or FakeTime()
    retry = Retry(sleep=fake.sleep, clock=fake.clock, **options)  # type: ignore[arg-type, attr-defined]
    return await retry(request or Request("http://x.test/"), engine.send)


async def test_retry_until_success() -> None:
    engine = MockEngine(statuses(503, 503, 200))
    response = await run_retry(engine, retries=3)
    assert response.status == 200
    assert len(engine.requests) == 3


async def test_retry_returns_last_response_when_exhausted() -> None:
    engine = MockEngine(statuses(500))
    response = await run_retry(engine, retries=2)
    assert response.status == 500
    assert len(engine.requests) == 3


async def test_retry_leaves_other_statuses_alone() -> None:
    engine = MockEngine(statuses(404))
    assert (await run_retry(engine, retries=3)).status == 404
    assert len(engine.requests) == 1


@pytest.mark.parametrize("error", [FetchTimeout("t", phase="read"), ConnectError("refused")])
async def test_retry_transient_errors_then_reraise(error: Exception) -> None:
    def fail(request: Request) -> Response:
        raise error

    engine = MockEngine(fail)
    with pytest.raises(type(error)):
        await run_retry(engine, retries=2)
    assert len(engine.requests) == 3


async def test_retry_does_not_retry_protocol_errors() -> None:
    def fail(request: Request) -> Response:
        raise ProtocolError("garbage")

    engine = MockEngine(fail)
    with pytest.raises(ProtocolError):
        await run_retry(engine, retries=2)
    assert len(engine.requests) == 1


async def test_retry_skips_non_idempotent_methods() -> None:
    engine = MockEngine(statuses(503))
    await run_retry(engine, Request("http://x.test/", method="POST"), retries=3)
    assert len(engine.requests) == 1


async def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    fake = FakeTime()
    await run_retry(MockEngine(statuses(503)), retries=4, backoff=1.0, max_backoff=30, fake=fake)
    assert len(fake.sleeps) == 4
    for attempt, slept in enumerate(fake.sleeps):
        assert 2**attempt <= slept <= 2**attempt + 1.0


async def test_backoff_is_capped() -> None:
    fake = FakeTime()
    await run_retry(MockEngine(statuses(503)), retries=6, backoff=1.0, max_backoff=5, fake=fake)
    assert max(fake.sleeps) <= 5


async def test_retry_after_seconds_is_honoured() -> None:
    fake = FakeTime()
    engine = MockEngine(statuses(429, 200, headers={"Retry-After": "7"}))
    assert (await run_retry(engine, retries=1, fake=fake)).status == 200
    assert fake.sleeps == [7.0]


async def test_retry_after_http_date_is_honoured() -> None:
    fake = FakeTime()
    fake.now = 1_700_000_000.0
    when = format_datetime(datetime.fromtimestamp(fake.now + 12, tz=UTC), usegmt=True)
    engine = MockEngine(statuses(503, 200, headers={"Retry-After": when}))
    await run_retry(engine, retries=1, fake=fake)
    assert fake.sleeps == [pytest.approx(12.0)]


async def test_absurd_retry_after_is_capped_by_max_backoff() -> None:
    fake = FakeTime()
    engine = MockEngine(statuses(429, 200, headers={"Retry-After": "86400"}))
    await run_retry(engine, retries=1, max_backoff=30, fake=fake)
    assert fake.sleeps == [30.0]


async def test_long_wait_becomes_retry_later_when_asked() -> None:
    fake = FakeTime()
    engine = MockEngine(statuses(429, headers={"Retry-After": "120"}))
    with pytest.raises(RetryLater) as caught:
        await run_retry(engine, retries=3, max_backoff=300, defer_after=10, fake=fake)
    assert caught.value.not_before == fake.now + 120
    assert caught.value.response is not None
    assert caught.value.response.status == 429
    assert fake.sleeps == []
    assert len(engine.requests) == 1


async def test_retry_stops_at_max_elapsed() -> None:
    fake = FakeTime()
    engine = MockEngine(statuses(503, headers={"Retry-After": "10"}))
    response = await run_retry(engine, retries=10, max_elapsed=25, fake=fake)
    assert response.status == 503
    assert fake.sleeps == [10.0, 10.0]  # a third wait would end past 25 s
    assert len(engine.requests) == 3


async def test_last_attempt_never_defers() -> None:
    fake = FakeTime()
    engine = MockEngine(statuses(429, headers={"Retry-After": "120"}))
    response = await run_retry(engine, retries=1, max_backoff=300, defer_after=200, fake=fake)
    assert response.status == 429
    with pytest.raises(RetryLater):
        await run_retry(engine, retries=1, max_backoff=300, defer_after=60, fake=fake)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5.0),
        ("0", 0.0),
        ("  3 ", 3.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("-1", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=1_700_000_000.0) == expected


# rate limit --------------------------------------------------------------------------------


def limiter(fake: FakeTime, rate: str | None = "10/s", **options: object) -> RateLimit:
    return RateLimit(rate, clock=fake.clock, wall_clock=fake.clock, sleep=fake.sleep, **options)  # type: ignore[arg-type]


async def test_rate_limit_spaces_requests_to_one_host() -> None:
    fake = FakeTime()
    started: list[float] = []

    def record(request: Request) -> Response:
        started.append(fake.now - 1_000.0)
        return respond(request)

    limit = limiter(fake)
    await asyncio.gather(
        *(limit(Request(f"http://a.test/{i}"), MockEngine(record).send) for i in range(5))
    )
    assert started == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])  # the first goes at once


async def test_rate_limit_keeps_hosts_apart() -> None:
    fake = FakeTime()
    limit, engine = limiter(fake), MockEngine(statuses(200))
    for host in ("a.test", "b.test", "a.test:8080"):
        await limit(Request(f"http://{host}/"), engine.send)
    assert fake.sleeps == []


async def test_rate_limit_backs_off_after_429() -> None:
    fake = FakeTime()
    limit = limiter(fake, "10/s")
    await limit(
        Request("http://a.test/"), MockEngine(statuses(429, headers={"Retry-After": "5"})).send
    )
    assert limit.delay("http://a.test/x") == pytest.approx(5.0)
    assert limit.delay("http://b.test/") == 0
    await limit(Request("http://a.test/"), MockEngine(statuses(200)).send)
    assert fake.sleeps == [pytest.approx(5.0)]


async def test_rate_limit_backoff_doubles_without_retry_after() -> None:
    fake = FakeTime()
    limit, engine = limiter(fake, None, max_backoff=3), MockEngine(statuses(503))
    delays = []
    for _ in range(4):
        await limit(Request("http://a.test/"), engine.send)
        delays.append(limit.delay("http://a.test/"))
    assert delays == [1.0, 2.0, 3.0, 3.0]


async def test_per_host_concurrency_is_enforced() -> None:
    in_flight: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    changed = asyncio.Condition()
    release = asyncio.Event()

    async def slow(request: Request) -> Response:
        host = request.url.split("/")[2]
        async with changed:
            in_flight[host] += 1
            peak[host] = max(peak[host], in_flight[host])
            changed.notify_all()
        await release.wait()
        in_flight[host] -= 1
        return respond(request)

    limit = RateLimit(None, per_host_concurrency=2)
    hosts = ["a.test"] * 5 + ["b.test"]
    tasks = await start_waiting(*(lambda h=h: limit(Request(f"http://{h}/"), slow) for h in hosts))
    async with asyncio.timeout(WAIT), changed:
        await changed.wait_for(lambda: sum(in_flight.values()) == 3)
    assert in_flight == {"a.test": 2, "b.test": 1}  # the other three a.test wait their turn
    release.set()
    await asyncio.gather(*tasks)
    assert peak == {"a.test": 2, "b.test": 1}


@pytest.mark.parametrize(
    ("text", "per_second"), [("10/s", 10.0), ("30/m", 0.5), ("36/h", 0.01), (4, 4.0), ("", None)]
)
def test_parse_rate(text: str | float, per_second: float | None) -> None:
    assert parse_rate(text) == per_second


@pytest.mark.parametrize("text", ["fast", "0/s", "10/d", -1, "10"])
def test_parse_rate_rejects(text: str | float) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


# redirects ---------------------------------------------------------------------------------


def redirector(routes: dict[str, tuple[int, str]]) -> MockEngine:
    def responder(request: Request) -> Response:
        if request.url in routes:
            status, location = routes[request.url]
            return respond(request, status, headers={"Location": location})
        return respond(request, 200, body=request.method)

    return MockEngine(responder)


async def test_relative_locations_and_fragments() -> None:
    engine = redirector({"http://a.test/x/y": (301, "../z?q=1#frag")})
    response = await FollowRedirects()(Request("http://a.test/x/y"), engine.send)
    assert response.url == "http://a.test/z?q=1"
    assert response.request_url == "http://a.test/x/y"


async def test_redirect_loop_is_detected_early() -> None:
    engine = redirector({"http://a.test/1": (302, "/2"), "http://a.test/2": (302, "/1")})
    with pytest.raises(TooManyRedirects, match="loop"):
        await FollowRedirects(10)(Request("http://a.test/1"), engine.send)
    assert len(engine.requests) == 4  # each URL twice at most (a consent page may loop once)


async def test_each_hop_passes_the_inner_chain() -> None:
    engine = redirector({"http://a.test/1": (302, "http://b.test/2")})
    seen: list[str] = []

    async def spy(request: Request, call_next):  # type: ignore[no-untyped-def]
        seen.append(request.url)
        return await call_next(request)

    handler = compose([FollowRedirects(), spy], engine.send)
    await handler(Request("http://a.test/1"))
    assert seen == ["http://a.test/1", "http://b.test/2"]


@pytest.mark.parametrize(
    ("status", "method"), [(301, "GET"), (302, "GET"), (303, "GET"), (307, "POST"), (308, "POST")]
)
async def test_post_redirect_methods(status: int, method: str) -> None:
    engine = redirector({"http://a.test/form": (status, "/done")})
    request = Request(
        "http://a.test/form",
        method="POST",
        body=b"x=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    response = await FollowRedirects()(request, engine.send)
    assert response.body.decode() == method
    final = engine.requests[-1]
    assert (final.body is None) == (method == "GET")
    assert ("content-type" in final.headers) == (method == "POST")


# timeout -----------------------------------------------------------------------------------


async def test_timeout_fills_in_defaults() -> None:
    engine = MockEngine(statuses(200))
    await Timeout(Timeouts(connect=1, total=5))(Request("http://a.test/"), engine.send)
    await Timeout(5)(Request("http://a.test/", timeouts=Timeouts(total=2)), engine.send)
    assert engine.requests[0].timeouts == Timeouts(connect=1, total=5)
    assert engine.requests[1].timeouts == Timeouts(total=2)


async def test_timeout_cuts_an_engine_that_never_answers() -> None:
    async def never(request: Request) -> Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    with pytest.raises(FetchTimeout) as caught:
        await Timeout(0.05)(Request("http://a.test/"), never)
    assert caught.value.phase == "total"


async def test_crawl_delay_slows_only_its_host() -> None:
    fake = FakeTime()
    limit, engine = limiter(fake, "10/s"), MockEngine(statuses(200))
    limit.set_min_interval("http://a.test/", 2.0)
    for url in ["http://a.test/1", "http://a.test/2", "http://b.test/1", "http://b.test/2"]:
        await limit(Request(url), engine.send)
    assert fake.sleeps == pytest.approx([2.0, 0.1])


async def test_cancelled_waiter_gives_its_slot_back() -> None:
    fake = FakeTime()
    asleep = 0
    all_asleep = asyncio.Event()

    async def blocked_sleep(seconds: float) -> None:
        nonlocal asleep
        asleep += 1
        if asleep == 7:
            all_asleep.set()
        await asyncio.Event().wait()  # until cancelled

    limit = RateLimit("1/s", clock=fake.clock, wall_clock=fake.clock, sleep=blocked_sleep)
    engine = MockEngine(statuses(200))
    await limit(Request("http://a.test/0"), engine.send)  # takes the slot at t=0
    waiters = [asyncio.create_task(limit(Request(f"http://a.test/{i}"), engine.send))
               for i in range(1, 8)]  # fmt: skip
    async with asyncio.timeout(WAIT):
        await all_asleep.wait()  # each reserved its start slot, 1 s after the one before
    for waiter in reversed(waiters):
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    assert limit.delay("http://a.test/") == pytest.approx(1.0)  # not 8 s


async def test_a_burst_of_503s_backs_off_once() -> None:
    fake = FakeTime()
    limit = limiter(fake, None, max_backoff=60)
    arrived = 0
    all_sent = asyncio.Event()
    release = asyncio.Event()

    async def busy(request: Request) -> Response:
        nonlocal arrived
        arrived += 1
        if arrived == 8:
            all_sent.set()
        await release.wait()
        return respond(request, 503)

    tasks = [asyncio.create_task(limit(Request("http://a.test/"), busy)) for _ in range(8)]
    async with asyncio.timeout(WAIT):
        await all_sent.wait()  # all eight sent before the first 503 comes back
    release.set()
    await asyncio.gather(*tasks)
    assert limit.delay("http://a.test/") == pytest.approx(1.0)


def test_retry_after_ignores_non_ascii_digits() -> None:
    assert parse_retry_after("²", now=0.0) is None
    assert parse_retry_after("٣", now=0.0) is None
