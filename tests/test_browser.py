"""The browser engine and ``render``: pages that scripts build, crawled as a user sees
them, with every promise of a crawl kept (guard, timeouts, bounds, credentials)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crawler import (
    BodyTooLarge,
    BrowserOptions,
    Fetcher,
    FetchTimeout,
    ProtocolError,
    Request,
    Timeouts,
)
from crawler.config import parse_config
from crawler.crawl import Crawler
from crawler.engines.base import EngineOptions
from crawler.engines.browser import BrowserEngine, looks_like_shell
from crawler.errors import ConfigError
from tests.guards import LATE, WAIT, hang_guard
from tests.script_site import Canary, ScriptSite, shell
from tests.test_warc import read_warc


@pytest.fixture(scope="module")
def site() -> Iterator[ScriptSite]:
    with ScriptSite(items=6, server_pages=2) as running:
        yield running


def crawl_config(site: ScriptSite, out: Path, fetch: dict[str, Any], **tables: Any) -> Any:
    return parse_config({
        "crawl": {"start_urls": [site.url("/")], "sitemaps": False},
        "rate_limit": {"per_host": ""},
        "fetch": fetch,
        "output": {"dir": str(out)},
        **tables,
    })  # fmt: skip


def items_of(out: Path) -> dict[str, dict[str, Any]]:
    lines = (out / "items.jsonl").read_text(encoding="utf-8").splitlines()
    return {record["url"]: record for record in map(json.loads, lines)}


# -- a site that scripts build -----------------------------------------------------------


@pytest.mark.parametrize("fetch", [{"engine": "browser"}, {"render": "auto"}],
                         ids=["browser", "auto"])  # fmt: skip
async def test_rendering_crawls_every_page_with_its_rendered_title(
    site: ScriptSite, tmp_path: Path, fetch: dict[str, Any]
) -> None:
    stats = await Crawler(crawl_config(site, tmp_path, fetch)).run()
    items = items_of(tmp_path)
    expected = {site.url(f"/item/{n}"): site.item_title(n) for n in range(1, 7)}
    expected |= {site.url(f"/server/{n}"): site.server_title(n) for n in (1, 2)}
    expected[site.url("/")] = "Index"
    assert {url: item["title"] for url, item in items.items()} == expected
    assert stats.error_count == 0
    shells = {site.url("/"), *(site.url(f"/item/{n}") for n in range(1, 7))}
    rendered = {url for url, item in items.items() if item["rendered"]}
    if fetch.get("engine") == "browser":  # every HTML page
        assert rendered == set(expected)
    else:  # only the shells: the server's own pages are taken as they came
        assert rendered == shells
    assert stats.rendered == len(rendered)
    assert json.loads((tmp_path / "stats.json").read_text())["rendered"] == len(rendered)


async def test_without_rendering_only_the_shell_is_found(site: ScriptSite, tmp_path: Path) -> None:
    stats = await Crawler(crawl_config(site, tmp_path, {"engine": "aiohttp"})).run()
    items = items_of(tmp_path)
    assert list(items) == [site.url("/")]
    assert items[site.url("/")]["title"] == "Loading"
    assert "rendered" not in items[site.url("/")]  # a crawl that never renders says nothing
    assert (stats.pages, stats.rendered) == (1, 0)


def test_render_never_is_the_default_and_a_bad_mode_names_the_key(site: ScriptSite) -> None:
    config = crawl_config(site, Path("out"), {})
    assert (config.fetch.render, config.fetch.renders) == ("never", False)
    with pytest.raises(ConfigError, match=r'^fetch\.render: expected one of "never", "always", '):
        crawl_config(site, Path("out"), {"render": "sometimes"})
    with pytest.raises(ConfigError, match=r"^browser\.pages: expected an integer >= 1, got 0"):
        crawl_config(site, Path("out"), {"engine": "browser"}, browser={"pages": 0})
    with pytest.raises(ConfigError, match=r"^browser\.wait_for: not a CSS selector"):
        crawl_config(site, Path("out"), {"engine": "browser"}, browser={"wait_for": "a[["})
    with pytest.raises(ConfigError, match=r"^browser\.wait_until: expected one of"):
        crawl_config(site, Path("out"), {}, browser={"wait_until": "idle"})


async def test_recrawl_and_archives_keep_the_servers_document_not_the_dom(
    tmp_path: Path,
) -> None:
    """Every render differs (the script stamps a random number), the documents do not:
    round 2 finds every page unchanged, and the WARC holds the shell the server sent."""
    with ScriptSite(items=3, server_pages=0) as site:
        output = {"dir": str(tmp_path), "warc": "crawl.warc.gz"}
        config = crawl_config(site, tmp_path, {"engine": "browser"}, output=output,
                              recrawl={"after": "0s"})  # fmt: skip
        first = await Crawler(config).run()
        assert (first.changes["new"], first.rendered) == (4, 4)
        second = await Crawler(config).run()
        assert (second.round, second.changes["unchanged"], second.error_count) == (2, 4, 0)
    records = read_warc(tmp_path / "crawl-00000.warc.gz")
    item = next(r for r in records if r.type == "response"
                and r.warc["WARC-Target-URI"] == site.url("/item/1"))  # fmt: skip
    assert item.body == shell().encode()


# -- what the page's own requests may do -------------------------------------------------


async def test_a_rendered_page_never_reaches_a_private_address(tmp_path: Path) -> None:
    """The item pages' script fetches, beacons, loads a script and a frame from, and
    opens a WebSocket to a canary on another loopback port; with block_private and
    only the site allowed, none of it arrives. Without the guard it does (the
    control shows the test can fail)."""
    with Canary() as canary, ScriptSite(items=2, server_pages=0,
                                        canary=canary.url("").rstrip("/")) as site:  # fmt: skip
        allowed = f"127.0.0.1:{site.port}"
        guarded = {"engine": "browser", "block_private": True, "allow_private": [allowed]}
        stats = await Crawler(crawl_config(site, tmp_path / "guarded", guarded)).run()
        assert stats.rendered == 3
        # The frame's URL is a link of the rendered page: the crawl's own fetch of it
        # is refused too.
        errors = (tmp_path / "guarded" / "errors.jsonl").read_text(encoding="utf-8")
        assert {json.loads(line)["kind"] for line in errors.splitlines()} == {"blocked"}
        assert site.hits_for("/api/item/1.json") == 1  # the page's scripts did run
        assert sum(canary.hits.values()) == 0, canary.requests

        await Crawler(crawl_config(site, tmp_path / "open", {"engine": "browser"})).run()
        assert canary.hits_for("/fetch") == 2


async def test_page_requests_carry_the_configured_headers_but_no_credentials(
    tmp_path: Path,
) -> None:
    with ScriptSite(items=1, server_pages=0) as site:
        fetch = {"engine": "browser", "user_agent": "shopbot/2.0",
                 "headers": {"Authorization": "Bearer s3cret", "X-Team": "data"}}  # fmt: skip
        await Crawler(crawl_config(site, tmp_path, fetch)).run()
        document, api = site.headers_seen["/item/1"], site.headers_seen["/api/item/1.json"]
        assert document["User-Agent"] == api["User-Agent"] == "shopbot/2.0"
        assert document["Authorization"] == "Bearer s3cret"
        assert document["X-Team"] == api["X-Team"] == "data"
        assert "Authorization" not in api
        assert "Cookie" not in api


async def test_blocked_resource_types_are_never_requested(site: ScriptSite) -> None:
    url = site.url("/with-image")
    async with Fetcher(engine="browser") as fetcher:
        assert "<img" in (await fetcher.get(url)).text
    assert site.hits_for("/pixel.png") == 0
    async with Fetcher(engine="browser", browser={"block": []}) as fetcher:
        await fetcher.get(url)
    assert site.hits_for("/pixel.png") == 1


async def test_only_a_get_of_an_html_200_is_rendered(site: ScriptSite) -> None:
    async with Fetcher(engine="browser") as fetcher:
        assert (await fetcher.get(site.url("/item/1"))).rendered_from is not None
        for response in [
            await fetcher.head(site.url("/item/1")),
            await fetcher.post(site.url("/item/1"), b"x"),
            await fetcher.get(site.url("/api/item/1.json")),
            await fetcher.get(site.url("/nothing-here")),
        ]:
            assert response.rendered_from is None


async def test_a_dom_no_encoder_takes_is_rendered_and_pop_ups_never_open(
    site: ScriptSite,
) -> None:
    async with Fetcher(engine="browser") as fetcher:
        response = await fetcher.get(site.url("/odd"))
    assert "</script>half a pair: ?.</body>" in response.text  # the lone half replaced
    assert site.hits_for("/opened-by-script") == 0


# -- time and bounds ---------------------------------------------------------------------


async def test_a_page_whose_scripts_never_settle_is_cut_off_at_the_timeout(
    site: ScriptSite,
) -> None:
    async with Fetcher(engine="browser", timeout=2) as fetcher:
        with hang_guard(2 + LATE), pytest.raises(FetchTimeout) as caught:
            await fetcher.get(site.url("/never-settles"))
    assert caught.value.phase == "total"


async def test_wait_for_waits_for_an_element_the_script_adds_late(site: ScriptSite) -> None:
    url = site.url("/late")
    async with Fetcher(engine="browser", browser={"wait_until": "load"}) as fetcher:
        assert 'id="late"' not in (await fetcher.get(url)).text
    options = {"wait_until": "load", "wait_for": "#late"}
    async with Fetcher(engine="browser", browser=options) as fetcher:
        assert 'id="late"' in (await fetcher.get(url)).text


async def test_renders_wait_for_a_page_before_their_timeout_starts(site: ScriptSite) -> None:
    """One page at a time (``pages = 1``): four renders of a page whose API answers in
    0.5 s take four times as long as one, and none times out at a total that holds one
    render with room to spare; the API never sees two of them at once."""
    urls = [site.url(f"/slow-item/{n}") for n in range(4)]
    async with Fetcher(engine="browser", timeout=4, browser={"pages": 1}) as fetcher:
        responses = await asyncio.gather(*(fetcher.get(url) for url in urls))
    assert all("slow item" in response.text for response in responses)
    assert site.most_at_once("/api/slow") == 1


async def test_a_rendered_body_over_max_bytes_is_refused(site: ScriptSite) -> None:
    async with Fetcher(max_bytes=100_000) as plain:
        assert len((await plain.get(site.url("/grows"))).body) < 1_000
    async with Fetcher(engine="browser", max_bytes=100_000) as fetcher:
        with pytest.raises(BodyTooLarge):
            await fetcher.get(site.url("/grows"))


# -- crashes and restarts ----------------------------------------------------------------


def descendants() -> list[tuple[int, str]]:
    """(pid, command line) of every process below this one."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        parents[int(entry)] = int(stat.rpartition(")")[2].split()[1])
        commands[int(entry)] = command.decode(errors="replace")
    below, frontier = [], [os.getpid()]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        below += children
        frontier += children
    return [(pid, commands[pid]) for pid in below]


def kill(predicate: Any) -> int:
    killed = 0
    for pid, command in descendants():
        if predicate(command):
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


@pytest.mark.parametrize("what", ["renderer", "browser"])
async def test_a_crash_is_a_protocol_error_for_its_page_and_the_next_page_renders(
    site: ScriptSite, what: str
) -> None:
    engine = BrowserEngine(EngineOptions())
    async with engine:
        polled = site.hits_for("/api/poll")
        busy = asyncio.ensure_future(
            engine.send(Request(site.url("/never-settles"), timeouts=Timeouts(total=60)))
        )
        assert await asyncio.to_thread(site.wait_for_hits, "/api/poll", polled + 1, WAIT)
        if what == "renderer":
            assert kill(lambda command: "--type=renderer" in command) >= 1
        else:
            assert kill(lambda command: "chromium" in command and "--type=" not in command) == 1
        with hang_guard(WAIT), pytest.raises(ProtocolError):
            await busy
        after = await engine.send(Request(site.url("/item/1"), timeouts=Timeouts(total=30)))
        assert site.item_title(1) in after.text
        assert engine.launches == (2 if what == "browser" else 1)


async def test_the_browser_is_started_afresh_every_restart_every_pages(site: ScriptSite) -> None:
    engine = BrowserEngine(EngineOptions(), browser=BrowserOptions(restart_every=2, pages=1))
    async with engine:
        for n in range(1, 6):
            response = await engine.send(Request(site.url(f"/item/{n}")))
            assert site.item_title(n) in response.text
        assert engine.launches == 3
        browsers = [c for _, c in descendants() if "chromium" in c and "--type=" not in c]
        assert len(browsers) == 1  # the retired ones closed


# -- shell detection -----------------------------------------------------------------------

SERVER_PAGE = ("<html><head><title>A shop</title><script src='/analytics.js'></script></head>"
               "<body><h1>Shoes</h1><p>" + "Good shoes for a good walk. " * 20 + "</p></body></html>")  # fmt: skip


@pytest.mark.parametrize(
    ("html", "shell"),
    [
        ('<html><body><div id="root"></div><script src="/main.js"></script></body></html>', True),
        ('<html><body><div id="app"></div></body></html>', True),
        ("<html><body><noscript>You need to enable JavaScript</noscript>"
         "<script src=/bundle.js></script></body></html>", True),
        ("<html><body><script>" + "var a = 1;" * 600 + "</script></body></html>", True),
        ('<html><body><div id="__next"><h1>Rendered</h1><p>' + "text " * 60 + "</p></div>"
         "<script src=/_next/main.js></script></body></html>", False),
        (SERVER_PAGE, False),
        ("<html><body><p>Short page, no script.</p></body></html>", False),
        ("", False),
    ],
    ids=["react", "vue-mount", "noscript-bundle", "inline-bundle", "next-ssr", "server", "short",
         "empty"],
)  # fmt: skip
def test_shells_are_told_from_server_rendered_pages(html: str, shell: bool) -> None:
    assert looks_like_shell(html.encode(), BrowserOptions()) is shell


def test_shell_thresholds_are_settings() -> None:
    page = b"<html><body><p>" + b"x" * 300 + b"</p><script src=/a.js></script></body></html>"
    assert not looks_like_shell(page, BrowserOptions())
    assert looks_like_shell(page, BrowserOptions(shell_text=1000))


# -- installing ----------------------------------------------------------------------------


async def test_a_missing_browser_fails_at_start_saying_what_to_install(
    site: ScriptSite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match=r"needs Chromium .*\(apt-get install chromium\)"):
        async with Fetcher(engine="browser"):
            pass
    bad = str(tmp_path / "no-such-chromium")
    with pytest.raises(ConfigError, match=r"^browser\.executable: .*no-such-chromium"):
        async with Fetcher(engine="browser", browser={"executable": bad}):
            pass


NO_CHROMIUM = (
    "crawl: fetch.engine: the browser engine needs Chromium and there is none on PATH: "
    "install Debian's chromium package (apt-get install chromium), or set browser.executable"
)


def crawl(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crawler", *args], capture_output=True,
                          text=True, timeout=120, check=False, env={**os.environ, **env})  # fmt: skip


def test_the_command_line_without_a_browser_exits_2_with_one_line(
    site: ScriptSite, tmp_path: Path
) -> None:
    done = crawl("fetch", "--engine", "browser", site.url("/item/1"), PATH=str(tmp_path))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [NO_CHROMIUM]


def test_a_crawl_without_a_browser_exits_2_before_fetching(
    site: ScriptSite, tmp_path: Path
) -> None:
    config = tmp_path / "crawl.toml"
    config.write_text(f"""[crawl]\nstart_urls = ["{site.url("/")}"]\n\n[fetch]\nrender = "auto"\n"""
                      f"""\n[output]\ndir = "{tmp_path / "out"}"\n""", encoding="utf-8")  # fmt: skip
    before = site.hits_for("/")
    done = crawl(str(config), "--quiet", PATH=str(tmp_path))
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [NO_CHROMIUM]
    assert site.hits_for("/") == before


def test_crawl_fetch_and_ping_render_with_the_browser_engine(site: ScriptSite) -> None:
    fetched = crawl("fetch", "--engine", "browser", site.url("/item/2"))
    assert fetched.returncode == 0, fetched.stderr
    assert f"<title>{site.item_title(2)}</title>" in fetched.stdout
    assert "Content-Type: text/html; charset=utf-8" in fetched.stdout
    plain = crawl("fetch", site.url("/item/2"))
    assert "<title>Loading</title>" in plain.stdout
    pinged = crawl("ping", "--engine", "browser", site.url("/item/2"))
    assert pinged.returncode == 0, pinged.stderr
