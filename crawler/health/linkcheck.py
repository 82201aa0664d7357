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
from crawler.crawl.files import ERRORS_FILE
from crawler.errors import ErrorRecord
from crawler.health.result import Failure, HealthResult
from crawler.parse import Item, Link, Page, Site
from crawler.urls import canonicalize

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
    """What a link check found. ``checked`` counts every URL in scope that was
    fetched: each answer (any status, redirects too) and each fetch that got none
    (a timeout, a refused connection). ``complete`` is false when the crawl stopped
    before every reachable page was fetched (``max_pages``): links past it went
    unchecked."""

    broken: list[HealthResult]
    checked: int
    complete: bool
    unchecked: Mapping[str, int]  # links not followed, by reason: offsite, depth, robots...

    def footer(self) -> str:
        """``2,003 checked, 1 broken``: the table's last line."""
        return f"{self.checked:,} checked, {len(self.broken):,} broken"

    def summary(self) -> str:
        text = self.footer()
        if self.unchecked:
            reasons = ", ".join(f"{n:,} {reason}" for reason, n in sorted(self.unchecked.items()))
            text += f"; not checked: {reasons}"
        if not self.complete:
            text += "; the crawl stopped at max_pages, so links beyond it were not checked"
        return text


async def check_links(
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
    every check starts afresh; with it, the check holds that folder while it runs."""
    config = load_config(config_path)
    site = configured_site(config)
    changes = {"engine": engine, "concurrency": concurrency, "timeout": timeout,
               "retries": retries}  # fmt: skip
    fetch = config.fetch.replace(**{k: v for k, v in changes.items() if v is not None})
    config = config.replace(fetch=fetch)
    if output is not None:
        return await _check(config, site, Path(output))
    with tempfile.TemporaryDirectory(prefix="crawl-check-") as folder:
        return await _check(config, site, Path(folder))


async def _check(config: Config, site: Site, out: Path) -> LinkReport:
    output = dataclasses.replace(config.output, dir=out, items=LINKS_FILE, pages=False)
    crawler = Crawler(config.replace(output=output), site=LinkGraphSite(site))
    stats = await crawler.run()
    broken = broken_links(out / ERRORS_FILE, out / LINKS_FILE)
    # The stats count answers; a fetch that got none is only in the errors file.
    unanswered = sum(
        record.status is None and record.kind not in NOT_BROKEN
        for record in map(ErrorRecord.from_json, _records(out / ERRORS_FILE))
        if record is not None
    )
    return LinkReport(broken, stats.pages + unanswered, crawler.finished, dict(stats.dropped))


def broken_links(errors_file: Path, links_file: Path) -> list[HealthResult]:
    """One failed result per broken URL, in the order the crawl met them, with up to
    ``MAX_REFERRERS`` of the pages linking to it. A redirect's target is linked from
    the pages that link to the redirect (one hop back)."""
    errors = {
        canonicalize(record.url): record
        for record in map(ErrorRecord.from_json, _records(errors_file))
        if record is not None and record.kind not in NOT_BROKEN
    }
    via = {url: _canonical(record.referrer) for url, record in errors.items()}
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
    for url, error in errors.items():
        found, count = referrers[url], counts[url]
        source = via[url]
        if not found and source:  # reached only through a redirect (or a sitemap)
            found, count = referrers[source], counts[source]
            if not found and error.referrer:
                found, count = [error.referrer], 1
        results.append(_result(error, tuple(found), count, now))
    return results


def _canonical(url: object) -> str:
    if not isinstance(url, str):
        return ""
    try:
        return canonicalize(url)
    except ValueError:
        return ""


def _result(
    error: ErrorRecord, linked_from: tuple[str, ...], count: int, now: float
) -> HealthResult:
    more = f"linked from {count} pages" if count > len(linked_from) else ""
    if error.kind == "http_status":
        failure, kind, message = Failure("status", "below 400", str(error.status)), None, more
    else:
        failure, kind = Failure.no_response(error.kind), error.kind
        if error.status is not None:  # a redirect that leads nowhere usable
            then = f"got {error.status}, then {error.kind}"
            failure = Failure("fetch", "a usable response", then, phrase=True)
        message = "; ".join(filter(None, [error.message, more]))
    return HealthResult(
        name=error.url, url=error.url, ok=False, checked_at=now, latency=0.0,
        status=error.status, error=kind, message=message, failures=(failure,),
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
