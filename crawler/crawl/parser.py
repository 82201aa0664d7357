"""Parsing off the event loop: a page goes in, its items and its links (already
scoped, each with the reason it was dropped) come out.

With one worker the parsing runs in threads of this process, which lxml's C
code shares well. With more, it runs in that many processes: the parse (HTML
tree, links, the site's fields, scope) is most of a crawl's CPU, and only
processes spread it over several cores. The site and the scope travel to each
process once; per page only the page's inputs and the results do.
"""

from __future__ import annotations

import asyncio
import os
import traceback
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from crawler.crawl.parse_pool import ParsePool
from crawler.crawl.scope import Scope
from crawler.errors import ParseError
from crawler.parse import ExtractFailure, Link, Page, Site
from crawler.sinks import to_json

__all__ = [
    "LINKS_REMEMBERED",
    "MAX_AUTO_PROCESSES",
    "PageParser",
    "ParseJob",
    "Parsed",
    "auto_parse_workers",
]

MAX_AUTO_PROCESSES = 4  # past this the crawl's own process, not parsing, is the limit
LINKS_REMEMBERED = 65536


def auto_parse_workers(cores: int | None = None) -> int:
    """What ``parse_workers = "auto"`` means for a crawl whose main module may start
    processes (the ``crawl`` command): one process per core the crawl may use, up to
    ``MAX_AUTO_PROCESSES``, when there are at least two; threads (1) on one core.

    Threads share one interpreter lock with the event loop: a parse holding it delays
    every response waiting to be read, so on two cores processes crawl the benchmark
    shop twice as fast (benchmarks/README.md). On one core they only add copying."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
        cores = cores or os.cpu_count() or 1
    return 1 if cores < 2 else min(cores, MAX_AUTO_PROCESSES)


class Parsed(NamedTuple):
    """What a page gave: its items, the URLs to follow, why the others were dropped,
    the ``Link.data`` of the links to follow that carry some, by URL, and why
    extraction rules made no item of some of it."""

    items: list[dict[str, Any]]
    links: list[str]
    dropped: list[str]
    data: dict[str, dict[str, Any]]
    failures: list[str]


@dataclass(frozen=True, slots=True)
class ParseJob:
    """What every page of a crawl is parsed with; picklable.

    With ``links_once``, a link this job (in this process or thread pool) handed on
    before is not handed on again: a shop's menus, footers and related items name the
    same pages on every page, and each would be scoped, pickled and looked up by the
    crawl's process only to be found queued. Off in rounds, where every link is a
    page's outlink. At most ``LINKS_REMEMBERED`` are remembered, forgotten all at once:
    forgetting costs only that work, since the frontier's dedup is exact."""

    site: Site
    scope: Scope
    follow_nofollow: bool = False
    links_once: bool = True
    _handed: set[str] = field(default_factory=set, compare=False, repr=False)

    def __call__(self, page: Page) -> Parsed:
        """The page's results, scoped; the site's failure is the page's (``ParseError``),
        not the crawl's."""
        try:
            return self._parse(page)
        except Exception as exc:
            raise ParseError(
                f"{type(exc).__name__}: {exc}",
                url=page.url,
                site=type(self.site).__name__,
                details="".join(traceback.format_exception(exc)),
            ) from exc

    def _parse(self, page: Page) -> Parsed:
        # Every result is checked here, off the loop: a link must be a Link and an item
        # a mapping that JSON can hold, so nothing a site yields breaks a commit later.
        # Links come first: a page yields dozens of them and one item or none.
        parsed = Parsed([], [], [], {}, [])
        depth = page.depth + 1
        seen: set[str] = set()
        handed = self._handed if self.links_once else set()
        follow_nofollow = self.follow_nofollow
        for result in self.site.parse(page):
            if isinstance(result, Link):
                data = result.data
                if data is not None:
                    if not isinstance(data, Mapping):
                        raise TypeError(f"Link.data must be a mapping, not {type(data).__name__}")
                    to_json(data)  # it is stored in the frontier as JSON
                url = result.url
                if result.nofollow and not follow_nofollow:
                    parsed.dropped.append("nofollow")
                elif url not in seen and url not in handed:
                    seen.add(url)
                    reason = self.scope.drop_reason(url, depth)
                    if reason is not None:
                        parsed.dropped.append(reason)
                        continue
                    parsed.links.append(url)
                    if data:
                        parsed.data[url] = dict(data)
            elif isinstance(result, ExtractFailure):
                parsed.failures.append(result.message)
            elif isinstance(result, Mapping):
                item = dict(result)
                to_json(item)
                parsed.items.append(item)
            else:
                raise TypeError(f"a site yields Item or Link, not {type(result).__name__}")
        if self.links_once:
            if len(handed) + len(parsed.links) > LINKS_REMEMBERED:
                handed.clear()
            handed.update(parsed.links)
        return parsed


class PageParser:
    """Runs a ``ParseJob`` in ``workers`` processes (``ParsePool``), or in threads when
    ``workers`` is 1. Raises ``ParseError`` for a page its site fails on."""

    def __init__(self, job: ParseJob, workers: int = 1) -> None:
        self._job = job
        self._threads: ThreadPoolExecutor | None = None
        self._processes: ParsePool | None = None
        if workers <= 1:
            self._threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="parse")
        else:
            self._processes = ParsePool(job, workers, site=type(job.site).__name__)

    async def parse(self, page: Page) -> Parsed:
        if self._processes is not None:
            parsed: Parsed = await self._processes.parse(page)
            return parsed
        return await asyncio.get_running_loop().run_in_executor(self._threads, self._job, page)

    def close(self) -> None:
        if self._processes is not None:
            self._processes.close()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
