"""Robots on a mock engine with an injected clock: no sockets, no real waiting.

No end-to-end test: the loopback server (tests/server.py) answers ``/robots.txt``
with 404 whatever the mode, so it cannot serve a robots.txt with rules in it.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from crawler import (
    BodyTooLarge,
    ConnectError,
    FetchTimeout,
    MockEngine,
    ProtocolError,
    RequestDropped,
)
from crawler.engines.mock import respond
from crawler.middleware import RateLimit, Robots, compose
from crawler.models import Request, Response, Timeouts
from tests.fakes import FakeTime

UA = "crawler/0.1 (+https://example.org/bot)"

Answer = tuple[int, str] | tuple[int, str, dict[str, str]] | Exception


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def site(routes: dict[str, Answer]) -> MockEngine:
    """Answers each URL from ``routes`` (mutable: tests change it between fetches);
    anything else is a 200 page."""

    def responder(request: Request) -> Response:
        answer = routes.get(request.url, (200, "page"))
        if isinstance(answer, Exception):
            raise answer
        status, body, *headers = answer
        return respond(request, status, body, headers[0] if headers else None)

    return MockEngine(responder)


def robots_fetches(engine: MockEngine) -> list[str]:
    return [r.url for r in engine.requests if r.url.endswith("/robots.txt")]


def make(clock: FakeClock | None = None, user_agent: str = UA, **options: object) -> Robots:
    return Robots(user_agent, clock=clock or FakeClock(), **options)  # type: ignore[arg-type]


async def fetch(robots: Robots, engine: MockEngine, url: str) -> bool:
    """True when the request went through, False when robots dropped it."""
    try:
        await robots(Request(url, headers={"User-Agent": UA}), engine.send)
    except RequestDropped as exc:
        if exc.reason != "robots":
            raise
        return False
    return True


RULES = """
User-agent: *
Disallow: /private
Allow: /private/ok
"""

# per path ----------------------------------------------------------------------------------


async def test_allow_and_disallow_per_path() -> None:
    engine = site({"http://a.test/robots.txt": (200, RULES)})
    robots = make()
    assert await fetch(robots, engine, "http://a.test/public")
    assert await fetch(robots, engine, "http://a.test/private/ok")
    assert not await fetch(robots, engine, "http://a.test/private/secret")
    assert not await fetch(robots, engine, "http://a.test/private")
    assert [r.url for r in engine.requests] == [
        "http://a.test/robots.txt",
        "http://a.test/public",
        "http://a.test/private/ok",
    ]  # the disallowed requests never reached call_next


async def test_request_dropped_carries_reason_and_request() -> None:
    engine = site({"http://a.test/robots.txt": (200, "User-agent: *\nDisallow: /")})
    request = Request("http://a.test/x")
    with pytest.raises(RequestDropped) as caught:
        await make()(request, engine.send)
    assert caught.value.reason == "robots"
    assert caught.value.request is request


async def test_allowed_answers_without_fetching_the_page() -> None:
    engine = site({"http://a.test/robots.txt": (200, RULES)})
    robots = make()
    assert await robots.allowed(Request("http://a.test/x"), engine.send)
    assert not await robots.allowed(Request("http://a.test/private/x"), engine.send)
    assert [r.url for r in engine.requests] == ["http://a.test/robots.txt"]


async def test_robots_request_shape() -> None:
    engine = site({"http://a.test/robots.txt": (200, "")})
    timeouts = Timeouts(connect=2, total=7)
    request = Request(
        "http://a.test/form",
        method="POST",
        body=b"x=1",
        headers={"User-Agent": UA, "Content-Type": "text/plain", "If-None-Match": '"x"'},
        timeouts=timeouts,
        meta={"depth": 3},
    )
    await make(max_bytes=1234)(request, engine.send)
    sent = engine.requests[0]
    assert sent.url == "http://a.test/robots.txt"
    assert sent.method == "GET"
    assert sent.body is None
    assert sent.headers["user-agent"] == UA
    assert "content-type" not in sent.headers
    assert "if-none-match" not in sent.headers
    assert sent.timeouts == timeouts
    assert sent.max_bytes == 1234
    assert sent.meta == {"robots": True}


# groups ------------------------------------------------------------------------------------


async def test_agent_group_is_chosen_over_star() -> None:
    text = "User-agent: *\nDisallow: /\n\nUser-agent: Crawler\nDisallow: /secret\n"
    engine = site({"http://a.test/robots.txt": (200, text)})
    ours, others = make(), make(user_agent="other-bot/2.0")
    assert await fetch(ours, engine, "http://a.test/page")
    assert not await fetch(ours, engine, "http://a.test/secret")
    assert not await fetch(others, engine, "http://a.test/page")


async def test_words_in_the_user_agent_comment_select_no_group() -> None:
    # protego matches a group name after any word boundary of the string it is
    # given: with the whole UA, "bot" and "example" (from the URL) would apply.
    text = (
        "User-agent: example\nDisallow: /\n\n"
        "User-agent: bot\nDisallow: /\n\n"
        "User-agent: *\nDisallow: /star-only\n"
    )
    engine = site({"http://a.test/robots.txt": (200, text)})
    robots = make()
    assert robots.product_token == "crawler"
    assert await fetch(robots, engine, "http://a.test/page")
    assert not await fetch(robots, engine, "http://a.test/star-only")


# outcomes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 404, 410])
async def test_4xx_allows_everything(status: int) -> None:
    engine = site({"http://a.test/robots.txt": (status, "nope")})
    assert await fetch(make(), engine, "http://a.test/anything")


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_5xx_and_429_disallow_everything(status: int) -> None:
    engine = site({"http://a.test/robots.txt": (status, "busy")})
    robots = make()
    assert not await fetch(robots, engine, "http://a.test/")
    assert not await fetch(robots, engine, "http://a.test/other")
    assert robots_fetches(engine) == ["http://a.test/robots.txt"]  # cached


@pytest.mark.parametrize(
    "error",
    [
        ConnectError("refused"),
        FetchTimeout("slow", phase="total"),
        ProtocolError("malformed response: bad status line"),
    ],
)
async def test_unreachable_disallows_everything(error: Exception) -> None:
    engine = site({"http://a.test/robots.txt": error})
    robots = make()
    assert not await fetch(robots, engine, "http://a.test/")
    assert len(engine.requests) == 1


async def test_oversized_robots_allows_everything() -> None:
    error = BodyTooLarge("body of 9000000 bytes exceeds max_bytes=512000")
    engine = site({"http://a.test/robots.txt": error})
    assert await fetch(make(), engine, "http://a.test/")


def chain(hops: int, final: str) -> dict[str, Answer]:
    """robots.txt → /r1 → ... → /r<hops> (relative Locations), which serves ``final``."""
    routes: dict[str, Answer] = {}
    names = ["/robots.txt", *(f"/r{i}" for i in range(1, hops + 1))]
    for here, there in itertools.pairwise(names):
        routes[f"http://a.test{here}"] = (301, "", {"Location": there})
    routes[f"http://a.test{names[-1]}"] = (200, final)
    return routes


async def test_redirects_are_followed_up_to_five() -> None:
    engine = site(chain(5, "User-agent: *\nDisallow: /"))
    robots = make()
    assert not await fetch(robots, engine, "http://a.test/page")
    assert len(engine.requests) == 6
    assert all(r.meta == {"robots": True} for r in engine.requests)


async def test_a_sixth_redirect_means_allow_all() -> None:
    engine = site(chain(6, "User-agent: *\nDisallow: /"))
    assert await fetch(make(), engine, "http://a.test/page")
    assert len(engine.requests) == 1 + 6  # five redirects followed, the sixth not; the page


async def test_redirect_to_another_origin_applies_to_the_first() -> None:
    engine = site(
        {
            "http://a.test/robots.txt": (302, "", {"Location": "https://b.test/rules.txt"}),
            "https://b.test/rules.txt": (200, "User-agent: *\nDisallow: /x"),
        }
    )
    robots = make()
    assert not await fetch(robots, engine, "http://a.test/x")
    assert robots.cached_origins() == 1


# one fetch per origin ----------------------------------------------------------------------


async def test_concurrent_requests_share_one_fetch() -> None:
    gate = asyncio.Event()

    async def responder(request: Request) -> Response:
        if request.url.endswith("/robots.txt"):
            await gate.wait()
            return respond(request, 200, RULES)
        return respond(request, 200, "page")

    engine = MockEngine(responder)
    robots = make()
    tasks = [
        asyncio.create_task(fetch(robots, engine, f"http://a.test/{'private/' * (i % 2)}{i}"))
        for i in range(20)
    ]
    for _ in range(10):
        await asyncio.sleep(0)
    assert robots_fetches(engine) == ["http://a.test/robots.txt"]
    gate.set()
    results = await asyncio.gather(*tasks)
    assert results == [i % 2 == 0 for i in range(20)]
    assert robots_fetches(engine) == ["http://a.test/robots.txt"]
    assert len(engine.requests) == 1 + 10


async def test_a_cancelled_waiter_leaves_the_fetch_alone() -> None:
    gate = asyncio.Event()

    async def responder(request: Request) -> Response:
        if request.url.endswith("/robots.txt"):
            await gate.wait()
        return respond(request, 200, "")

    engine = MockEngine(responder)
    robots = make()
    first, second, third = (
        asyncio.create_task(fetch(robots, engine, f"http://a.test/{i}")) for i in range(3)
    )
    await asyncio.sleep(0)
    second.cancel()
    gate.set()
    assert await first
    assert await third
    with pytest.raises(asyncio.CancelledError):
        await second
    assert len(robots_fetches(engine)) == 1


async def test_a_cancelled_fetcher_hands_the_fetch_to_a_waiter() -> None:
    gate = asyncio.Event()

    async def responder(request: Request) -> Response:
        if request.url.endswith("/robots.txt"):
            await gate.wait()
            return respond(request, 200, "User-agent: *\nDisallow: /no")
        return respond(request, 200, "")

    engine = MockEngine(responder)
    robots = make()
    fetcher = asyncio.create_task(fetch(robots, engine, "http://a.test/1"))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(fetch(robots, engine, "http://a.test/no"))
    await asyncio.sleep(0)
    fetcher.cancel()
    await asyncio.sleep(0)
    gate.set()
    assert not await asyncio.wait_for(waiter, 5)  # a bound only if the hand-over is broken
    with pytest.raises(asyncio.CancelledError):
        await fetcher
    assert len(robots_fetches(engine)) == 2
    assert robots.cached_origins() == 1


async def test_an_unexpected_error_is_not_cached() -> None:
    routes: dict[str, Answer] = {"http://a.test/robots.txt": RuntimeError("bug below")}
    engine, robots = site(routes), make()
    with pytest.raises(RuntimeError):
        await fetch(robots, engine, "http://a.test/")
    assert robots.cached_origins() == 0
    routes["http://a.test/robots.txt"] = (404, "")
    assert await fetch(robots, engine, "http://a.test/")


async def test_each_origin_has_its_own_robots() -> None:
    engine = site({"https://a.test/robots.txt": (200, "User-agent: *\nDisallow: /")})
    robots = make()
    urls = [
        "http://a.test/1",
        "http://a.test:80/2",  # the same origin as the first
        "https://a.test/3",
        "http://a.test:8080/4",
        "http://b.test/5",
    ]
    allowed = [await fetch(robots, engine, url) for url in urls]
    assert allowed == [True, True, False, True, True]
    assert robots_fetches(engine) == [
        "http://a.test/robots.txt",
        "https://a.test/robots.txt",
        "http://a.test:8080/robots.txt",
        "http://b.test/robots.txt",
    ]
    assert robots.cached_origins() == 4


async def test_at_most_max_origins_are_kept() -> None:
    engine, robots = site({}), make(max_origins=2)
    for host in ["a", "b", "c", "a"]:
        await fetch(robots, engine, f"http://{host}.test/")
    assert robots.cached_origins() == 2
    assert robots_fetches(engine) == [f"http://{h}.test/robots.txt" for h in "abca"]


# expiry ------------------------------------------------------------------------------------


async def test_cache_expires_after_max_age() -> None:
    clock = FakeClock()
    routes: dict[str, Answer] = {"http://a.test/robots.txt": (200, "User-agent: *\nDisallow: /x")}
    engine, robots = site(routes), make(clock, max_age=100)
    assert not await fetch(robots, engine, "http://a.test/x")
    routes["http://a.test/robots.txt"] = (200, "User-agent: *\nDisallow: /y")
    clock.now += 99
    assert not await fetch(robots, engine, "http://a.test/x")
    assert len(robots_fetches(engine)) == 1
    clock.now += 1
    assert await fetch(robots, engine, "http://a.test/x")
    assert not await fetch(robots, engine, "http://a.test/y")
    assert len(robots_fetches(engine)) == 2


async def test_errors_are_refetched_after_error_max_age() -> None:
    clock = FakeClock()
    routes: dict[str, Answer] = {"http://a.test/robots.txt": (503, "")}
    engine, robots = site(routes), make(clock, max_age=10_000, error_max_age=60)
    assert not await fetch(robots, engine, "http://a.test/")
    routes["http://a.test/robots.txt"] = (404, "")
    clock.now += 59
    assert not await fetch(robots, engine, "http://a.test/")
    clock.now += 1
    assert await fetch(robots, engine, "http://a.test/")
    assert len(robots_fetches(engine)) == 2
    clock.now += 9_999  # a 404 keeps for max_age
    assert await fetch(robots, engine, "http://a.test/")
    assert len(robots_fetches(engine)) == 2


# crawl-delay and sitemaps ------------------------------------------------------------------


async def test_crawl_delay_paces_a_real_rate_limit() -> None:
    fake = FakeTime()
    limit = RateLimit(None, clock=fake.clock, wall_clock=fake.clock, sleep=fake.sleep)
    text = "User-agent: *\nCrawl-delay: 9\n\nUser-agent: crawler\nCrawl-delay: 3\n"
    engine = site({"http://a.test/robots.txt": (200, text)})
    robots = Robots(UA, rate_limit=limit, clock=fake.clock)
    handler = compose([robots, limit], engine.send)
    for path in ["/1", "/2", "/3"]:
        await handler(Request(f"http://a.test{path}"))
    assert fake.sleeps == pytest.approx([3.0, 3.0])
    assert limit.delay("http://a.test/4") == pytest.approx(3.0)
    assert limit.delay("http://b.test/") == 0


async def test_no_crawl_delay_leaves_the_rate_limit_alone() -> None:
    fake = FakeTime()
    limit = RateLimit(None, clock=fake.clock, wall_clock=fake.clock, sleep=fake.sleep)
    engine = site({"http://a.test/robots.txt": (200, "User-agent: *\nDisallow: /x")})
    handler = compose([Robots(UA, rate_limit=limit, clock=fake.clock), limit], engine.send)
    for path in ["/1", "/2"]:
        await handler(Request(f"http://a.test{path}"))
    assert fake.sleeps == []


async def test_sitemaps_are_reported_once_per_parse() -> None:
    clock = FakeClock()
    text = (
        "Sitemap: https://a.test/sitemap.xml\n"
        "User-agent: *\nDisallow:\n"
        "Sitemap: https://cdn.test/more.xml.gz\n"
    )
    engine = site({"https://a.test/robots.txt": (200, text), "http://b.test/robots.txt": (404, "")})
    calls: list[tuple[str, list[str]]] = []
    robots = make(clock, max_age=100, on_sitemaps=lambda o, s: calls.append((o, s)))
    for url in ["https://a.test/1", "https://a.test/2", "http://b.test/"]:
        assert await fetch(robots, engine, url)
    expected = (
        "https://a.test:443",
        ["https://a.test/sitemap.xml", "https://cdn.test/more.xml.gz"],
    )
    assert calls == [expected]
    clock.now += 100
    await fetch(robots, engine, "https://a.test/3")
    assert calls == [expected, expected]


# pass-through ------------------------------------------------------------------------------


async def test_robots_txt_itself_passes_straight_through() -> None:
    engine = site({"http://a.test/robots.txt": (200, "User-agent: *\nDisallow: /")})
    robots = make()
    response = await robots(Request("http://a.test/robots.txt"), engine.send)
    assert response.body.startswith(b"User-agent")
    assert len(engine.requests) == 1
    assert robots.cached_origins() == 0


async def test_meta_robots_passes_straight_through() -> None:
    engine = site({"http://a.test/robots.txt": (200, "User-agent: *\nDisallow: /")})
    robots = make()
    await robots(Request("http://a.test/other.txt", meta={"robots": True}), engine.send)
    assert [r.url for r in engine.requests] == ["http://a.test/other.txt"]
    assert robots.cached_origins() == 0
    with pytest.raises(RequestDropped):  # only True itself marks a robots request
        await robots(Request("http://a.test/x", meta={"robots": "yes"}), engine.send)


def test_constructor_validates() -> None:
    with pytest.raises(ValueError, match="max_origins"):
        Robots(UA, max_origins=0)
    with pytest.raises(ValueError, match="max_redirects"):
        Robots(UA, max_redirects=-1)
