"""What a crawl counts; kept across resumes in the frontier's checkpoint (``checkpoint.py``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CrawlStats"]


@dataclass(slots=True)
class CrawlStats:
    pages: int = 0  # responses received, any status (sitemaps and robots.txt apart)
    items: int = 0
    parsed: int = 0  # pages handed to the site's parser
    start_parsed: int = 0  # ... of them start pages (depth 0)
    start_parse_errors: int = 0  # start pages the parser failed on
    bytes: int = 0
    rendered: int = 0  # pages whose body is the DOM the headless browser rendered
    deferred: int = 0  # retries put back in the frontier to wait
    duration: float = 0.0  # seconds of crawling, summed over resumed runs
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    sitemaps: Counter[int] = field(default_factory=Counter)  # sitemap fetches by status
    round: int = 0  # a crawl with [recrawl]: the round these counts are of
    changes: Counter[str] = field(default_factory=Counter)  # ... its pages: new, changed, ...
    refused: Counter[str] = field(default_factory=Counter)  # 429 and 503 answers by host:port
    rates: dict[str, float] = field(default_factory=dict)  # hosts at "auto": learned, per s
    # This run found the crawl finished by an earlier one and did nothing.
    already_finished: bool = False

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.duration if self.duration > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def parser_failure(self) -> str | None:
        """Why the crawl's parser counts as broken, in words: it failed on every start
        page (so nothing was followed) or on more than half of the pages; else None."""
        failed = self.errors.get("parse", 0)
        if self.start_parsed and self.start_parse_errors == self.start_parsed:
            starts = "the start page" if self.start_parsed == 1 else "every start page"
            return f"the site's parser failed on {starts}, so no link was followed from it"
        if failed * 2 > self.parsed:
            return f"the site's parser failed on {failed} of {self.parsed} pages"
        return None

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> CrawlStats:
        """The counts ``to_json`` wrote (``stats.json``); keys it lacks count zero."""

        def counts(key: str) -> dict[str, int]:
            value = payload.get(key)
            return dict(value) if isinstance(value, Mapping) else {}

        def number(key: str) -> int:
            return int(payload.get(key) or 0)

        stats = cls(pages=number("pages"), items=number("items"), bytes=number("bytes"),
                    parsed=number("parsed"), round=number("round"),
                    rendered=number("rendered"))  # fmt: skip
        stats.deferred = number("deferred_retries")
        stats.duration = float(payload.get("duration_s") or 0.0)
        stats.statuses.update({int(k): v for k, v in counts("status_codes").items()})
        stats.sitemaps.update({int(k): v for k, v in counts("sitemaps").items()})
        stats.errors.update(counts("errors"))
        stats.dropped.update(counts("dropped"))
        stats.changes.update(counts("changes"))
        stats.refused.update(counts("refused"))
        stats.rates.update(counts("rates_per_s"))
        return stats

    def to_json(self) -> dict[str, Any]:
        rounds = {"round": self.round, "changes": dict(sorted(self.changes.items()))}
        return {
            "pages": self.pages,
            "items": self.items,
            "parsed": self.parsed,
            "parser_failure": self.parser_failure,
            "rendered": self.rendered,
            "bytes": self.bytes,
            "status_codes": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(sorted(self.errors.items())),
            "dropped": dict(sorted(self.dropped.items())),
            "sitemaps": {str(k): v for k, v in sorted(self.sitemaps.items())},
            "deferred_retries": self.deferred,
            "duration_s": round(self.duration, 3),
            "pages_per_s": round(self.pages_per_second, 2),
            **(rounds if self.round else {}),
            **({"refused": dict(sorted(self.refused.items()))} if self.refused else {}),
            **({"rates_per_s": {host: round(rate, 2) for host, rate in sorted(self.rates.items())}}
               if self.rates else {}),
        }  # fmt: skip
