"""Whole crawls against the hostile server (tests/hostile.py): each case ends with the
crawl finished, a clear error of the right kind in errors.jsonl and the summary, no
request policy forbids (the server counts), traps stopped by their budgets, nothing
written outside the output folder, and memory bounded."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

import crawler.middleware.robots as robots_module
from crawler.config import Config, parse_config
from crawler.crawl import Crawler
from crawler.crawl.stats import CrawlStats
from tests.hostile import BIG, CHARSETS, MARGIN, MAX_RSS, TIMEOUT, HostileServer


def make_config(start: list[str], out: Path, **sections: dict[str, Any]) -> Config:
    data: dict[str, dict[str, Any]] = {
        "crawl": {"start_urls": start, "sitemaps": False},
        "fetch": {"concurrency": 32, "per_host_concurrency": 32, "timeout": TIMEOUT},
        "rate_limit": {"per_host": ""},
        "retry": {"retries": 0, "backoff": 0},
        "output": {"dir": str(out)},
        "state": {"frontier": "memory"},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return parse_config(data)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def crawl(config: Config) -> tuple[CrawlStats, list[dict[str, Any]], list[dict[str, Any]]]:
    """Run the crawl; return its stats, items and errors, checking what every crawl owes."""
    crawler = Crawler(config)
    stats = await crawler.run()
    assert crawler.finished
    out = config.output.dir
    errors = read_jsonl(out / "errors.jsonl")
    saved = json.loads((out / "stats.json").read_text())
    assert saved["finished"] is True
    assert saved["errors"] == dict(stats.errors)
    assert stats.error_count == len(errors)  # the summary counts each error once
    return stats, read_jsonl(out / config.output.items), errors


# transport ---------------------------------------------------------------------------------

TRANSPORT = {
    "/hang-before-headers": "timeout",
    "/hang-after-headers": "timeout",
    "/drip": "timeout",
    "raw:/short-body-hang": "timeout",
    "/reset": "protocol",
    "raw:/reset-mid-body": "protocol",
    "raw:/short-body": "protocol",
    "raw:/bad-chunks": "protocol",
    "raw:/chunks-cut": "protocol",
    "raw:/chunk-lies": "protocol",
    "raw:/garbage": "protocol",
    "raw:/binary": "protocol",
    "raw:/bad-status": "protocol",
    "raw:/header-flood": "protocol",
    "raw:/no-response": "connect",
    "/bomb/gzip": "too_large",
    "/bomb/deflate": "too_large",
    "/bomb/raw-deflate": "too_large",
    "/huge?mb=200&length=1": "too_large",
    "/huge?mb=200&length=0": "too_large",
    "/chain/crawl/30": "too_many_redirects",  # reported on the hop past max_redirects
    "/status/404": "http_status",
    "/redirect-to?url=file:///etc/passwd": "invalid_url",
    "/redirect-to?url=ftp://127.0.0.1/via-ftp": "invalid_url",
    "/redirect-to?url=data:text/html,hi": "invalid_url",
    "/redirect-to?url=javascript:fetch('/via-js')": "invalid_url",
    "/redirect-to?url=gopher://127.0.0.1/via-gopher": "invalid_url",
}
NOT_ERRORS = [
    "/ok",
    "/loop/a",  # a loop ends by itself in a crawl: the second /loop/a is a URL already seen
    "/redirect-to?url=/forbidden/via-redirect",  # robots.txt applies to redirect targets
    "/redirect-to?url=http://elsewhere.invalid/x",  # and so does the scope
]


async def test_transport_failures_are_errors_of_the_right_kind_in_time(
    engine: str, hostile: HostileServer, tmp_path: Path
) -> None:
    hostile.bombs_ready()
    start = [hostile.url_for(path) for path in [*TRANSPORT, *NOT_ERRORS]]
    config = make_config(start, tmp_path, fetch={"engine": engine, "max_redirects": 10})
    before = hostile.hits_under("/chain/crawl/")
    started = time.monotonic()
    stats, items, errors = await crawl(config)
    assert time.monotonic() - started < TIMEOUT + 3 * MARGIN  # all hang at once, once
    by_url = {error["url"]: error for error in errors}
    chain_error = hostile.url_for("/chain/crawl/20")  # the 11th hop
    kinds = {path: by_url.get(hostile.url_for(path), {}).get("kind") for path in TRANSPORT}
    kinds["/chain/crawl/30"] = by_url.get(chain_error, {}).get("kind")
    assert kinds == TRANSPORT
    assert len(errors) == len(TRANSPORT)
    assert all(error["message"] for error in errors)
    assert by_url[hostile.url_for("/status/404")]["status"] == 404
    assert hostile.hits_under("/chain/crawl/") - before == 11
    for never in ("/forbidden/via-redirect", "/via-ftp", "/via-js", "/via-gopher", "/etc/passwd"):
        assert hostile.hits_for(never) == 0, never
    assert stats.dropped["robots"] >= 1
    assert stats.dropped["offsite"] >= 1
    assert {item["url"] for item in items} >= {hostile.url_for("/ok")}


async def test_configured_credentials_stay_with_their_origin_in_a_crawl(
    hostile: HostileServer, tmp_path: Path
) -> None:
    elsewhere = hostile.url("/echo/crawl-credentials", port="other")
    start = [hostile.url("/redirect-to?" + urlencode({"url": elsewhere}))]
    headers = {"Authorization": "Bearer s3cret", "Cookie": "session=s3cret"}
    await crawl(make_config(start, tmp_path, fetch={"headers": headers}))
    (arrived,) = [r for r in hostile.received("other") if r["path"] == "/echo/crawl-credentials"]
    assert "authorization" not in arrived["headers"]
    assert "cookie" not in arrived["headers"]


# retries -----------------------------------------------------------------------------------


async def test_flaky_storm_and_retry_after_with_bounded_retries(
    engine: str, hostile: HostileServer, tmp_path: Path
) -> None:
    flaky = f"/flaky/crawl-{engine}"
    storms = [f"/storm/crawl-{engine}-{i}" for i in range(5)]
    invalid = f"/retry/crawl-{engine}-invalid"
    seconds = f"/retry/crawl-{engine}-seconds"
    start = [
        hostile.url(flaky + "?failures=2"),
        *(hostile.url(storm) for storm in storms),
        hostile.url(invalid + "?" + urlencode({"after": "soon", "status": 500})),
        hostile.url(seconds + "?after=1"),
    ]
    config = make_config(start, tmp_path, fetch={"engine": engine}, retry={"retries": 2})
    started = time.monotonic()
    stats, items, errors = await crawl(config)
    # The storm backs the host off (1 s, then 2 s): bounded, and never per request.
    assert time.monotonic() - started < 3 + 1 + 3 * MARGIN
    assert hostile.hits_for(flaky) == 3
    assert [hostile.hits_for(storm) for storm in storms] == [3] * 5  # one try and two retries
    assert hostile.hits_for(invalid) == hostile.hits_for(seconds) == 2
    assert sorted(item["url"] for item in items) == sorted(start[:1] + start[-2:])
    assert sorted(e["url"] for e in errors) == sorted(hostile.url(storm) for storm in storms)
    assert {(e["kind"], e["status"]) for e in errors} == {("http_status", 503)}
    assert stats.errors == {"http_status": 5}


async def test_an_absurd_retry_after_is_deferred_not_waited(
    engine: str, hostile: HostileServer, tmp_path: Path
) -> None:
    path = f"/retry/crawl-absurd-{engine}"
    start = [hostile.url(path + "?" + urlencode({"failures": 5, "after": "1000000000"}))]
    config = make_config(start, tmp_path, fetch={"engine": engine}, retry={"retries": 2})
    crawler = Crawler(config)
    run = asyncio.create_task(crawler.run())
    assert await asyncio.to_thread(hostile.wait_for_hits, path, 1)
    stopped_at = time.monotonic()
    crawler.stop()  # the request in flight may finish: it must not sit out a wait
    stats = await run
    assert time.monotonic() - stopped_at < MARGIN  # not the 5 s grace, not 10^9 s
    assert stats.deferred == 1  # back in the frontier with a not-before time
    assert hostile.hits_for(path) == 1
    assert read_jsonl(tmp_path / "errors.jsonl") == []


# content -----------------------------------------------------------------------------------


async def test_charsets_decode_into_the_items(hostile: HostileServer, tmp_path: Path) -> None:
    start = [hostile.url(f"/cs/{name}") for name in CHARSETS]
    _, items, errors = await crawl(make_config(start, tmp_path))
    titles = {item["url"].rsplit("/", 1)[1]: (item["title"], item["h1"]) for item in items}
    assert titles == {name: (title, title) for name, (_, _, title) in CHARSETS.items()}
    assert errors == []


async def test_malformed_and_deeply_nested_html_parse(
    hostile: HostileServer, tmp_path: Path
) -> None:
    before = {leaf: hostile.hits_for(leaf) for leaf in ("/nested-leaf", "/malformed-leaf")}
    start = [hostile.url("/nested?depth=100000"), hostile.url("/malformed")]
    stats, items, errors = await crawl(make_config(start, tmp_path))
    assert errors == []
    titles = {item["url"]: item["title"] for item in items}
    assert titles[start[0]] == "nested"
    assert titles[start[1]].startswith("broken")
    # The links were found: after 100,000 levels, and in markup broken every way.
    for leaf, count in before.items():
        assert hostile.hits_for(leaf) == count + 1, leaf
    assert stats.items == 4


async def test_content_after_the_end_of_html_is_still_read(
    hostile: HostileServer, tmp_path: Path
) -> None:
    before = hostile.hits_for("/after-html-leaf")
    _, items, errors = await crawl(make_config([hostile.url("/after-html")], tmp_path))
    assert errors == []
    assert items[0]["links"] == 1
    assert hostile.hits_for("/after-html-leaf") == before + 1


async def test_binary_and_non_html_types_are_counted_not_parsed(
    hostile: HostileServer, tmp_path: Path
) -> None:
    before = hostile.hits_under("/bin/")
    stats, items, errors = await crawl(make_config([hostile.url("/bin/")], tmp_path))
    assert errors == []
    assert [item["url"] for item in items] == [hostile.url("/bin/")]
    assert stats.dropped["content-type"] == 5  # png, octet, pdf, plain-html, json
    assert stats.dropped["excluded"] == 1  # doc.pdf: the default exclude pattern
    assert hostile.hits_under("/bin/") - before == 6
    for never in ("/bin/doc.pdf", "/bin/from-plain", "/bin/from-pdf", "/bin/from-json"):
        assert hostile.hits_for(never) == 0, never


# traps -------------------------------------------------------------------------------------

# name -> (seed, the crawl setting that stops it, the prefix counted, most requests, drop)
TRAPS = {
    "calendar": ("/calendar/2024/06", {"max_depth": 4}, "/calendar/", 1 + 2 * 4, "depth"),
    "session ids": ("/session", {"max_pages_per_host": 10}, "/session", 10, "host-budget"),
    "repeated segments": ("/rep/", {"max_path_repeats": 3}, "/rep/", 4, "trap"),
    "growing urls": ("/grow", {"max_url_length": 400}, "/grow", 3, "trap"),
    "soft 404s": ("/soft404/start", {"max_pages_per_host": 12}, "/soft404/", 12, "host-budget"),
}


@pytest.mark.parametrize("trap", TRAPS)
async def test_traps_are_stopped_by_their_budget(
    hostile: HostileServer, tmp_path: Path, trap: str
) -> None:
    seed, settings, prefix, most, reason = TRAPS[trap]
    before = hostile.hits_under(prefix)
    config = make_config([hostile.url(seed)], tmp_path, crawl={"max_depth": 50, **settings})
    stats, items, errors = await crawl(config)
    fetched = hostile.hits_under(prefix) - before
    assert fetched == most  # the budget is spent exactly, never overrun
    assert len(items) == fetched
    assert errors == []
    assert stats.dropped[reason] > 0
    if trap == "growing urls":
        assert all(len(item["url"]) <= 400 for item in items)


# the output folder -------------------------------------------------------------------------


def snapshot(root: Path) -> set[str]:
    return {
        str(Path(folder, name)) for folder, dirs, files in os.walk(root) for name in dirs + files
    }


async def test_no_file_is_written_outside_the_output_folder(
    hostile: HostileServer, tmp_path: Path
) -> None:
    out = tmp_path / "deep" / "er" / "out"
    ancestors = [p for p in out.parents if p != tmp_path and p not in tmp_path.parents]
    outside = {str(p): set(os.listdir(p)) for p in tmp_path.parents}
    before = snapshot(tmp_path)
    start = [hostile.url("/?" + urlencode({"root": str(tmp_path)}), port="escape")]
    config = make_config(start, out, crawl={"max_url_length": 20_000},
                         output={"pages": True})  # fmt: skip
    stats, items, errors = await crawl(config)
    created = snapshot(tmp_path) - before
    assert created, "the crawl wrote nothing"
    stray = {p for p in created if Path(p) not in ancestors and out not in Path(p).parents}
    stray.discard(str(out))
    assert stray == set()
    for folder, names in outside.items():
        assert not {n for n in set(os.listdir(folder)) - names if "escaped" in n}, folder
    # The hostile names were really fetched and written, so the test saw them.
    pages = [p for p in (out / "pages").rglob("*") if p.is_file()]
    assert len(pages) == stats.pages == len(items) >= 20
    assert errors == []
    served = [r["path"] for r in hostile.received("escape")]
    assert any("n" * 10_000 in path for path in served)
    assert any("X-Injected" in path for path in served)
    assert not any("x-injected" in r["headers"] for r in hostile.received("escape"))


# robots.txt --------------------------------------------------------------------------------

ERROR_MAX_AGE = 0.3  # how long a crawl here trusts an unreachable robots.txt


@pytest.fixture
def short_robots_outages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(robots_module, "ERROR_MAX_AGE", ERROR_MAX_AGE)


ROBOTS_OUTCOMES = {
    # port: (robots.txt allows /forbidden/secret, the error for "/" or None)
    "r404": (True, None),
    "r403": (True, None),
    "rloop": (True, None),
    "rredirect": (False, None),
    "rbig": (False, None),
    "rflaky": (False, None),  # a brief outage: deferred, then crawled
    "r500": (False, ("http_status", "robots.txt unreachable: 500 Internal Server Error")),
    "r429": (False, ("http_status", "robots.txt unreachable: 429 Too Many Requests")),
    "rhang": (False, ("timeout", "robots.txt unreachable: total timeout after 1s")),
}


@pytest.mark.usefixtures("short_robots_outages")
async def test_every_robots_txt_behaviour_in_one_crawl(
    engine: str, hostile: HostileServer, tmp_path: Path
) -> None:
    hostile.arm_flaky_robots()
    before = {port: hostile.hits_for_port(port, "/forbidden/secret") for port in ROBOTS_OUTCOMES}
    robots_before = {port: hostile.hits_for_port(port, "/robots.txt") for port in ROBOTS_OUTCOMES}
    pages_before = {port: hostile.hits_for_port(port, "/") for port in ROBOTS_OUTCOMES}
    start = [hostile.url("/", port=port) for port in ROBOTS_OUTCOMES]
    config = make_config(start, tmp_path, fetch={"engine": engine}, retry={"retries": 1})
    started = time.monotonic()
    stats, items, errors = await crawl(config)
    # Two tries of robots.txt, each one attempt and one retry of at most TIMEOUT.
    assert time.monotonic() - started < 4 * TIMEOUT + ERROR_MAX_AGE + 3 * MARGIN
    fetched = {item["url"] for item in items}
    failed = {error["url"]: (error["kind"], error["message"]) for error in errors}
    for port, (allows, error) in ROBOTS_OUTCOMES.items():
        home = hostile.url("/", port=port)
        secret = hostile.hits_for_port(port, "/forbidden/secret") - before[port]
        assert secret == int(allows), port
        assert failed.get(home) == error, port
        if error is None:
            assert home in fetched, port
            assert hostile.url("/page", port=port) in fetched, port
        else:  # never fetched: robots.txt was asked again after the outage, then given up
            assert hostile.hits_for_port(port, "/") == pages_before[port], port
            tries = hostile.hits_for_port(port, "/robots.txt") - robots_before[port]
            assert 2 <= tries <= 4, port
    assert len(errors) == 3
    assert stats.deferred >= 4  # r500, r429, rhang and rflaky each waited once
    assert stats.dropped["robots"] >= 3  # /forbidden/secret on rredirect, rbig, rflaky


@pytest.mark.usefixtures("short_robots_outages")
async def test_a_5xx_robots_txt_is_an_http_status_error(
    hostile: HostileServer, tmp_path: Path
) -> None:
    """Filed as a page's own 5xx is: the kind tells what went wrong, the message where."""
    config = make_config([hostile.url("/", port="r500")], tmp_path)
    stats, _, errors = await crawl(config)
    assert [(e["kind"], e["message"]) for e in errors] == [
        ("http_status", "robots.txt unreachable: 500 Internal Server Error")
    ]
    assert stats.errors == {"http_status": 1}


async def test_a_5xx_robots_txt_error_records_its_status(
    hostile: HostileServer, tmp_path: Path
) -> None:
    config = make_config([hostile.url("/", port="r500")], tmp_path)
    _, _, errors = await crawl(config)
    assert [(e["kind"], e["status"]) for e in errors] == [("http_status", 500)]


# memory ------------------------------------------------------------------------------------

PEAK = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call([sys.executable, '-m', 'crawler', sys.argv[1], '--quiet'])\n"
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)\n"
)


# Eight origins (the loopback stand-in for a site's subdomains): at the default
# per_host_concurrency of 8, the default concurrency of 64 is what bounds a crawl.
HOSTS = ("main", "other", "escape", "r404", "r403", "rloop", "rredirect", "rbig")


def crawl_peak(
    hostile: HostileServer, tmp_path: Path, engine: str, paths: list[str], **fetch: float
) -> tuple[int, dict[str, Any]]:
    """Crawl every path on every host of HOSTS with ``crawl CONFIG`` in a child process;
    return the child's peak RSS and its stats.json."""
    hostile.bombs_ready()
    urls = [hostile.url(f"{path}{'&' if '?' in path else '?'}host={port}", port=port)
            for port in HOSTS for path in paths]  # fmt: skip
    fetch_lines = "".join(f"{key} = {value}\n" for key, value in fetch.items())
    config = tmp_path / "big.toml"
    config.write_text(
        f"[crawl]\nstart_urls = {json.dumps(urls)}\nobey_robots = false\nsitemaps = false\n"
        f'[fetch]\nengine = "{engine}"\n{fetch_lines}[rate_limit]\nper_host = ""\n'
        "[retry]\nretries = 0\n"
        f'[output]\ndir = "{tmp_path / "out"}"\n[state]\nfrontier = "memory"\n',
        encoding="utf-8",
    )
    done = subprocess.run([sys.executable, "-c", PEAK, str(config)], capture_output=True,
                          text=True, timeout=120, check=True)  # fmt: skip
    code, peak = map(int, done.stdout.split())
    assert code == 0, done.stderr
    return peak, json.loads((tmp_path / "out" / "stats.json").read_text())


def test_no_body_or_bomb_escapes_max_bytes_in_a_crawl(
    engine: str, hostile: HostileServer, tmp_path: Path
) -> None:
    """Four at a time: what is held is four capped bodies, so a single response read
    past max_bytes (a gigabyte bomb, a 200 MB body) would show."""
    paths = [*BIG, "/fill?mb=9"]
    peak, stats = crawl_peak(hostile, tmp_path, engine, paths, concurrency=4, timeout=1)
    assert peak < MAX_RSS
    assert stats["finished"] is True
    assert stats["errors"]["too_large"] >= 5 * len(HOSTS)
    assert stats["errors"]["timeout"] == len(HOSTS)


def test_a_crawl_of_bodies_held_open_stays_under_200_mb_at_default_settings(
    engine: str, hostile: HostileServer, tmp_path: Path
) -> None:
    """Each body stays under max_bytes and stalls until the timeout: the defaults let
    64 of them be held at once."""
    paths = [f"/fill?mb=9&n={n}" for n in range(8)]
    peak, stats = crawl_peak(hostile, tmp_path, engine, paths, timeout=2)
    assert stats["finished"] is True
    assert stats["errors"] == {"timeout": 64}
    assert peak < MAX_RSS
