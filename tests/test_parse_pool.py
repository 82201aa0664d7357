"""Parse processes: every page gets its own answer, a page that kills its process fails
alone, processes that cannot start fail the pages instead of being started forever,
and a crawl killed with SIGKILL takes its parse processes with it."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from crawler.config import parse_config
from crawler.config.crawl import CrawlSettings
from crawler.crawl import Crawler, parse_pool
from crawler.crawl.parse_pool import BATCH_PAGES, STILLBORN_MAX, ParsePool
from crawler.crawl.parser import ParseJob
from crawler.crawl.scope import Scope
from crawler.errors import ParseError
from crawler.models import make_headers
from crawler.parse import Item, Link, Page, Site
from tests.gensite import GeneratedSite

HEADERS = make_headers([("content-type", "text/html")])


def page(n: int, body: bytes = b"<p>x</p>") -> Page:
    return Page(f"http://127.0.0.1:1/p/{n}.html", 200, HEADERS, body)


def url_and_pid(page: Page) -> tuple[str, int]:
    return page.url, os.getpid()


def dies_on_seven(page: Page) -> str:
    if page.url.endswith("/7.html"):
        os.kill(os.getpid(), signal.SIGKILL)
    return page.url


def fails_on_odd(page: Page) -> str:
    if int(page.url.rsplit("/", 1)[1].removesuffix(".html")) % 2:
        raise LookupError(f"odd page {page.url}")
    return page.url


class DiesAsItStarts:
    """A job whose copy in a parse process ends that process as it is unpickled."""

    def __reduce__(self) -> tuple[Any, ...]:
        return os._exit, (5,)

    def __call__(self, page: Page) -> str:
        return page.url


def finished(pids: Iterable[int]) -> bool:
    multiprocessing.active_children()  # reaps this process's children that ended
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            continue
        if stat[stat.rindex(")") + 2] != "Z":
            return False
    return True


def wait_until(condition: Any, seconds: float = 30) -> None:
    """Poll for what another process does; ``seconds`` is a hang guard only."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


async def test_every_page_gets_its_own_answer_across_batches() -> None:
    pool = ParsePool(url_and_pid, 2)
    try:
        pages = [page(n) for n in range(BATCH_PAGES * 6)]
        answers = await asyncio.gather(*(pool.parse(p) for p in pages))
    finally:
        pool.close()
    assert [url for url, _ in answers] == [p.url for p in pages]
    pids = {pid for _, pid in answers}
    assert os.getpid() not in pids
    wait_until(lambda: finished(pids))  # closing ends them


async def test_a_failing_page_fails_alone_with_its_traceback() -> None:
    pool = ParsePool(fails_on_odd, 2, site="Odd")
    try:
        answers = await asyncio.gather(*(pool.parse(page(n)) for n in range(40)),
                                       return_exceptions=True)  # fmt: skip
    finally:
        pool.close()
    for n, answer in enumerate(answers):
        if n % 2:
            assert isinstance(answer, ParseError)
            assert str(answer) == f"LookupError: odd page {page(n).url}"
            assert "in fails_on_odd" in answer.details
        else:
            assert answer == page(n).url


async def test_a_page_that_kills_its_process_fails_alone_and_the_pool_goes_on() -> None:
    pool = ParsePool(dies_on_seven, 2, site="Deadly")
    try:
        answers = await asyncio.gather(*(pool.parse(page(n)) for n in range(3 * BATCH_PAGES)),
                                       return_exceptions=True)  # fmt: skip
        [failed] = [n for n, answer in enumerate(answers) if isinstance(answer, BaseException)]
        assert failed == 7
        assert str(answers[7]) == "the parse process was killed by signal 9 while parsing this page"
        assert (answers[7].url, answers[7].site) == (page(7).url, "Deadly")
        assert all(answers[n] == page(n).url for n in range(len(answers)) if n != 7)
        assert await pool.parse(page(100)) == page(100).url
    finally:
        pool.close()


async def test_processes_that_die_as_they_start_fail_every_page_without_restarting_forever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[Any] = []

    class Counted(parse_pool._Process):
        def __init__(self, job: Any) -> None:
            started.append(job)
            super().__init__(job)

    monkeypatch.setattr(parse_pool, "_Process", Counted)
    pool = ParsePool(DiesAsItStarts(), 2, site="Broken")
    try:
        answers = await asyncio.gather(*(pool.parse(page(n)) for n in range(50)),
                                       return_exceptions=True)  # fmt: skip
        with pytest.raises(ParseError, match="parse processes die as they start"):
            await pool.parse(page(99))
    finally:
        pool.close()
    assert all(isinstance(answer, ParseError) for answer in answers)
    assert {str(answer) for answer in answers} == {
        "parse processes die as they start: the last one exited with code 5"
    }
    # The two first, then one for each death until the third.
    assert len(started) <= STILLBORN_MAX + 1


async def test_a_cancelled_page_does_not_disturb_the_others() -> None:
    pool = ParsePool(url_and_pid, 1)
    try:
        tasks = [asyncio.ensure_future(pool.parse(page(n))) for n in range(40)]
        tasks[20].cancel()
        answers = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        pool.close()
    assert isinstance(answers[20], asyncio.CancelledError)
    assert [a[0] for n, a in enumerate(answers) if n != 20] == [
        page(n).url for n in range(40) if n != 20
    ]


class KillsItsProcessOnPageSeven(Site):
    name = "kills-on-seven"

    def parse(self, page: Page) -> Iterable[Item | Link]:
        if page.url.endswith("/p/7.html"):
            os.kill(os.getpid(), signal.SIGKILL)
        yield Item(url=page.url)
        yield from page.links()


async def test_a_crawl_records_the_page_that_killed_a_parse_process_and_goes_on(
    small_site: GeneratedSite, tmp_path: Path
) -> None:
    config = parse_config({
        "crawl": {"start_urls": [small_site.url("/")], "parse_workers": 2, "sitemaps": False},
        "rate_limit": {"per_host": ""},
        "output": {"dir": str(tmp_path)},
    })  # fmt: skip
    stats = await Crawler(config, site=KillsItsProcessOnPageSeven()).run()
    assert stats.errors["parse"] == 1
    [error] = [json.loads(line) for line in (tmp_path / "errors.jsonl").read_text().splitlines()]
    assert error["url"] == small_site.url("/p/7.html")
    assert "killed by signal 9" in error["message"]
    items = {
        json.loads(line)["url"] for line in (tmp_path / "items.jsonl").read_text().splitlines()
    }
    assert len(items) == stats.parsed - 1  # every other page, the rest of its batch included
    assert small_site.url("/p/7.html") not in items


def test_a_crawl_killed_with_sigkill_takes_its_parse_processes_with_it(
    small_site: GeneratedSite, tmp_path: Path
) -> None:
    config = tmp_path / "crawl.toml"
    config.write_text(
        f'[crawl]\nstart_urls = ["{small_site.url("/")}"]\nparse_workers = 2\n'
        f'[rate_limit]\nper_host = "5/s"\n[output]\ndir = "{tmp_path / "out"}"\n',
        encoding="utf-8",
    )
    crawl = subprocess.Popen([sys.executable, "-m", "crawler", str(config), "--quiet"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:

        def children() -> list[int]:
            found = []
            for task in Path(f"/proc/{crawl.pid}/task").iterdir():
                found += [int(pid) for pid in (task / "children").read_text().split()]
            return found

        wait_until(lambda: len(children()) > 0)  # a parse process started
        parse_processes = children()
        crawl.send_signal(signal.SIGKILL)
        crawl.wait(timeout=30)
        wait_until(lambda: finished(parse_processes))
        # Nothing holds the crawl's output open any more.
        assert crawl.stdout is not None
        assert crawl.stdout.read() == b""
    finally:
        crawl.kill()
        crawl.communicate(timeout=30)


class Menu(Site):
    """Every page links the same menu, and a page of its own."""

    def parse(self, page: Page) -> Iterable[Item | Link]:
        yield from page.links()


def menu_page(n: int) -> Page:
    menu = "".join(f'<a href="/c/{k}.html">c</a>' for k in range(5))
    body = f'<html><body>{menu}<a href="/p/{n + 1}.html">next</a><a href="//x.test/">off</a>'
    return Page(f"http://127.0.0.1:1/p/{n}.html", 200, HEADERS, body.encode())


@pytest.mark.parametrize("links_once", [True, False])
def test_a_job_hands_on_each_link_once_unless_told_to_keep_every_outlink(links_once: bool) -> None:
    scope = Scope(CrawlSettings(start_urls=("http://127.0.0.1:1/",)))
    job = ParseJob(Menu(), scope, links_once=links_once)
    menu = [f"http://127.0.0.1:1/c/{k}.html" for k in range(5)]
    first, second = job(menu_page(1)), job(menu_page(2))
    assert first.links == [*menu, "http://127.0.0.1:1/p/2.html"]
    assert second.links == (
        ["http://127.0.0.1:1/p/3.html"] if links_once else [*menu, "http://127.0.0.1:1/p/3.html"]
    )
    assert first.dropped == second.dropped == ["offsite"]  # counted on every page
