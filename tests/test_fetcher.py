"""The embeddable Fetcher on every engine, end to end against the loopback server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlencode

import pytest

from crawler import (
    ConfigError,
    Fetcher,
    FetchError,
    FetchTimeout,
    InvalidURL,
    ProtocolError,
    Result,
    SyncFetcher,
    TooManyRedirects,
)
from tests.fakes import FakeTime, fetcher_time
from tests.guards import LATE, hang_guard
from tests.server import PEAK_RSS, LoopbackServer


async def test_documented_usage(engine: str, server: LoopbackServer) -> None:
    urls = [
        server.url("/ok"),
        server.url("/status/404"),
        "http://127.0.0.1:9/",
        server.url("/gzip"),
    ]
    async with Fetcher(
        engine=engine,
        concurrency=64,
        per_host_concurrency=8,
        timeout=10,
        retries=3,
        rate_limit="10/s",
        user_agent="my-app/1.0",
    ) as fetcher:
        response = await fetcher.get(server.url("/echo"))
        assert response.status == 200
        assert response.url == server.url("/echo")
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["headers"]["user-agent"] == "my-app/1.0"
        results = {result.url: result async for result in fetcher.map(urls)}
    assert set(results) == set(urls)
    assert results[urls[0]].ok
    assert results[urls[0]].response.status == 200
    assert results[urls[1]].ok
    assert results[urls[1]].response.status == 404
    assert not results[urls[2]].ok
    assert isinstance(results[urls[2]].error, FetchError)
    assert results[urls[2]].response is None


def test_documented_sync_usage(engine: str, server: LoopbackServer) -> None:
    with SyncFetcher(engine=engine, timeout=10) as fetcher:
        response = fetcher.get(server.url("/ok"))
        assert response.status == 200
        results = list(fetcher.map([server.url("/ok"), "nope"]))
    assert sorted(r.ok for r in results) == [False, True]


def test_sync_fetcher_serves_many_threads_at_once(server: LoopbackServer) -> None:
    statuses: list[int] = []
    with SyncFetcher(engine="aiohttp") as fetcher:

        def work() -> None:
            statuses.append(fetcher.get(server.url("/ok")).status)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert statuses == [200] * 8


def test_sync_fetcher_must_be_open(server: LoopbackServer) -> None:
    with pytest.raises(RuntimeError, match="not open"):
        SyncFetcher().get(server.url("/ok"))


def test_sync_fetcher_raises_fetch_errors(server: LoopbackServer) -> None:
    with SyncFetcher(engine="threads", timeout=1) as fetcher, pytest.raises(FetchTimeout):
        fetcher.get(server.url("/hang-before-headers"))


@pytest.mark.parametrize("path", ["/drip", "/hang-before-headers"])
async def test_slow_server_times_out_within_budget(
    engine: str, server: LoopbackServer, path: str
) -> None:
    with hang_guard(2 + LATE):  # the 2 s timeout, not the server's HANG
        async with Fetcher(engine=engine, timeout=2, retries=0) as fetcher:
            with pytest.raises(FetchTimeout):
                await fetcher.get(server.url(path))


async def test_flaky_endpoint_succeeds_on_the_third_attempt(
    engine: str, server: LoopbackServer
) -> None:
    path = f"/flaky/fetcher-{engine}"
    async with Fetcher(engine=engine, retries=3, backoff=0) as fetcher:
        response = await fetcher.get(server.url(path + "?failures=2&status=503"))
    assert response.status == 200
    assert server.hits_for(path) == 3


async def test_out_of_retries_returns_the_last_response(
    engine: str, server: LoopbackServer
) -> None:
    path = f"/flaky/exhausted-{engine}"
    async with Fetcher(engine=engine, retries=2, backoff=0) as fetcher:
        response = await fetcher.get(server.url(path + "?failures=10&status=500"))
    assert response.status == 500
    assert server.hits_for(path) == 3


async def test_retry_after_zero_is_retried(engine: str, server: LoopbackServer) -> None:
    before = server.hits_for("/retry-after")  # the server counts paths across tests
    async with Fetcher(engine=engine, retries=1, backoff=0) as fetcher:
        response = await fetcher.get(server.url(f"/retry-after?value=0&e={engine}"))
    assert response.status == 429
    assert server.hits_for("/retry-after") - before == 2


async def test_timeouts_are_retried(engine: str, server: LoopbackServer) -> None:
    path = "/hang-before-headers"
    before = server.hits_for(path)
    async with Fetcher(engine=engine, timeout=0.5, retries=1, backoff=0) as fetcher:
        with pytest.raises(FetchTimeout):
            await fetcher.get(server.url(path))
    assert server.hits_for(path) - before == 2


async def test_redirect_chain_is_followed_with_history(engine: str, server: LoopbackServer) -> None:
    async with Fetcher(engine=engine) as fetcher:
        response = await fetcher.get(server.url("/redirect/3"))
    assert response.status == 200
    assert response.url == server.url("/ok")
    assert response.request_url == server.url("/redirect/3")
    assert [r.status for r in response.history] == [302, 302, 302]
    assert [r.url for r in response.history] == [
        server.url("/redirect/3"),
        server.url("/redirect/2"),
        server.url("/redirect/1"),
    ]


async def test_redirect_limits(engine: str, server: LoopbackServer) -> None:
    async with Fetcher(engine=engine, max_redirects=5) as fetcher:
        with pytest.raises(TooManyRedirects, match="loop"):
            await fetcher.get(server.url("/loop/a"))
        with pytest.raises(TooManyRedirects, match="more than 5"):
            await fetcher.get(server.url("/redirect/30"))
        assert (await fetcher.get(server.url("/redirect/5"))).status == 200


async def test_redirects_can_be_left_alone(engine: str, server: LoopbackServer) -> None:
    async with Fetcher(engine=engine, follow_redirects=False) as fetcher:
        response = await fetcher.get(server.url("/redirect/2"))
    assert response.status == 302
    assert response.history == ()


@pytest.mark.parametrize(
    "target",
    ["file:///etc/passwd", "ftp://127.0.0.1/x", "data:text/html,hi", "gopher://127.0.0.1:70/"],
)
async def test_redirects_to_other_schemes_are_refused(
    engine: str, server: LoopbackServer, target: str
) -> None:
    async with Fetcher(engine=engine) as fetcher:
        with pytest.raises(InvalidURL, match="redirect"):
            await fetcher.get(server.url(f"/redirect-to?url={target}"))


async def test_credentials_stay_with_their_origin(engine: str, server: LoopbackServer) -> None:
    secret = {"Authorization": "Bearer secret", "Cookie": "sid=1"}
    same = server.url("/echo")
    other = server.url("/echo", host="localhost")
    async with Fetcher(engine=engine) as fetcher:
        kept = await fetcher.get(server.url(f"/redirect-to?url={same}"), headers=secret)
        dropped = await fetcher.get(server.url(f"/redirect-to?url={other}"), headers=secret)
    assert kept.json()["headers"]["authorization"] == "Bearer secret"
    assert "authorization" not in dropped.json()["headers"]
    assert "sid" not in dropped.json()["cookies"]


async def test_post_then_303_becomes_get(engine: str, server: LoopbackServer) -> None:
    target = server.url("/echo")
    async with Fetcher(engine=engine) as fetcher:
        response = await fetcher.post(
            server.url(f"/redirect-to?url={target}&status=303"), json={"a": 1}
        )
        kept = await fetcher.post(
            server.url(f"/redirect-to?url={target}&status=307"), json={"a": 1}
        )
    assert response.json()["method"] == "GET"
    assert response.json()["body"] == ""
    assert kept.json()["method"] == "POST"
    assert json.loads(kept.json()["body"]) == {"a": 1}


async def test_head_and_form_post(engine: str, server: LoopbackServer) -> None:
    async with Fetcher(engine=engine, headers={"X-App": "1"}, cookies={"k": "v"}) as fetcher:
        head = await fetcher.head(server.url("/ok"))
        form = (await fetcher.post(server.url("/echo"), {"q": "a b"})).json()
    assert (head.status, head.body) == (200, b"")
    assert form["body"] == "q=a+b"
    assert form["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert form["headers"]["x-app"] == "1"
    assert form["cookies"] == {"k": "v"}


@pytest.fixture
def paced(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    """The Fetcher's rate limit on a clock that stands still: each request to a host
    reserves the host's next start, one interval after the one before, and sleeps
    (at once) until it. The sleeps are the starts, whatever order the requests
    arrive in and however long the real exchanges take."""
    still = FakeTime(still=True)
    fetcher_time(monkeypatch, still)
    return still


async def test_rate_limit_paces_one_host(
    engine: str, server: LoopbackServer, paced: FakeTime
) -> None:
    urls = [server.url(f"/ok?one={i}") for i in range(20)]
    async with Fetcher(engine=engine, rate_limit="10/s") as fetcher:
        results = [r async for r in fetcher.map(urls)]
    assert all(r.ok for r in results)
    # One start every 0.1 s: the first at once, the others 0.1, 0.2, ... 1.9 s later.
    assert sorted(paced.sleeps) == pytest.approx([0.1 * n for n in range(1, 20)])


async def test_rate_limit_is_per_host(engine: str, server: LoopbackServer, paced: FakeTime) -> None:
    urls = [server.url(f"/ok?two={i}", host=("127.0.0.1", "localhost")[i % 2]) for i in range(20)]
    async with Fetcher(engine=engine, rate_limit="10/s") as fetcher:
        results = [r async for r in fetcher.map(urls)]
    assert all(r.ok for r in results)
    # Each host on its own: 0.1 s apart within a host, never behind the other host.
    assert sorted(paced.sleeps) == pytest.approx(sorted([0.1 * n for n in range(1, 10)] * 2))


async def test_per_host_concurrency_bounds_one_host(server: LoopbackServer) -> None:
    # /crowd holds the first requests until two are there at once, and answers each
    # after 0.3 s: a limit that let more through would have them in flight together.
    key = "fetcher-per-host"
    urls = [server.url(f"/crowd/{key}?n=2&delay=0.3&c={i}") for i in range(6)]
    async with Fetcher(per_host_concurrency=2) as fetcher:
        results = [r async for r in fetcher.map(urls)]
    assert [r.response and r.response.status for r in results] == [200] * 6, results
    assert server.peak_in_flight(key) == 2  # never more, and the limit is used in full


async def test_map_yields_in_completion_order(server: LoopbackServer) -> None:
    slow, fast = server.url("/slow?delay=0.5"), server.url("/ok?fast")
    async with Fetcher() as fetcher:
        order = [r.url async for r in fetcher.map([slow, fast])]
    assert order == [fast, slow]


async def test_map_pulls_urls_lazily(server: LoopbackServer) -> None:
    pulled = 0

    def urls() -> Iterator[str]:
        nonlocal pulled
        for i in range(1_000_000):
            pulled += 1
            yield server.url(f"/ok?lazy={i}")

    async with Fetcher(concurrency=8) as fetcher:
        results = fetcher.map(urls())
        first: Result = await anext(results)
        await results.aclose()
    assert first.ok
    assert pulled <= 9


async def test_map_accepts_async_iterables(server: LoopbackServer) -> None:
    async def urls() -> object:
        for i in range(3):
            yield server.url(f"/ok?async={i}")

    async with Fetcher() as fetcher:
        results = [r async for r in fetcher.map(urls())]  # type: ignore[arg-type]
    assert len(results) == 3
    assert all(r.ok for r in results)


async def test_fetcher_reopens_and_runs_side_by_side(engine: str, server: LoopbackServer) -> None:
    fetcher = Fetcher(engine=engine)
    async with fetcher:
        assert (await fetcher.get(server.url("/ok"))).status == 200
    async with fetcher, Fetcher(engine="aiohttp") as other:
        pair = await asyncio.gather(fetcher.get(server.url("/ok")), other.get(server.url("/ok")))
    assert [r.status for r in pair] == [200, 200]
    with pytest.raises(RuntimeError, match="not open"):
        await fetcher.get(server.url("/ok"))


async def test_huge_body_fails_cleanly(engine: str, server: LoopbackServer) -> None:
    async with Fetcher(engine=engine, max_bytes=100_000) as fetcher:
        with pytest.raises(ProtocolError):
            await fetcher.get(server.url("/huge?mb=200&length=0"))


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"engine": "curl"}, "engine"),
        ({"concurrency": 0}, "concurrency"),
        ({"timeout": -1}, "timeout"),
        ({"retries": "3"}, "retries"),
        ({"rate_limit": "fast"}, "rate_limit"),
        ({"proxy": "socks5://x"}, "proxy"),
    ],
)
def test_bad_options_name_the_key(options: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Fetcher(**options)  # type: ignore[arg-type]
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{key}: expected ")


def test_gzip_bomb_in_a_fresh_process_stays_small(engine: str, gzip_bomb: str) -> None:
    """Peak RSS is a high-water mark, so it is measured in a process that does only this."""
    script = textwrap.dedent(f"""
        import asyncio, json
        from crawler import BodyTooLarge, Fetcher
        async def main():
            async with Fetcher(engine={engine!r}, max_bytes=10_000_000) as fetcher:
                try:
                    await fetcher.get({gzip_bomb!r})
                except BodyTooLarge as exc:
                    return exc.received, str(exc)
            return None, "no error"
        received, error = asyncio.run(main())
        peak = {PEAK_RSS}
        print(json.dumps({{"received": received, "error": error, "peak": peak}}))
    """)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(out.stdout)
    assert "max_bytes" in report["error"]
    assert report["received"] <= 10_000_000 + (1 << 20)  # one read past the cap, not 1 GiB
    assert report["peak"] < 150 * 2**20


async def test_cookie_gated_redirect_is_not_a_loop(engine: str, server: LoopbackServer) -> None:
    async with Fetcher(engine=engine) as fetcher:
        response = await fetcher.get(server.url("/gate"))
    assert (response.status, response.body) == (200, b"welcome")
    assert [r.url for r in response.history] == [server.url("/gate"), server.url("/gate-consent")]


async def test_map_never_waits_on_a_slow_source(server: LoopbackServer) -> None:
    first_result = asyncio.Event()

    async def urls() -> AsyncIterator[str]:
        yield server.url("/ok?src=1")
        await first_result.wait()  # the next URL exists only once a result came back
        yield server.url("/ok?src=2")

    results = []
    async with Fetcher() as fetcher:
        async for result in fetcher.map(urls()):
            results.append(result)
            first_result.set()
    assert [r.ok for r in results] == [True, True]


async def test_requests_past_the_concurrency_limit_wait_outside_their_timeout(
    engine: str, server: LoopbackServer
) -> None:
    # Three rounds of 0.3 s behind a limit of 2: the last round starts 0.6 s after
    # it was asked for, past its 0.5 s timeout, and must still succeed.
    async with Fetcher(engine, concurrency=2, per_host_concurrency=8, timeout=0.5) as fetcher:
        responses = await asyncio.gather(
            *(fetcher.get(server.url(f"/slow?delay=0.3&n={i}")) for i in range(6))
        )
    assert [response.status for response in responses] == [200] * 6


async def test_large_bodies_wait_for_body_memory_held_by_live_responses(
    engine: str, server: LoopbackServer
) -> None:
    """One slot: while a large response lives, another large body cannot be read (it
    times out); small bodies pass; dropping the response frees the slot."""
    large = server.url("/huge?mb=1")
    async with Fetcher(engine, max_bytes=2_000_000, body_memory=2_000_000, timeout=1) as fetcher:
        # Through a redirect: the response handed back is a copy with its history.
        held = await fetcher.get(server.url("/redirect-to?" + urlencode({"url": large})))
        assert len(held.history) == 1
        assert len(held.body) == 1 << 20
        with pytest.raises(FetchTimeout):
            await fetcher.get(large + "&again=1")
        assert (await fetcher.get(server.url("/ok"))).status == 200
        del held
        assert len((await fetcher.get(large + "&after=1")).body) == 1 << 20


async def test_a_failed_large_read_gives_its_body_memory_back(
    engine: str, server: LoopbackServer
) -> None:
    async with Fetcher(engine, max_bytes=2_000_000, body_memory=2_000_000, timeout=2) as fetcher:
        for attempt in range(3):
            with pytest.raises(FetchError):
                await fetcher.get(server.url(f"/huge?mb=5&length=0&try={attempt}"))
        assert len((await fetcher.get(server.url("/huge?mb=1"))).body) == 1 << 20
