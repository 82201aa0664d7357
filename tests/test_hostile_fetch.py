"""The Fetcher, on every engine, and the health checker against the hostile server
(tests/hostile.py): the right error, within the timeout, with only the requests
policy allows, and a bounded memory whatever the server sends."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from typing import Any
from urllib.parse import urlencode

import pytest

from crawler import (
    BodyTooLarge,
    ConnectError,
    Fetcher,
    FetchError,
    FetchTimeout,
    InvalidURL,
    ProtocolError,
    Response,
    Timeouts,
    TooManyRedirects,
)
from crawler.cli import main
from crawler.health.probe import check_targets
from crawler.health.targets import Target
from tests.fakes import FakeTime, fetcher_time
from tests.hostile import BIG, CHARSETS, MARGIN, MAX_RSS, TIMEOUT, HostileServer
from tests.server import PEAK_RSS

MAX_BYTES = 10_000_000


def hit_key(path: str) -> str:
    return path.partition("?")[0]


async def fetch(engine: str, url: str, **options: Any) -> tuple[Response | FetchError, float]:
    """The response or the error, and how long it took."""
    options = {"timeout": TIMEOUT, **options}
    started = time.monotonic()
    async with Fetcher(engine, **options) as fetcher:
        try:
            result: Response | FetchError = await fetcher.get(url)
        except FetchError as exc:
            result = exc
    return result, time.monotonic() - started


# transport ---------------------------------------------------------------------------------

TRANSPORT = [
    ("/hang-before-headers", FetchTimeout),
    ("/hang-after-headers", FetchTimeout),
    ("/drip", FetchTimeout),  # one byte a second for a minute
    ("raw:/short-body-hang", FetchTimeout),  # Content-Length 1000, ten bytes, silence
    ("/reset", ProtocolError),
    ("raw:/reset-mid-body", ProtocolError),
    ("/truncated", ProtocolError),
    ("raw:/short-body", ProtocolError),  # Content-Length longer than the body
    ("raw:/bad-chunks", ProtocolError),
    ("raw:/chunks-cut", ProtocolError),
    ("raw:/chunk-lies", ProtocolError),
    ("raw:/garbage", ProtocolError),
    ("raw:/binary", ProtocolError),
    ("raw:/bad-status", ProtocolError),
    ("raw:/header-flood", ProtocolError),
    ("raw:/no-response", ConnectError),
]


@pytest.mark.parametrize(("path", "error"), TRANSPORT)
async def test_transport_failures_raise_the_right_error_in_time(
    engine: str,
    hostile: HostileServer,
    path: str,
    error: type[FetchError],
    request: pytest.FixtureRequest,
) -> None:
    before = hostile.hits_for(hit_key(path))
    result, elapsed = await fetch(engine, hostile.url_for(path))
    assert type(result) is error, result
    assert elapsed < TIMEOUT + MARGIN
    assert result.request is not None
    assert hostile.hits_for(hit_key(path)) == before + 1
    if path == "/drip":  # bytes keep coming: only the total deadline can end it
        assert isinstance(result, FetchTimeout)
        assert result.phase == "total"


async def test_a_read_timeout_fires_before_the_total_one(
    engine: str, hostile: HostileServer
) -> None:
    result, elapsed = await fetch(
        engine, hostile.raw_url("/short-body-hang"), timeout=Timeouts(read=0.5, total=30)
    )
    assert isinstance(result, FetchTimeout)
    assert result.phase == "read"
    assert elapsed < 0.5 + MARGIN


# size --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", BIG)
async def test_bombs_and_huge_bodies_stop_at_max_bytes(
    engine: str, hostile: HostileServer, path: str, request: pytest.FixtureRequest
) -> None:
    hostile.bombs_ready()
    result, elapsed = await fetch(engine, hostile.url(path), max_bytes=MAX_BYTES)
    assert isinstance(result, BodyTooLarge), result
    assert "max_bytes" in str(result)
    assert elapsed < 2 * MARGIN
    assert result.received <= MAX_BYTES + (1 << 20)  # one read past the cap at most


def test_memory_stays_bounded_whatever_the_body(engine: str, hostile: HostileServer) -> None:
    """Peak RSS is a high-water mark: measured in a fresh process that does only this."""
    hostile.bombs_ready()
    urls = [hostile.url(path) for path in BIG]
    script = textwrap.dedent(f"""
        import asyncio, json
        from crawler import Fetcher, FetchError
        async def main():
            seen = {{}}
            async with Fetcher({engine!r}, timeout=10, max_bytes={MAX_BYTES}) as fetcher:
                for url in {urls!r}:
                    try:
                        seen[url] = len((await fetcher.get(url)).body)
                    except FetchError as exc:
                        seen[url] = type(exc).__name__
            return seen
        seen = asyncio.run(main())
        peak = {PEAK_RSS}
        print(json.dumps({{"seen": seen, "peak": peak}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True)  # fmt: skip
    report = json.loads(done.stdout)
    assert report["peak"] < MAX_RSS, report
    for url, seen in report["seen"].items():
        assert seen == "BodyTooLarge" or seen <= MAX_BYTES, (url, seen)


# redirects ---------------------------------------------------------------------------------


async def test_a_redirect_loop_ends_quickly(engine: str, hostile: HostileServer) -> None:
    before = hostile.hits_under("/loop/")
    result, elapsed = await fetch(engine, hostile.url("/loop/a"))
    assert isinstance(result, TooManyRedirects)
    assert "loop" in str(result)
    assert hostile.hits_under("/loop/") - before <= 4
    assert elapsed < MARGIN


async def test_a_30_hop_chain_is_cut_at_max_redirects(engine: str, hostile: HostileServer) -> None:
    key = f"/chain/cut-{engine}/"
    result, _ = await fetch(engine, hostile.url(key + "30"), max_redirects=10)
    assert isinstance(result, TooManyRedirects)
    assert hostile.hits_under(key) == 11  # the first request and ten redirects, no more


async def test_a_30_hop_chain_is_followed_when_allowed(engine: str, hostile: HostileServer) -> None:
    key = f"/chain/whole-{engine}/"
    result, _ = await fetch(engine, hostile.url(key + "30"), max_redirects=30)
    assert isinstance(result, Response)
    assert result.status == 200
    assert len(result.history) == 30
    assert result.url == hostile.url(key + "0")


def forbidden_targets(hostile: HostileServer) -> list[tuple[str, str]]:
    """(Location, a main-port path a client that mangled it would request)."""
    port = hostile.ports["main"]
    return [
        ("file:///etc/passwd", "/etc/passwd"),
        ("file://127.0.0.1/etc/passwd", "/etc/passwd"),
        (f"ftp://127.0.0.1:{port}/via-ftp", "/via-ftp"),
        (f"gopher://127.0.0.1:{port}/_via-gopher", "/_via-gopher"),
        (f"ws://127.0.0.1:{port}/via-ws", "/via-ws"),
        ("data:text/html,<a href=/via-data>x</a>", "/via-data"),
        ("javascript:fetch('/via-js')", "/via-js"),
        ("mailto:root@127.0.0.1", "/root"),
        ("http://", "/redirect-to"),  # no host: yarl read it as "here", a loop
        ("//", "/redirect-to"),
        ("http://127.0.0.1:99999/via-port", "/via-port"),
    ]


@pytest.mark.parametrize("index", range(11))
async def test_redirects_to_other_schemes_are_invalid_and_never_sent(
    engine: str, hostile: HostileServer, index: int
) -> None:
    location, mangled = forbidden_targets(hostile)[index]
    path = "/redirect-to?" + urlencode({"url": location})
    before = {key: hostile.hits_for(key) for key in ("/redirect-to", mangled)}
    result, _ = await fetch(engine, hostile.url(path))
    assert isinstance(result, InvalidURL), result
    assert "bad redirect" in str(result)
    assert hostile.hits_for("/redirect-to") == before["/redirect-to"] + 1
    assert hostile.hits_for(mangled) == before[mangled] + (mangled == "/redirect-to")


SECRETS = {"Authorization": "Bearer s3cret", "Cookie": "session=s3cret",
           "Proxy-Authorization": "Basic czNjcmV0"}  # fmt: skip


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_credentials_never_follow_a_redirect_to_another_origin(
    engine: str, hostile: HostileServer, status: int
) -> None:
    marker = f"{engine}-{status}"
    elsewhere = hostile.url(f"/echo/{marker}", port="other")
    query = {"url": elsewhere, "status": status, "marker": marker}
    here = hostile.url("/redirect-to?" + urlencode(query))
    async with Fetcher(engine, timeout=TIMEOUT, headers=SECRETS) as fetcher:
        response = await fetcher.get(here)
        same = await fetcher.get(hostile.url("/redirect-to?" + urlencode({"url": "/echo/same"})))
    assert response.status == 200
    assert response.url == elsewhere
    (arrived,) = [r for r in hostile.received("other") if r["path"] == f"/echo/{marker}"]
    for name in SECRETS:
        assert name.lower() not in arrived["headers"], name
        assert name.lower() not in response.json()["headers"], name
    # The first hop did carry them, and a same-origin hop keeps them: the test can fail.
    (sent,) = [r for r in hostile.received("main") if f"marker={marker}" in r["path"]]
    assert sent["headers"]["authorization"] == SECRETS["Authorization"]
    assert same.json()["headers"]["authorization"] == SECRETS["Authorization"]


# retries -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "failures", "retries", "status", "hits"),
    [("hostile", 2, 2, 200, 3), ("short", 5, 1, 503, 2)],  # within, and out of, its retries
)
async def test_a_flaky_endpoint_gets_its_retries_and_no_more(
    engine: str,
    hostile: HostileServer,
    name: str,
    failures: int,
    retries: int,
    status: int,
    hits: int,
) -> None:
    path = f"/flaky/{name}-{engine}"
    url = hostile.url(path + f"?failures={failures}")
    result, _ = await fetch(engine, url, retries=retries, backoff=0.01, max_backoff=0.05)
    assert isinstance(result, Response)
    assert result.status == status
    assert hostile.hits_for(path) == hits


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    """The Fetcher's retry and rate limit on a clock that starts at the real time (the
    server writes Retry-After dates from its own) and then moves only when they
    sleep, at once, noting each wait in ``waits.sleeps``."""
    fake = FakeTime(time.time())
    fetcher_time(monkeypatch, fake)
    return fake


# case -> (Retry-After, status, max_backoff, at least, at most seconds waited). Only 429
# and 503 back the host off in the rate limit too, so the cases that must show which
# wait the retry chose come with a 500: a value capped (0.3 s) or misread (1 s or more)
# shows. An HTTP-date has one-second resolution, and is written a moment after the
# fake clock starts (MARGIN: that moment on a loaded machine).
RETRY_AFTER = {
    "seconds": ("1", 429, 5, 1.0, 1.0),  # honoured
    "http-date": ("date+2", 429, 5, 1.0, 2 + MARGIN),  # honoured
    "absurd": ("1000000000", 500, 0.3, 0.3, 0.3),  # capped at max_backoff
    "overflow": ("9" * 30, 500, 0.3, 0.3, 0.3),  # past 2^31: capped, not ignored
    "far-date": ("date+315360000", 500, 0.3, 0.3, 0.3),  # ten years ahead
    "word": ("soon", 500, 5, 0.0, 0.9),  # invalid: ignored, the backoff applies
    "negative": ("-5", 500, 5, 0.0, 0.9),
    "fraction": ("1.5", 500, 5, 0.0, 0.9),
    "arabic-one": ("\u0661", 500, 5, 0.0, 0.9),  # a digit to str.isdigit, not to RFC 9110
    "bad-date": ("Sun, 99 Foo 2024 25:61:61 GMT", 500, 5, 0.0, 0.9),
}


@pytest.mark.parametrize("case", RETRY_AFTER)
async def test_retry_after_is_honoured_capped_or_ignored(
    engine: str, hostile: HostileServer, case: str, waits: FakeTime
) -> None:
    after, status, max_backoff, at_least, at_most = RETRY_AFTER[case]
    path = f"/retry/{engine}-{case}"
    query = {"failures": 1, "after": after, "status": status}
    url = hostile.url(path + "?" + urlencode(query))
    result, _ = await fetch(engine, url, retries=1, backoff=0.01, max_backoff=max_backoff)
    assert isinstance(result, Response)
    assert result.status == 200
    assert hostile.hits_for(path) == 2
    assert at_least <= sum(waits.sleeps) <= at_most, waits.sleeps


async def test_a_503_storm_costs_a_bounded_number_of_requests(
    engine: str, hostile: HostileServer, waits: FakeTime
) -> None:
    paths = [f"/storm/{engine}-{i}" for i in range(10)]
    async with Fetcher(engine, timeout=TIMEOUT, retries=3, backoff=0.01, max_backoff=0.05) as f:
        results = [r async for r in f.map(hostile.url(p + "?after=3600") for p in paths)]
    assert [r.response.status for r in results if r.response] == [503] * 10
    assert [hostile.hits_for(p) for p in paths] == [4] * 10
    assert waits.sleeps  # the retries and the host's back-off waited...
    assert max(waits.sleeps) <= 0.05  # ...each at most max_backoff, not the hour asked for


# charsets ----------------------------------------------------------------------------------

TITLE = re.compile(r"<title>(.*?)</title>", re.DOTALL)


async def test_every_charset_decodes_as_a_browser_would(
    engine: str, hostile: HostileServer
) -> None:
    async with Fetcher(engine, timeout=TIMEOUT) as fetcher:
        for name, (_, _, title) in CHARSETS.items():
            response = await fetcher.get(hostile.url(f"/cs/{name}"))
            found = TITLE.search(response.text)
            assert found is not None, name
            assert found.group(1) == title, name


# health ------------------------------------------------------------------------------------

HEALTH = {
    "/hang-before-headers": "timeout",
    "/drip": "timeout",
    "raw:/garbage": "protocol",
    "raw:/bad-chunks": "protocol",
    "raw:/short-body": "protocol",
    "raw:/reset-mid-body": "protocol",
    "raw:/no-response": "connect",
    "/bomb/gzip": "too_large",
    "/huge?mb=200&length=0": "too_large",
    "/loop/a": "too_many_redirects",
    "/chain/health/30": "too_many_redirects",
    "/redirect-to?url=file:///etc/passwd": "invalid_url",
    "/retry-after?value=1000000000": "429",  # no error: a status that fails the check
    "/storm/health": "503",
}


async def test_health_checks_report_each_hostile_target_in_time(
    engine: str, hostile: HostileServer
) -> None:
    hostile.bombs_ready()
    targets = [Target(path, hostile.url_for(path), timeout=TIMEOUT, retries=1) for path in HEALTH]
    started = time.monotonic()
    results = await check_targets(targets, engine=engine)
    # All at once, each at most two attempts of TIMEOUT with a wait capped at TIMEOUT.
    assert time.monotonic() - started < 3 * TIMEOUT + MARGIN
    assert [r.name for r in results] == list(HEALTH)
    for result in results:
        expected = HEALTH[result.name]
        assert not result.ok, result.name
        assert result.reason, result.name
        if expected.isdigit():
            assert (result.error, result.status) == (None, int(expected)), result.name
            assert f"saw {expected}" in result.reason
        else:
            assert result.error == expected, (result.name, result.reason)
            assert result.message, result.name
            assert result.latency < TIMEOUT * 2 + MARGIN, result.name


def test_ping_reports_hostile_urls_without_hanging(
    capsys: pytest.CaptureFixture[str], hostile: HostileServer
) -> None:
    hostile.bombs_ready()
    urls = [hostile.url_for(path) for path in HEALTH]
    started = time.monotonic()
    code = main(["ping", *urls, "--timeout", str(TIMEOUT), "--json"])
    elapsed = time.monotonic() - started
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1
    assert elapsed < TIMEOUT + 2 * MARGIN
    assert [r["url"] for r in records] == urls
    assert all(r["ok"] is False for r in records)
    reasons = {
        path: r["error"] or str(r["status"]) for path, r in zip(HEALTH, records, strict=True)
    }
    assert reasons == HEALTH
