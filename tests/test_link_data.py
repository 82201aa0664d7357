"""``Link(url, data=...)``: what a page hands to the pages it links to arrives there as
``page.data``, kept in every frontier (memory, SQLite, Redis) and across a resume."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from crawler.config import Config, parse_config
from crawler.crawl import Crawler
from crawler.parse import Item, Link, Page, Site
from tests.gensite import GeneratedSite

DEPTH = 4  # pages 0..30 of the generated site's binary tree
NUMBER = re.compile(r"/p/(\d+)\.html$")


class TreeSite(Site):
    """Follows only the tree's child links, handing each child its parent's number and
    the path from the root: every page has one parent, so its data is known exactly."""

    name = "tree"

    def parse(self, page: Page) -> Iterable[Item | Link]:
        match = NUMBER.search(page.url)
        if match is None:  # the home page
            yield Link(page.urljoin("/p/0.html") or "", data={"path": []})
            return
        number = int(match.group(1))
        yield Item(url=page.url, number=number, data=dict(page.data))
        path = [*page.data.get("path", []), number]
        for child in (2 * number + 1, 2 * number + 2):
            url = page.urljoin(f"/p/{child}.html")
            assert url is not None
            yield Link(url, data={"parent": number, "path": path})


def expected_data(number: int) -> dict[str, Any]:
    if number == 0:
        return {"path": []}
    path = []
    ancestor = (number - 1) // 2
    while True:
        path.insert(0, ancestor)
        if ancestor == 0:
            break
        ancestor = (ancestor - 1) // 2
    return {"parent": (number - 1) // 2, "path": path}


def make_config(site: GeneratedSite, out: Path, frontier: str, **crawl: Any) -> Config:
    return parse_config(
        {
            "crawl": {"start_urls": [site.url("/")], "sitemaps": False, "max_depth": DEPTH + 1,
                      **crawl},
            "rate_limit": {"per_host": ""},
            "output": {"dir": str(out)},
            "state": {"frontier": frontier},
        }
    )  # fmt: skip


def items_by_number(out: Path) -> dict[int, dict[str, Any]]:
    items: dict[int, dict[str, Any]] = {}
    for path in sorted(out.glob("items*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            assert item["number"] not in items, "every page's item once"
            items[item["number"]] = item
    return items


def assert_every_page_got_its_links_data(out: Path) -> None:
    items = items_by_number(out)
    assert sorted(items) == list(range(2 ** (DEPTH + 1) - 1))
    for number, item in items.items():
        assert item["data"] == expected_data(number), number


@pytest.mark.parametrize("frontier", ["memory", "sqlite", "redis"])
async def test_link_data_reaches_the_linked_page(
    frontier: str, small_site: GeneratedSite, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if frontier == "redis":
        frontier = request.getfixturevalue("redis_url")
    config = make_config(small_site, tmp_path, frontier)
    stats = await Crawler(config, site=TreeSite()).run()
    assert stats.error_count == 0
    assert_every_page_got_its_links_data(tmp_path)


async def test_link_data_crosses_to_parse_processes(
    small_site: GeneratedSite, tmp_path: Path
) -> None:
    config = make_config(small_site, tmp_path, "memory", parse_workers=2)
    await Crawler(config, site=TreeSite()).run()
    assert_every_page_got_its_links_data(tmp_path)


async def test_link_data_survives_a_resume(small_site: GeneratedSite, tmp_path: Path) -> None:
    """The first run stops with links queued; the second run, in a new crawler (as a new
    process would), reads their data back from the SQLite frontier."""
    first = make_config(small_site, tmp_path, "sqlite", max_pages=8)
    assert (await Crawler(first, site=TreeSite()).run()).pages == 8
    assert len(items_by_number(tmp_path)) < 2 ** (DEPTH + 1) - 1
    rest = dataclasses.replace(first.crawl, max_pages=1000)
    await Crawler(first.replace(crawl=rest), site=TreeSite()).run()
    assert_every_page_got_its_links_data(tmp_path)


class BadDataSite(Site):
    name = "bad-data"

    def parse(self, page: Page) -> Iterable[Item | Link]:
        yield Item(url=page.url)
        yield Link(page.urljoin("/p/1.html") or "", data={"when": object()})


async def test_data_json_cannot_hold_is_the_pages_parse_error(
    small_site: GeneratedSite, tmp_path: Path
) -> None:
    config = make_config(small_site, tmp_path, "memory")
    stats = await Crawler(config, site=BadDataSite()).run()
    assert (stats.items, stats.errors["parse"]) == (0, 1)
    [record] = [json.loads(line) for line in (tmp_path / "errors.jsonl").read_text().splitlines()]
    assert record["kind"] == "parse"
    assert "object" in record["message"]


def test_a_page_without_a_link_has_empty_data() -> None:
    page = Page("http://127.0.0.1/", 200, {"content-type": "text/html"}, b"<p>x</p>")
    assert dict(page.data) == {}
    with pytest.raises(TypeError):
        page.data["x"] = 1  # type: ignore[index]
