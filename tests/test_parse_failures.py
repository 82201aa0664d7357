"""A site parser that fails: the crawl goes on, but a parser that fails on the start page
or on most pages makes the crawl fail, in words and in its exit code, with the first
traceback shown once."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from crawler.config import Config, parse_config
from crawler.crawl import Crawler
from crawler.crawl.stats import CrawlStats
from crawler.errors import ParseError
from crawler.parse import Item, Link, Page, Site
from tests.gensite import GeneratedSite

SITE_MODULE = """
from crawler.parse import Item, Site


class Broken(Site):
    name = "broken"

    def parse(self, page):
        price = page.css(".price::text").get()
        yield Item(url=page.url, price=float(price))
"""


class MostPagesFail(Site):
    """Fails on two pages in three: those whose number is not a multiple of 3."""

    name = "most-fail"

    def parse(self, page: Page) -> Iterable[Item | Link]:
        number = page.url.rsplit("/", 1)[-1].removesuffix(".html")
        if number.isdigit() and int(number) % 3:
            raise KeyError(f"no price on page {number}")
        yield Item(url=page.url)
        yield from page.links()


class HomeFails(Site):
    name = "home-fails"

    def parse(self, page: Page) -> Iterable[Item | Link]:
        if page.depth == 0:
            raise ValueError("the layout changed")
        yield Item(url=page.url)


@pytest.fixture(scope="module")
def site() -> Iterator[GeneratedSite]:
    with GeneratedSite(pages=60, sitemaps=True) as running:
        yield running


def make_config(site: GeneratedSite, out: Path, **crawl: Any) -> Config:
    return parse_config({
        "crawl": {"start_urls": [site.url("/")], **crawl},
        "rate_limit": {"per_host": ""},
        "output": {"dir": str(out)},
    })  # fmt: skip


async def test_a_parser_failing_on_the_start_page_fails_the_crawl(
    site: GeneratedSite, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stats = await Crawler(make_config(site, tmp_path, sitemaps=False), site=HomeFails()).run()
    assert (stats.parsed, stats.start_parsed, stats.start_parse_errors) == (1, 1, 1)
    assert stats.parser_failure == (
        "the site's parser failed on the start page, so no link was followed from it"
    )
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "the site HomeFails failed on" in record.getMessage()
    assert 'raise ValueError("the layout changed")' in record.getMessage()  # the traceback
    saved = json.loads((tmp_path / "stats.json").read_text())
    assert saved["parser_failure"] == stats.parser_failure


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_parser_failing_on_half_the_pages_fails_the_crawl(
    workers: int, site: GeneratedSite, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(site, tmp_path, sitemaps=False, parse_workers=workers)
    stats = await Crawler(config, site=MostPagesFail()).run()
    assert stats.parsed > 20
    assert stats.errors["parse"] * 2 > stats.parsed
    assert stats.parser_failure == (
        f"the site's parser failed on {stats.errors['parse']} of {stats.parsed} pages"
    )
    shown = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(shown) == 1  # once, however many pages failed
    assert "KeyError: 'no price on page" in shown[0]
    assert "in parse" in shown[0]  # the frame of the site's code, from a parse process too


def test_the_verdict_is_kept_across_a_resume() -> None:
    from crawler.crawl.checkpoint import Checkpoint, stats_values

    stats = CrawlStats(parsed=10, start_parsed=1, start_parse_errors=0)
    stats.errors["parse"] = 6
    stats.sitemaps[404] = 1
    again = Checkpoint(stats_values(stats)).stats()
    assert (
        again.parser_failure
        == stats.parser_failure
        == ("the site's parser failed on 6 of 10 pages")
    )
    assert again.sitemaps == {404: 1}


def test_a_few_failures_are_not_a_failed_parser() -> None:
    stats = CrawlStats(parsed=10, start_parsed=2, start_parse_errors=1)
    stats.errors["parse"] = 5
    assert stats.parser_failure is None


def test_parse_errors_cross_processes_whole() -> None:
    import pickle

    error = ParseError("KeyError: 'x'", url="http://a/", site="Shop", details="Traceback ...")
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.url, copy.site, copy.details) == (
        "KeyError: 'x'", "http://a/", "Shop", "Traceback ...",
    )  # fmt: skip


async def test_a_missing_sitemap_is_no_page_and_no_error(
    site: GeneratedSite, tmp_path: Path
) -> None:
    """/sitemap.xml is probed: its status is counted apart from the pages' statuses."""
    with GeneratedSite(pages=5) as plain:  # no sitemaps: /sitemap.xml is a 404
        stats = await Crawler(make_config(plain, tmp_path, sitemaps=True)).run()
    assert stats.sitemaps == {404: 1}
    assert 404 not in stats.statuses
    assert stats.pages == sum(stats.statuses.values()) == 7  # home, 5 pages, /q?a=0
    from crawler.crawl.progress import summary_rows

    rows = dict(summary_rows(stats))
    assert (rows["errors"], rows["status codes"], rows["sitemaps"]) == ("none", "200: 7", "404: 1")


def test_the_command_exits_1_saying_why_with_one_traceback(
    site: GeneratedSite, tmp_path: Path
) -> None:
    (tmp_path / "broken.py").write_text(SITE_MODULE, encoding="utf-8")
    config = tmp_path / "broken.toml"
    config.write_text(
        f'[crawl]\nstart_urls = ["{site.url("/p/0.html")}"]\nsite = "broken"\n'
        f'[rate_limit]\nper_host = ""\n[output]\ndir = "{tmp_path / "out"}"\n',
        encoding="utf-8",
    )
    done = subprocess.run([sys.executable, "-m", "crawler", str(config)], capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.count("Traceback (most recent call last)") == 1
    assert "float(price)" in done.stderr
    assert "crawl: done, but the site's parser failed on the start page" in done.stderr
    assert "crawl: done:" not in done.stderr
