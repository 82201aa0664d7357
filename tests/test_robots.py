"""Robots on a mock engine with injected clocks (no sockets, no real waiting), then
end to end through the Fetcher against the hostile server's robots.txt ports."""

from __future__ import annotations

import asyncio
import itertools

import pytest

import crawler.middleware.robots as robots_module
from crawler import (
    BlockedAddress,
    BodyTooLarge,
    ConnectError,
    Fetcher,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    MockEngine,
    ProtocolError,
    RequestDropped,
    RetryLater,
)
from crawler.engines.mock import respond
from crawler.middleware import RateLimit, Retry, Robots, compose
from crawler.models import Lineage, Request, Response, Timeouts
from tests.fakes import FakeTime, start_waiting
from tests.guards import LATE, WAIT, hang_guard
from tests.hostile import BIG_ROBOTS_SIZE, ROBOTS_FLAKY_FAILURES, HostileServer

UA = "crawler/0.1 (+https://example.org/bot)"

Answer = tuple[int, str] | tuple[int, str, dict[str, str]] | Exception


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        """The same clock as ``time.time()`` would read it."""
        return self.now + 1_700_000_000


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


class Gate:
    """A robots.txt that answers only once the test opens the gate, and tells the
    test each time a fetch of it reaches the engine."""

    def __init__(self, rules: str) -> None:
        self.rules = rules
        self.open = asyncio.Event()
        self.arrived = 0
        self._changed = asyncio.Condition()
        self.engine = MockEngine(self.respond)

    async def respond(self, request: Request) -> Response:
        if not request.url.endswith("/robots.txt"):
            return respond(request, 200, "page")
        async with self._changed:
            self.arrived += 1
            self._changed.notify_all()
        await self.open.wait()
        return respond(request, 200, self.rules)

    async def arrivals(self, count: int) -> None:
        """Until ``count`` fetches of robots.txt have reached the engine."""
        async with asyncio.timeout(WAIT), self._changed:
            await self._changed.wait_for(lambda: self.arrived >= count)


def make(clock: FakeClock | None = None, user_agent: str = UA, **options: object) -> Robots:
    clock = clock or FakeClock()
    return Robots(user_agent, clock=clock, wall_clock=clock.wall, **options)  # type: ignore[arg-type]


async def fetch(robots: Robots, engine: MockEngine, url: str) -> bool:
    """True when the request went through, False when robots dropped it."""
    try:
        await robots(Request(url, headers={"User-Agent": UA}), engine.send)
    except RequestDropped as exc:
        if exc.reason != "robots":
            raise
        return False
    return True


async def deferred(robots: Robots, engine: MockEngine, url: str) -> RetryLater:
    """The RetryLater robots raises for ``url`` while its robots.txt is unreachable."""
    with pytest.raises(RetryLater) as caught:
        await robots(Request(url, headers={"User-Agent": UA}), engine.send)
    return caught.value


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
        lineage=Lineage(depth=3),
        meta={"mine": 1},
    )
    await make(max_bytes=1234)(request, engine.send)
    await make(max_bytes=1234, max_download=5000)(request, engine.send)
    sent, other = engine.requests[0], engine.requests[2]
    assert sent.max_bytes == 4 * 1234  # downloaded: more than is parsed
    assert other.max_bytes == 5000
    assert sent.url == "http://a.test/robots.txt"
    assert sent.method == "GET"
    assert sent.body is None
    assert sent.headers["user-agent"] == UA
    assert "content-type" not in sent.headers
    assert "if-none-match" not in sent.headers
    assert sent.timeouts == timeouts
    assert sent.lineage == Lineage(kind="robots")
    assert sent.meta == {}


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


@pytest.mark.parametrize(
    ("status", "reason"),
    [(500, "500 Internal Server Error"), (503, "503 Service Unavailable"),
     (429, "429 Too Many Requests")],
)  # fmt: skip
async def test_5xx_and_429_defer_everything(status: int, reason: str) -> None:
    clock = FakeClock()
    engine = site({"http://a.test/robots.txt": (status, "busy")})
    robots = make(clock, error_max_age=60)
    first = await deferred(robots, engine, "http://a.test/")
    clock.now += 20
    second = await deferred(robots, engine, "http://a.test/other")
    assert robots_fetches(engine) == ["http://a.test/robots.txt"]  # cached
    assert len(engine.requests) == 1  # and no page was sent
    # Both wait for the cached answer to expire, then robots.txt is asked again.
    assert first.not_before == second.not_before == clock.wall() + 40
    assert isinstance(first.__cause__, HTTPStatusError)
    assert str(first.__cause__) == f"robots.txt unreachable: {reason}"
    assert first.__cause__.response.status == status
    assert first.__cause__.response.body == b""  # cached per origin: not the body
    assert first.request is not None
    assert first.request.url == "http://a.test/"
    assert first.response is None  # the page has no response: nothing to parse


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (
            ConnectError("cannot connect to a.test:80: Connection refused", kind="refused"),
            ConnectError,
        ),
        (FetchTimeout("total timeout after 15s", phase="total"), FetchTimeout),
        (ProtocolError("malformed response: bad status line"), ProtocolError),
        (FetchError("engine closed"), FetchError),
    ],
)
async def test_unreachable_defers_with_the_error_as_the_reason(
    error: FetchError, kind: type[FetchError]
) -> None:
    engine = site({"http://a.test/robots.txt": error})
    robots = make()
    later = await deferred(robots, engine, "http://a.test/")
    assert len(engine.requests) == 1
    cause = later.__cause__
    assert type(cause) is kind  # the crawl files the error by its class
    assert str(cause) == f"robots.txt unreachable: {error}"
    assert cause.__cause__ is error
    assert getattr(cause, "phase", None) == getattr(error, "phase", None)
    assert getattr(cause, "kind", None) == getattr(error, "kind", None)


async def test_without_defer_unreachable_is_a_robots_drop_with_the_reason() -> None:
    engine = site({"http://a.test/robots.txt": (503, "")})
    robots = make(defer=False)
    with pytest.raises(RequestDropped) as caught:
        await robots(Request("http://a.test/"), engine.send)
    assert caught.value.reason == "robots"
    assert str(caught.value.__cause__) == "robots.txt unreachable: 503 Service Unavailable"


async def test_a_brief_outage_only_delays_the_origin() -> None:
    clock = FakeClock()
    routes: dict[str, Answer] = {"http://a.test/robots.txt": (503, "")}
    engine, robots = site(routes), make(clock, error_max_age=30)
    later = await deferred(robots, engine, "http://a.test/page")
    routes["http://a.test/robots.txt"] = (200, RULES)
    clock.now = later.not_before - clock.wall() + clock.now  # the crawl re-queues until then
    assert await fetch(robots, engine, "http://a.test/page")
    assert not await fetch(robots, engine, "http://a.test/private/x")
    assert robots_fetches(engine) == ["http://a.test/robots.txt"] * 2


async def test_error_max_age_defaults_to_the_module_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert make().error_max_age == robots_module.ERROR_MAX_AGE == 600
    monkeypatch.setattr(robots_module, "ERROR_MAX_AGE", 0.25)
    assert make().error_max_age == 0.25  # how crawl tests keep deferrals short
    assert make(error_max_age=9).error_max_age == 9


async def test_an_inner_retry_that_defers_makes_robots_unreachable() -> None:
    """A 429 with a long Retry-After makes the crawl's Retry raise RetryLater while
    fetching robots.txt: the origin is unreachable until then, not a crash, and the
    page is deferred with the 429 as its reason, never answered with it."""
    clock = FakeClock()
    engine = site({"http://a.test/robots.txt": (429, "", {"Retry-After": "30"})})
    retry = Retry(2, defer_after=5, clock=clock.wall, sleep=FakeTime().sleep)
    robots = make(clock, error_max_age=600)
    handler = compose([robots, retry], engine.send)
    with pytest.raises(RetryLater) as caught:
        await handler(Request("http://a.test/page"))
    later = caught.value
    assert later.response is None
    assert str(later.__cause__) == "robots.txt unreachable: 429 Too Many Requests"
    assert later.not_before == pytest.approx(clock.wall() + 30)  # Retry-After beats 600
    assert robots_fetches(engine) == ["http://a.test/robots.txt"]
    with pytest.raises(RetryLater):  # cached: no second fetch
        await handler(Request("http://a.test/other"))
    assert len(engine.requests) == 1


@pytest.mark.parametrize(
    "error",
    [
        BodyTooLarge("body of 9000000 bytes exceeds max_bytes=2048000"),
        BlockedAddress("address 10.0.0.1 is blocked"),  # the page meets the same guard
    ],
)
async def test_oversized_or_blocked_robots_allows_everything(error: FetchError) -> None:
    clock = FakeClock()
    engine = site({"http://a.test/robots.txt": error})
    robots = make(clock, error_max_age=60)
    assert await fetch(robots, engine, "http://a.test/")
    clock.now += 60  # kept only as long as an error: the file may shrink
    assert await fetch(robots, engine, "http://a.test/")
    assert len(robots_fetches(engine)) == 2


def padded(head: str, size: int, tail: str = "") -> str:
    """``head``, comment lines up to exactly ``size`` characters, then ``tail``."""
    filler = "# " + "x" * 98 + "\n"
    lines, rest = divmod(size - len(head), len(filler))
    last = "#" * (rest - 1) + "\n" if rest else ""
    return head + filler * lines + last + tail


async def test_the_first_500_kib_of_a_big_robots_txt_are_parsed() -> None:
    # RFC 9309 2.5: parse at least the first 500 KiB. The rule at the start applies;
    # the rule past the limit is not read, nor is the one cut by it read in half
    # (half of "Allow: /private/zone-public" would allow more than it says).
    text = padded(RULES, 500 * 1024 - 20, "Allow: /private/zone-public\nDisallow: /late\n")
    text = padded(text, 600 * 1024)
    engine = site({"http://a.test/robots.txt": (200, text)})
    robots = make()
    assert not await fetch(robots, engine, "http://a.test/private/x")
    assert not await fetch(robots, engine, "http://a.test/private/zone-secret")
    assert await fetch(robots, engine, "http://a.test/private/ok")
    assert await fetch(robots, engine, "http://a.test/late")
    assert engine.requests[0].max_bytes == 4 * 500 * 1024


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
    assert all(r.lineage.kind == "robots" for r in engine.requests)


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
    gate = Gate(RULES)
    robots = make()
    urls = [f"http://a.test/{'private/' * (i % 2)}{i}" for i in range(20)]
    tasks = await start_waiting(*(lambda url=url: fetch(robots, gate.engine, url) for url in urls))
    await gate.arrivals(1)  # the one fetch is in flight, and every request is waiting
    assert robots_fetches(gate.engine) == ["http://a.test/robots.txt"]
    gate.open.set()
    results = await asyncio.gather(*tasks)
    assert results == [i % 2 == 0 for i in range(20)]
    assert robots_fetches(gate.engine) == ["http://a.test/robots.txt"]
    assert len(gate.engine.requests) == 1 + 10


async def test_a_cancelled_waiter_leaves_the_fetch_alone() -> None:
    gate = Gate("")
    robots = make()
    first, second, third = await start_waiting(
        *(lambda i=i: fetch(robots, gate.engine, f"http://a.test/{i}") for i in range(3))
    )
    await gate.arrivals(1)
    second.cancel()
    gate.open.set()
    assert await first
    assert await third
    with pytest.raises(asyncio.CancelledError):
        await second
    assert len(robots_fetches(gate.engine)) == 1


async def test_a_cancelled_fetcher_hands_the_fetch_to_a_waiter() -> None:
    gate = Gate("User-agent: *\nDisallow: /no")
    robots = make()
    (fetcher,) = await start_waiting(lambda: fetch(robots, gate.engine, "http://a.test/1"))
    await gate.arrivals(1)
    (waiter,) = await start_waiting(lambda: fetch(robots, gate.engine, "http://a.test/no"))
    fetcher.cancel()
    await gate.arrivals(2)  # the waiter took the fetch over
    gate.open.set()
    assert not await waiter
    with pytest.raises(asyncio.CancelledError):
        await fetcher
    assert len(robots_fetches(gate.engine)) == 2
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
    await deferred(robots, engine, "http://a.test/")
    routes["http://a.test/robots.txt"] = (404, "")
    clock.now += 59
    assert (await deferred(robots, engine, "http://a.test/")).not_before == clock.wall() + 1
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


async def test_a_robots_request_passes_straight_through() -> None:
    engine = site({"http://a.test/robots.txt": (200, "User-agent: *\nDisallow: /")})
    robots = make()
    robots_kind = Lineage(kind="robots")
    await robots(Request("http://a.test/other.txt", lineage=robots_kind), engine.send)
    assert [r.url for r in engine.requests] == ["http://a.test/other.txt"]
    assert robots.cached_origins() == 0
    with pytest.raises(RequestDropped):  # the user's meta marks nothing
        await robots(Request("http://a.test/x", meta={"robots": True}), engine.send)


def test_constructor_validates() -> None:
    with pytest.raises(ValueError, match="max_origins"):
        Robots(UA, max_origins=0)
    with pytest.raises(ValueError, match="max_redirects"):
        Robots(UA, max_redirects=-1)
    with pytest.raises(ValueError, match="max_download"):
        Robots(UA, max_bytes=100, max_download=99)


# end to end: the Fetcher with Robots against the hostile server ----------------------------


async def allowed_on(
    hostile: HostileServer, engine: str, port: str, paths: list[str], **options: object
) -> list[bool | BaseException]:
    """Fetch ``paths`` of ``port`` in order through ``Robots``: True when fetched, else
    what was raised."""
    robots = Robots(UA, **options)  # type: ignore[arg-type]
    results: list[bool | BaseException] = []
    async with Fetcher(engine, timeout=1, middleware=[robots], user_agent=UA) as fetcher:
        for path in paths:
            try:
                results.append((await fetcher.get(hostile.url(path, port=port))).status == 200)
            except (RequestDropped, RetryLater, FetchError) as exc:
                results.append(exc)
    return results


@pytest.mark.parametrize("port", ["r404", "r403", "rloop"])
async def test_unavailable_robots_txt_allows_everything(
    engine: str, hostile: HostileServer, port: str
) -> None:
    before = hostile.hits_for_port(port, "/forbidden/secret")
    assert await allowed_on(hostile, engine, port, ["/", "/forbidden/secret"]) == [True, True]
    assert hostile.hits_for_port(port, "/forbidden/secret") == before + 1


@pytest.mark.parametrize("port", ["rredirect", "rbig"])
async def test_redirected_and_600_kib_rules_are_obeyed(
    engine: str, hostile: HostileServer, port: str
) -> None:
    before = hostile.hits_for_port(port, "/forbidden/secret")
    results = await allowed_on(hostile, engine, port, ["/page", "/forbidden/secret"])
    assert results[0] is True
    assert isinstance(results[1], RequestDropped)
    assert hostile.hits_for_port(port, "/forbidden/secret") == before  # never sent
    if port == "rredirect":
        assert hostile.hits_for_port(port, "/moved/again.txt") > 0
    else:
        assert BIG_ROBOTS_SIZE > 500 * 1024


@pytest.mark.parametrize(
    ("port", "reason"),
    [
        ("r500", "robots.txt unreachable: 500 Internal Server Error"),
        ("r429", "robots.txt unreachable: 429 Too Many Requests"),
        ("rhang", "robots.txt unreachable: total timeout after 1s"),
    ],
)
async def test_unreachable_robots_txt_defers_and_sends_nothing(
    engine: str, hostile: HostileServer, port: str, reason: str
) -> None:
    before = hostile.hits_for_port(port, "/")
    fetched = hostile.hits_for_port(port, "/robots.txt")
    clock = FakeClock()
    with hang_guard(1 + LATE):  # one timeout of 1 s, not the server's HANG
        (later,) = await allowed_on(
            hostile, engine, port, ["/"], error_max_age=60, clock=clock, wall_clock=clock.wall
        )
    assert hostile.hits_for_port(port, "/robots.txt") == fetched + 1  # asked once, not retried
    assert isinstance(later, RetryLater)
    assert str(later.__cause__) == reason
    assert later.not_before == clock.wall() + 60  # when the cached outage expires
    (dropped,) = await allowed_on(hostile, engine, port, ["/"], defer=False)
    assert isinstance(dropped, RequestDropped)
    assert str(dropped.__cause__).startswith("robots.txt unreachable")
    assert hostile.hits_for_port(port, "/") == before  # the page was never requested


async def test_robots_txt_back_after_an_outage(engine: str, hostile: HostileServer) -> None:
    """The rflaky port fails its first fetches of robots.txt, then serves the rules."""
    clock = FakeClock()
    robots = Robots(UA, error_max_age=5, clock=clock, wall_clock=clock.wall)
    outcomes: list[str] = []
    hostile.arm_flaky_robots()
    async with Fetcher(engine, timeout=1, middleware=[robots], user_agent=UA) as fetcher:
        for _ in range(ROBOTS_FLAKY_FAILURES + 1):
            clock.now += 5  # the cached outage expires: robots.txt is asked again
            try:
                outcomes.append(str((await fetcher.get(hostile.url("/", port="rflaky"))).status))
            except RetryLater as exc:
                outcomes.append(str(exc.__cause__))
        with pytest.raises(RequestDropped):
            await fetcher.get(hostile.url("/forbidden/secret", port="rflaky"))
    assert outcomes[-1] == "200"
    assert set(outcomes[:-1]) == {"robots.txt unreachable: 503 Service Unavailable"}
    assert hostile.hits_for_port("rflaky", "/forbidden/secret") == 0
