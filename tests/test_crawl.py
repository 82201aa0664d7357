"""Whole crawls against generated loopback sites: the right pages, once each,
through every engine, across crashes, with failures recorded and not fatal."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from crawler import Request, Response
from crawler.config import Config, parse_config
from crawler.crawl import Crawler
from crawler.crawl.run import STOP_GRACE
from crawler.middleware.chain import Handler
from crawler.parse import Item, Page, Site
from crawler.urls import canonicalize
from tests.gensite import GeneratedSite
from tests.guards import LATE, WAIT, hang_guard
from tests.server import LoopbackServer

CRAWL_DELAY = 30  # seconds: far longer than STOP_GRACE


@pytest.fixture(scope="module")
def site() -> Iterator[GeneratedSite]:
    with GeneratedSite(pages=2000) as running:
        yield running


def make_config(start: list[str], out: Path, **sections: dict[str, Any]) -> Config:
    data: dict[str, dict[str, Any]] = {
        "crawl": {"start_urls": start},
        "fetch": {"concurrency": 32},
        "rate_limit": {"per_host": ""},
        "retry": {"backoff": 0},
        "output": {"dir": str(out)},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return parse_config(data)


def read_items(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def item_urls(path: Path) -> list[str]:
    return [canonicalize(item["url"]) for item in read_items(path)]


async def test_crawl_fetches_exactly_the_reachable_allowed_pages(
    engine: str, site: GeneratedSite, tmp_path: Path
) -> None:
    before = len(site.fetched())
    config = make_config([site.url("/")], tmp_path, fetch={"engine": engine})
    stats = await Crawler(config).run()

    urls = item_urls(tmp_path / "items.jsonl")
    assert len(urls) == len(set(urls)), "an item was written twice"
    assert set(urls) == site.expected_urls()
    fetched = site.fetched()[before:]
    assert all(host == f"127.0.0.1:{site.port}" for host, _ in fetched), "went offsite"
    assert not [path for _, path in fetched if path.startswith("/private/")]
    assert [path for _, path in fetched].count("/robots.txt") == 1
    pages = [path for _, path in fetched if path not in ("/robots.txt", "/sitemap.xml")]
    assert len(pages) == len(set(pages)) == len(site.expected_urls())
    assert stats.pages == len(pages)  # the missing sitemap is counted apart
    assert stats.sitemaps == {404: 1}
    assert stats.items == len(urls)
    assert stats.dropped["robots"] > 0
    assert stats.dropped["offsite"] > 0
    saved = json.loads((tmp_path / "stats.json").read_text())
    assert saved["items"] == len(urls)
    assert saved["finished"] is True


class MenuSite(GeneratedSite):
    """Every page's menu links one disallowed page and the home page, as shops do."""

    def links_of(self, i: int) -> list[str]:
        return [*super().links_of(i), "/private/account.html", "/"]


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_disallowed_link_on_every_page_is_dropped_once_and_never_fetched(
    workers: int, tmp_path: Path
) -> None:
    with MenuSite(pages=300) as site:
        config = make_config([site.url("/")], tmp_path, crawl={"parse_workers": workers})
        stats = await Crawler(config).run()
        fetched = [path for _, path in site.fetched()]
    assert set(item_urls(tmp_path / "items.jsonl")) == site.expected_urls()
    assert not [path for path in fetched if path.startswith("/private/")]
    private = {"/private/account.html"} | {f"/private/{i}.html" for i in range(0, 300, 50)}
    assert stats.dropped["robots"] == len(private)  # once each, however many pages link it
    assert fetched.count("/") == 1


async def test_parse_workers_in_processes_find_the_same_pages(
    site: GeneratedSite, tmp_path: Path
) -> None:
    config = make_config([site.url("/")], tmp_path, crawl={"parse_workers": 2, "site": "shop"})
    stats = await Crawler(config).run()
    urls = item_urls(tmp_path / "items.jsonl")
    assert sorted(urls) == sorted(site.expected_urls())
    assert stats.dropped["offsite"] > 0
    assert stats.dropped["robots"] > 0


async def test_generic_items_have_every_field(site: GeneratedSite, tmp_path: Path) -> None:
    config = make_config([site.url("/p/1999.html")], tmp_path, crawl={"max_depth": 0})
    await Crawler(config).run()
    (item,) = read_items(tmp_path / "items.jsonl")
    assert set(item) == {"url", "status", "depth", "referrer", "fetched_at", "title",
                         "description", "canonical", "lang", "h1", "text_length", "links",
                         "structured"}  # fmt: skip
    assert (item["title"], item["status"], item["depth"], item["lang"]) == (
        "Page 1999",
        200,
        0,
        "en",
    )
    assert item["fetched_at"] is not None


async def test_max_pages_and_rerun_continues(site: GeneratedSite, tmp_path: Path) -> None:
    config = make_config([site.url("/")], tmp_path, crawl={"max_pages": 50, "sitemaps": False})
    first = await Crawler(config).run()
    assert first.pages == 50
    assert len(read_items(tmp_path / "items.jsonl")) == 50
    again = Crawler(config)
    assert (await again.run()).pages == 50  # budget spent: nothing more to do
    bigger = config.replace(crawl=dataclasses.replace(config.crawl, max_pages=120))
    assert (await Crawler(bigger).run()).pages == 120
    urls = item_urls(tmp_path / "items.jsonl")
    assert len(urls) == len(set(urls)) == 120


async def test_finished_crawl_does_nothing_on_rerun_and_says_so(
    site: GeneratedSite, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config([site.url("/p/1000.html")], tmp_path, crawl={"max_depth": 2})
    first = await Crawler(config).run()
    assert not first.already_finished
    assert not caplog.records
    before = len(site.fetched())
    rerun = Crawler(config)
    stats = await rerun.run()
    assert (rerun.already_finished, stats.already_finished) == (True, True)
    assert stats.pages == first.pages
    assert len(site.fetched()) == before
    [record] = caplog.records
    assert record.levelname == "WARNING"
    assert "already finished" in record.getMessage()
    assert "fresh=True" in record.getMessage()


async def test_fresh_crawler_starts_a_finished_crawl_over(
    site: GeneratedSite, tmp_path: Path
) -> None:
    config = make_config([site.url("/p/1000.html")], tmp_path, crawl={"max_depth": 1})
    start = len(site.fetched())
    first = await Crawler(config).run()
    once = len(site.fetched()) - start
    again = await Crawler(config, fresh=True).run()
    assert not again.already_finished
    assert again.pages == first.pages
    assert len(site.fetched()) - start == 2 * once  # everything fetched again
    assert len(read_items(tmp_path / "items.jsonl")) == first.items


class TitleSite(Site):
    name = "titles"

    def parse(self, page: Page) -> list[Item | Any]:
        return [Item(url=page.url, title=page.tree.findtext(".//title")), *page.links()[:2]]


async def test_programmatic_crawl_with_own_site_and_middleware(
    site: GeneratedSite, tmp_path: Path
) -> None:
    seen: list[str] = []

    async def spy(request: Request, call_next: Handler) -> Response:
        seen.append(request.url)
        return await call_next(request)

    for run in range(2):  # twice in one process, each from scratch
        out = tmp_path / str(run)
        config = make_config([site.url("/p/5.html")], out, crawl={"max_depth": 3},
                             state={"frontier": "memory"})  # fmt: skip
        stats = await Crawler(config, site=TitleSite(), middleware=[spy]).run()
        items = read_items(out / "items.jsonl")
        assert stats.items == len(items) > 3
        assert all(set(item) == {"url", "title"} for item in items)
    assert len(seen) >= 2 * len(items)


async def test_failures_are_recorded_not_fatal(server: LoopbackServer, tmp_path: Path) -> None:
    start = [server.url(p) for p in ("/ok", "/status/404", "/status/500", "/hang-before-headers",
                                     "/reset", "/truncated", "/loop/a", "/redirect/5")]  # fmt: skip
    start += ["http://127.0.0.1:9/", server.url("/huge?mb=50")]
    config = make_config(start, tmp_path, crawl={"obey_robots": False, "sitemaps": False},
                         fetch={"timeout": 1, "max_bytes": 1_000_000, "max_redirects": 3},
                         retry={"retries": 0})  # fmt: skip
    stats = await Crawler(config).run()
    errors = {e["url"]: e for e in read_items(tmp_path / "errors.jsonl")}
    kinds = {url.split(str(server.port))[-1]: e["kind"] for url, e in errors.items()}
    assert kinds == {
        "/status/404": "http_status", "/status/500": "http_status",
        "/hang-before-headers": "timeout", "/reset": "protocol", "/truncated": "protocol",
        "/redirect/2": "too_many_redirects", "http://127.0.0.1:9/": "refused",
        "/huge?mb=50": "too_large",
    }  # fmt: skip
    assert errors[server.url("/status/404")]["status"] == 404
    # A loop ends by itself in a crawl: the second /loop/a is a URL already seen.
    assert server.url("/loop/a") not in errors
    assert stats.items == 1
    assert sum(stats.errors.values()) == len(errors)


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crawler", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)  # fmt: skip


def write_config(path: Path, start: str, out: Path, extra: str = "") -> Path:
    path.write_text(
        f'[crawl]\nstart_urls = ["{start}"]\n{extra}\n'
        '[fetch]\nconcurrency = 16\n[rate_limit]\nper_host = ""\n'
        f'[output]\ndir = "{out}"\n',
        encoding="utf-8",
    )
    return path


def test_interrupt_saves_and_resumes(site: GeneratedSite, tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = write_config(tmp_path / "c.toml", site.url("/"), out)
    process = subprocess.Popen([sys.executable, "-m", "crawler", str(config), "--quiet"],
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    items = out / "items.jsonl"
    while process.poll() is None and not (items.exists() and items.stat().st_size > 100_000):
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "resume" in stderr
    partial = item_urls(items)
    assert 0 < len(partial) < len(site.expected_urls())
    done = run_cli(str(config))
    assert done.returncode == 0, done.stderr
    urls = item_urls(items)
    assert len(urls) == len(set(urls))
    assert set(urls) == site.expected_urls()
    again = run_cli(str(config))
    assert (again.returncode, "already finished" in again.stderr) == (0, True)
    fresh = run_cli(str(config), "--fresh", "--quiet", "--max-pages", "10")
    assert fresh.returncode == 0
    assert len(read_items(items)) == 10


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[crawl]\nstart_urls = []", "crawl.start_urls: expected at least one"),
        ('[crawl]\nstart_urls = ["http://a.test/"]\nmax_depth = "ten"', 'crawl.max_depth: expected a non-negative integer, got "ten"'),
        ('[crawl]\nstart_urls = ["http://a.test/"]\nsite = "nosuchsite"', "crawl.site: unknown site 'nosuchsite': tried"),
        ('[crawl]\nstart_urls = ["http://a.test/"]\n[fetch]\nengine = "curl"', "fetch.engine: expected one of"),
        ("[crawl\n", "config: expected valid TOML"),
    ],
)  # fmt: skip
def test_bad_config_exits_2_naming_the_key(tmp_path: Path, body: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(body, encoding="utf-8")
    done = run_cli(str(config))
    assert done.returncode == 2
    assert done.stderr.startswith("crawl: " + message)
    assert done.stderr.count("\n") == 1


async def test_sitemaps_from_robots_and_the_default_location(tmp_path: Path) -> None:
    with GeneratedSite(pages=40, sitemaps=True) as mapped:
        config = make_config([mapped.url("/")], tmp_path)
        await Crawler(config).run()
        fetched = [path for _, path in mapped.fetched()]
    urls = item_urls(tmp_path / "items.jsonl")
    assert len(urls) == len(set(urls))
    assert set(urls) == mapped.expected_urls()  # the orphans came from the sitemaps
    for sitemap in ("/sitemap.xml", "/sitemap_index.xml", "/sitemap-pages.xml.gz"):
        assert fetched.count(sitemap) == 1


async def test_csv_items_pages_and_per_host_budget(site: GeneratedSite, tmp_path: Path) -> None:
    config = make_config([site.url("/")], tmp_path,
                         crawl={"max_pages_per_host": 25, "sitemaps": False},
                         output={"items": "items.csv", "pages": True})  # fmt: skip
    stats = await Crawler(config).run()
    import csv

    with (tmp_path / "items.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == stats.items == 25
    assert {"url", "title", "h1", "links"} <= set(rows[0])
    assert stats.dropped["host-budget"] > 0
    saved = [p for p in (tmp_path / "pages").rglob("*") if p.is_file()]
    assert len(saved) >= 25
    assert all(tmp_path / "pages" in p.parents for p in saved)


async def test_crawl_delay_slows_the_host(tmp_path: Path) -> None:
    class SlowRobots(GeneratedSite):
        async def _dispatch(self, request: Any) -> Any:
            if request.path == "/robots.txt":
                from aiohttp import web

                return web.Response(text="User-agent: *\nCrawl-delay: 0.2\n")
            return await super()._dispatch(request)

    with SlowRobots(pages=6) as slow:
        config = make_config([slow.url("/")], tmp_path, crawl={"sitemaps": False})
        stats = await Crawler(config).run()
    assert stats.items == len(slow.expected_urls()) + 1  # robots.txt allows /private/ here
    assert stats.duration >= 7 * 0.2


async def test_max_pages_is_reached_exactly_despite_robots_drops(
    site: GeneratedSite, tmp_path: Path
) -> None:
    config = make_config([site.url("/")], tmp_path, crawl={"max_pages": 333, "sitemaps": False})
    stats = await Crawler(config).run()
    assert stats.dropped["robots"] > 0
    assert stats.pages == stats.items == len(read_items(tmp_path / "items.jsonl")) == 333


class FragileSite(Site):
    """Fails on every page whose number ends in 7: a bug in a site, not in the crawl."""

    def parse(self, page: Page) -> list[Item | Any]:
        if page.url.endswith("7.html"):
            raise KeyError("price")
        return [Item(url=page.url), *page.links()]


async def test_a_failing_parser_costs_its_page_only(site: GeneratedSite, tmp_path: Path) -> None:
    config = make_config([site.url("/p/0.html")], tmp_path,
                         crawl={"max_depth": 6, "sitemaps": False})  # fmt: skip
    stats = await Crawler(config, site=FragileSite()).run()
    errors = read_items(tmp_path / "errors.jsonl")
    assert errors
    assert {e["kind"] for e in errors} == {"parse"}
    assert all(e["url"].endswith("7.html") and "KeyError" in e["message"] for e in errors)
    assert stats.items > 10
    assert stats.errors["parse"] == len(errors)


async def test_other_content_types_are_counted_not_parsed(
    server: LoopbackServer, tmp_path: Path
) -> None:
    start = [server.url("/json"), server.url("/huge?mb=1"), server.url("/ok")]
    config = make_config(start, tmp_path, crawl={"obey_robots": False, "sitemaps": False})
    stats = await Crawler(config).run()
    assert stats.dropped["content-type"] == 2
    assert stats.items == 1
    assert stats.pages == 3


class CarelessSite(Site):
    """Yields what no site should: None, and items JSON cannot hold."""

    def parse(self, page: Page) -> list[Any]:
        if page.url.endswith("/ok"):
            return [None]
        if "undeclared" in page.url:
            return [Item(url=page.url, handle=object())]
        return [Item(url=page.url)]


async def test_bad_yields_and_bad_urls_cost_one_page(
    server: LoopbackServer, tmp_path: Path
) -> None:
    start = [server.url("/ok"), server.url("/charset/undeclared-utf8"), server.url("/gzip"),
             server.url("/redirect-to?url=http://127.0.0.1:99999/x"),
             server.url("/redirect-to?url=http://[::1/x")]  # fmt: skip
    config = make_config(start, tmp_path, crawl={"obey_robots": False, "sitemaps": False})
    stats = await Crawler(config, site=CarelessSite()).run()
    assert stats.errors["parse"] == 2
    assert stats.dropped["invalid_url"] + stats.errors["invalid_url"] == 2
    assert stats.items == 1


def test_fresh_with_a_bad_site_keeps_the_outputs(site: GeneratedSite, tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = write_config(tmp_path / "c.toml", site.url("/p/3.html"), out,
                          extra="max_depth = 0")  # fmt: skip
    assert run_cli(str(config), "--quiet").returncode == 0
    typo = write_config(tmp_path / "typo.toml", site.url("/p/3.html"), out,
                        extra='max_depth = 0\nsite = "generc"')  # fmt: skip
    done = run_cli(str(typo), "--fresh")
    assert done.returncode == 2
    assert (out / "items.jsonl").read_text(encoding="utf-8")


async def test_failed_requests_spend_the_page_budget_across_runs(tmp_path: Path) -> None:
    start = [f"http://127.0.0.1:9/{letter}" for letter in "abcdefgh"]
    config = make_config(start, tmp_path, crawl={"max_pages": 5, "obey_robots": False,
                                                 "sitemaps": False},
                         retry={"retries": 0})  # fmt: skip
    for _ in range(3):
        stats = await Crawler(config).run()
        assert stats.errors["refused"] == 5
    assert len(read_items(tmp_path / "errors.jsonl")) == 5


async def test_stop_is_prompt_even_behind_a_long_crawl_delay(tmp_path: Path) -> None:
    """stop() lets the request in flight finish (the home page, answered only after
    stop() was called, is committed) and cuts off the one sitting out a 30 s
    Crawl-delay when STOP_GRACE is over: released for the next run, not retried."""
    loop = asyncio.get_running_loop()
    home_requested = asyncio.Event()
    answer_home = threading.Event()

    class Polite(GeneratedSite):
        async def _dispatch(self, request: Any) -> Any:
            if request.path == "/robots.txt":
                return web.Response(text=f"User-agent: *\nCrawl-delay: {CRAWL_DELAY}\n")
            if request.path == "/":
                loop.call_soon_threadsafe(home_requested.set)
                await asyncio.to_thread(answer_home.wait, WAIT)  # until the test says
            return await super()._dispatch(request)

    with Polite(pages=20) as polite:
        start = [polite.url("/"), polite.url("/p/1.html")]
        config = make_config(start, tmp_path, crawl={"sitemaps": False})
        crawler = Crawler(config)
        run = asyncio.create_task(crawler.run())
        async with asyncio.timeout(WAIT):
            await home_requested.wait()  # in flight; /p/1.html now waits 30 s for its slot
        with hang_guard(STOP_GRACE + LATE):  # the grace, not the crawl delay
            crawler.stop()
            answer_home.set()
            stats = await run
        assert crawler.stopped
        assert stats.deferred == 0  # /p/1.html was released for the next run, not retried
        assert stats.items == 1  # the home page; everything else waits for the next run
        assert item_urls(tmp_path / "items.jsonl") == [canonicalize(polite.url("/"))]


# -- CSV items: kept as JSONL while crawling, every field a column at each end ----------


class RaggedSite(Site):
    """Items whose keys change from page to page, some nested: in a CSV each key must be
    a column, also one first seen on the last page."""

    def parse(self, page: Page) -> list[Item | Any]:
        number = int(page.url.rsplit("/", 1)[-1].split(".")[0]) if "/p/" in page.url else -1
        item = Item(url=page.url, **{f"field_{number % 7}": number})
        if number % 5 == 0:
            item["specs"] = {"n": number, "tags": ["é", "😀"]}
        if number == 199:
            item["only_here"] = 'a, "quoted"\nvalue'
        return [item, *page.links()]


def read_csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    import csv

    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def as_cells(item: dict[str, Any], header: list[str]) -> dict[str, str]:
    """The row a CSV holds for ``item``: JSON for objects and arrays, empty for missing."""

    def cell(value: Any) -> str:
        if isinstance(value, dict | list):
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return "" if value is None else str(value)

    return {name: cell(item.get(name)) for name in header}


def assert_csv_renders(
    out: Path, name: str = "items", columns: tuple[str, ...] = ()
) -> list[dict[str, str]]:
    """The CSV holds every record of its JSONL, in order, each field in its column:
    ``columns`` first, then every key in the order first seen."""
    records = read_items(out / f"{name}.jsonl")
    header, rows = read_csv_rows(out / f"{name}.csv")
    assert header == list(dict.fromkeys([*columns, *(key for r in records for key in r)]))
    assert rows == [as_cells(record, header) for record in records]
    return rows


async def test_csv_items_have_every_field_of_every_item_as_a_column(
    small_site: GeneratedSite, tmp_path: Path
) -> None:
    config = make_config([small_site.url("/")], tmp_path, output={"items": "items.csv"},
                         crawl={"sitemaps": False})  # fmt: skip
    stats = await Crawler(config, site=RaggedSite()).run()
    header, _ = read_csv_rows(tmp_path / "items.csv")
    assert header[:2] == ["url", "field_6"]  # the home page's: number -1
    assert {*header} == {"url", "specs", "only_here", *(f"field_{k}" for k in range(7))}
    rows = assert_csv_renders(tmp_path)
    assert len(rows) == stats.items == len(small_site.expected_urls())
    (last,) = [row for row in rows if row["only_here"]]
    assert (last["field_3"], last["only_here"]) == ("199", 'a, "quoted"\nvalue')
    assert {row["specs"] for row in rows if row["field_0"] == "35"} == {
        '{"n":35,"tags":["é","😀"]}'
    }
    assert sorted(canonicalize(row["url"]) for row in rows) == sorted(small_site.expected_urls())


async def test_csv_columns_come_first_in_their_order_then_every_other_field(
    small_site: GeneratedSite, tmp_path: Path
) -> None:
    config = make_config([small_site.url("/p/10.html")], tmp_path,
                         crawl={"max_depth": 3, "sitemaps": False},
                         output={"items": "products.csv", "columns": ["specs", "url", "price"]})  # fmt: skip
    stats = await Crawler(config, site=RaggedSite()).run()
    assert not (tmp_path / "items.jsonl").exists()
    rows = assert_csv_renders(tmp_path, "products", config.output.columns)
    header, _ = read_csv_rows(tmp_path / "products.csv")
    assert header[:4] == ["specs", "url", "price", "field_3"]  # p/10: field_3, first seen
    assert len(rows) == stats.items > 10
    assert not [row for row in rows if row["price"]]  # no item has it, still a column


async def test_stopped_crashed_and_resumed_csv_crawl_has_every_item_once(
    small_site: GeneratedSite, tmp_path: Path
) -> None:
    config = make_config([small_site.url("/")], tmp_path, output={"items": "items.csv"},
                         crawl={"sitemaps": False}, fetch={"concurrency": 4})  # fmt: skip
    answered = 0

    async def stop_after_some(request: Request, call_next: Handler) -> Response:
        nonlocal answered
        response = await call_next(request)
        answered += 1
        if answered == 30:
            crawler.stop()
        return response

    crawler = Crawler(config, site=RaggedSite(), middleware=[stop_after_some])
    stats = await crawler.run()
    assert crawler.stopped
    partial = assert_csv_renders(tmp_path)  # written when the run stopped, too
    assert 0 < len(partial) == stats.items < len(small_site.expected_urls())

    # Then a crash: a record the next run will fetch again, and a torn line, reached
    # the JSONL after its last commit, and the CSV of the stopped run stayed.
    with (tmp_path / "items.jsonl").open("ab") as handle:
        handle.write(b'{"url":"http://127.0.0.1/p/uncommitted.html"}\n{"url":"http://torn')
    stats = await Crawler(config, site=RaggedSite()).run()
    rows = assert_csv_renders(tmp_path)
    urls = [canonicalize(row["url"]) for row in rows]
    assert len(urls) == len(set(urls)) == stats.items
    assert set(urls) == small_site.expected_urls()

    (tmp_path / "items.csv").write_text("stale\r\n", encoding="utf-8")
    again = Crawler(config, site=RaggedSite())
    await again.run()
    assert again.already_finished
    assert assert_csv_renders(tmp_path) == rows  # a rerun of a finished crawl renders it again


async def test_fresh_discards_the_csv_and_its_jsonl(
    small_site: GeneratedSite, tmp_path: Path
) -> None:
    config = make_config([small_site.url("/p/150.html")], tmp_path,
                         output={"items": "items.csv"}, crawl={"max_depth": 0})  # fmt: skip
    await Crawler(config).run()
    assert [row["url"] for row in assert_csv_renders(tmp_path)] == [small_site.url("/p/150.html")]
    (tmp_path / ".items.csv.partial").write_text("a render cut short", encoding="utf-8")
    (tmp_path / "keep.csv").write_text("not the crawl's", encoding="utf-8")
    await Crawler(config).discard()
    left = set(await asyncio.to_thread(os.listdir, tmp_path))
    assert not left & {"items.csv", "items.jsonl", ".items.csv.partial", "errors.jsonl"}
    assert "keep.csv" in left


async def test_each_worker_renders_its_own_csv(
    small_site: GeneratedSite, redis_url: str, tmp_path: Path
) -> None:
    config = make_config([small_site.url("/")], tmp_path, output={"items": "items.csv"},
                         crawl={"sitemaps": False}, state={"frontier": redis_url})  # fmt: skip
    workers = [Crawler(config, site=RaggedSite(), worker=name) for name in ("w0", "w1")]
    await asyncio.gather(*(worker.run() for worker in workers))
    assert {name for name in await asyncio.to_thread(os.listdir, tmp_path)
            if name.startswith("items")} == {
        "items-w0.jsonl", "items-w0.csv", "items-w1.jsonl", "items-w1.csv"
    }  # fmt: skip
    urls = []
    for name in ("items-w0", "items-w1"):
        urls += [canonicalize(row["url"]) for row in assert_csv_renders(tmp_path, name)]
    assert len(urls) == len(set(urls))
    assert set(urls) == small_site.expected_urls()


@pytest.mark.parametrize(
    ("output", "key", "expected"),
    [
        ({"items": "x.csv", "columns": []}, "output.columns", "a non-empty list of column names"),
        ({"items": "x.csv", "columns": "url"}, "output.columns", "a non-empty list"),
        ({"items": "x.csv", "columns": ["url", ""]}, "output.columns", "non-empty strings"),
        ({"items": "x.csv", "columns": ["url", 3]}, "output.columns", "non-empty strings"),
        ({"items": "x.csv", "columns": ["url", "n", "url"]}, "output.columns", "'url' twice"),
        ({"columns": ["url"]}, "output.columns", "unless output.items names a .csv file"),
        ({"items": "errors.csv"}, "output.items", "not taken by the errors file"),
    ],
)  # fmt: skip
def test_bad_csv_output_settings_name_the_key(
    output: dict[str, Any], key: str, expected: str, tmp_path: Path
) -> None:
    from crawler.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        make_config(["http://127.0.0.1/"], tmp_path, output=output)
    assert info.value.key == key
    assert expected in info.value.expected
    assert str(info.value).startswith(f"{key}: expected ")
    assert info.value.value == output.get("columns", output.get("items"))


def test_status_shows_the_summary_a_crawl_ends_with(site: GeneratedSite, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", site.url("/p/1000.html"), tmp_path / "out",
                          "max_depth = 1")  # fmt: skip
    assert run_cli(str(config), "--quiet").returncode == 0
    shown = run_cli("status", str(config))
    assert shown.returncode == 0
    rows = dict(line.strip().split(": ", 1) for line in shown.stdout.splitlines())
    saved = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert (rows["pages"], rows["items"]) == (str(saved["pages"]), str(saved["items"]))
    assert (rows["errors"], rows["finished"]) == ("none", "yes")
    assert "parser_failure" not in shown.stdout  # no raw keys, no "None"


def test_stats_read_back_from_their_json_show_the_same_summary() -> None:
    from crawler.crawl.progress import summary_rows
    from crawler.crawl.stats import CrawlStats

    stats = CrawlStats(pages=7, items=5, bytes=1234, parsed=6, round=3, duration=2.5)
    stats.statuses.update({200: 6, 404: 1})
    stats.errors.update({"http_status": 1})
    stats.dropped.update({"offsite": 4})
    stats.sitemaps.update({404: 1})
    stats.changes.update({"new": 2, "unchanged": 4})
    again = CrawlStats.from_json(json.loads(json.dumps(stats.to_json())))
    assert summary_rows(again) == summary_rows(stats)
