"""Link checking: crawl a site with its crawl config and report every link that
is broken, with the pages that link to it.

The crawl is an ordinary crawl (scope, robots, retries, resume), run with a
site wrapper that yields, for each page, the links it found as one item. Those
items land in ``links.jsonl`` under the crawl's own commit protocol, so the
link graph needs no store of its own and survives a resume like any item; the
broken URLs come from ``errors.jsonl``.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crawler.config import Config, load_config
from crawler.crawl import Crawler, configured_site
from crawler.health.result import Failure, HealthResult
from crawler.loop import run
from crawler.models import Timeouts
from crawler.progress import make_progress
from crawler.site import Item, Link, Page, Site
from crawler.urls import canonicalize
from crawler.workers import ERRORS_FILE

__all__ = ["LINKS_FILE", "LinkGraphSite", "LinkReport", "broken_links", "check_links"]

LINKS_FILE = "links.jsonl"
MAX_REFERRERS = 100  # pages listed per broken link; the count says how many more
NOT_BROKEN = frozenset({"parse", "write"})  # our side failed, not the link


class LinkGraphSite(Site):
    """Wraps a site: follows the links it yields and records them, per page, as
    the item ``{"page": url, "links": [...]}``; the site's own items are dropped."""

    name = "link graph"

    def __init__(self, site: Site) -> None:
        self.site = site

    def parse(self, page: Page) -> Iterable[Item | Link]:
        links = [result for result in self.site.parse(page) if isinstance(result, Link)]
        yield from links
        yield Item(page=page.url, links=[link.url for link in links])


@dataclass(frozen=True, slots=True)
class LinkReport:
    """What a link check found. ``complete`` is false when the crawl stopped before
    every reachable page was fetched (``max_pages``): links past it went unchecked."""

    broken: list[HealthResult]
    pages: int
    complete: bool
    unchecked: Mapping[str, int]  # links not followed, by reason: offsite, depth, robots...

    def summary(self) -> str:
        text = f"checked {self.pages} pages, {len(self.broken)} broken links"
        if self.unchecked:
            reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.unchecked.items()))
            text += f"; not checked: {reasons}"
        if not self.complete:
            text += "; the crawl stopped at max_pages, so links beyond it were not checked"
        return text


def check_links(
    config_path: str | Path,
    *,
    engine: str | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    concurrency: int | None = None,
    output: str | Path | None = None,
) -> LinkReport:
    """Crawl, then list the broken links. Options left ``None`` keep the config's
    settings. Without ``output`` the crawl's state lives in a temporary folder, so
    every check starts afresh."""
    config = load_config(config_path)
    site = configured_site(config)
    fetch = config.fetch
    fetch = dataclasses.replace(
        fetch,
        engine=engine or fetch.engine,
        concurrency=concurrency or fetch.concurrency,
        timeout=fetch.timeout if timeout is None else Timeouts(total=timeout),
    )
    config = config.replace(fetch=fetch)
    if retries is not None:
        config = config.replace(retry=dataclasses.replace(config.retry, retries=retries))
    if output is not None:
        return _check(config, site, Path(output))
    with tempfile.TemporaryDirectory(prefix="crawl-check-") as folder:
        return _check(config, site, Path(folder))


def _check(config: Config, site: Site, out: Path) -> LinkReport:
    output = dataclasses.replace(config.output, dir=out, items=LINKS_FILE, pages=False)
    crawler = Crawler(
        config.replace(output=output), site=LinkGraphSite(site), progress=make_progress(quiet=True)
    )
    stats = run(crawler.run())
    broken = broken_links(out / ERRORS_FILE, out / LINKS_FILE)
    return LinkReport(broken, stats.pages, crawler.finished, dict(stats.dropped))


def broken_links(errors_file: Path, links_file: Path) -> list[HealthResult]:
    """One failed result per broken URL, in the order the crawl met them, with up to
    ``MAX_REFERRERS`` of the pages linking to it. A redirect's target is linked from
    the pages that link to the redirect (one hop back)."""
    errors = {
        canonicalize(record["url"]): record
        for record in _records(errors_file)
        if record.get("kind") not in NOT_BROKEN
    }
    via = {url: _canonical(record.get("referrer")) for url, record in errors.items()}
    wanted = set(errors) | {source for source in via.values() if source}
    referrers: dict[str, list[str]] = {url: [] for url in wanted}
    counts = dict.fromkeys(wanted, 0)
    for record in _records(links_file):
        page = str(record.get("page"))
        for url in {_canonical(link) for link in record.get("links") or ()}:
            if url in referrers:
                counts[url] += 1
                if len(referrers[url]) < MAX_REFERRERS:
                    referrers[url].append(page)
    now = time.time()
    results = []
    for url, record in errors.items():
        found, count = referrers[url], counts[url]
        source = via[url]
        if not found and source:  # reached only through a redirect (or a sitemap)
            found, count = referrers[source], counts[source]
            if not found:
                found, count = [record["referrer"]], 1
        results.append(_result(record, tuple(found), count, now))
    return results


def _canonical(url: object) -> str:
    if not isinstance(url, str):
        return ""
    try:
        return canonicalize(url)
    except ValueError:
        return ""


def _result(
    record: dict[str, Any], linked_from: tuple[str, ...], count: int, now: float
) -> HealthResult:
    status, kind = record.get("status"), str(record.get("kind"))
    more = f"linked from {count} pages" if count > len(linked_from) else ""
    if kind == "http_status":
        failure, error, message = Failure("status", "below 400", str(status)), None, more
    else:
        failure, error = Failure("fetch", "a response", kind), kind
        message = "; ".join(filter(None, [str(record.get("message", "")), more]))
    return HealthResult(
        name=record["url"], url=record["url"], ok=False, checked_at=now, latency=0.0,
        status=status, error=error, message=message, failures=(failure,),
        linked_from=linked_from,
    )  # fmt: skip


def _records(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                record = json.loads(line)
                if isinstance(record, dict):
                    yield record
    except FileNotFoundError:
        return
