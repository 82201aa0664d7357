"""Every key a crawl keeps in its frontier's checkpoint, and what each means.

The frontier stores flat integers beside its queue and changes them in the same
transaction as the queue (``Batch.checkpoint`` values are set, ``Batch.counters``
added, so that many workers can count into one key). A crawl keeps there::

    finished                    1 once everything reachable was crawled (this round)
    round                       the round a crawl with [recrawl] is in (1, 2, ...)
    budget.spent                page requests sent, by every run and worker (max_pages)
    host.<host:port>            pages sent to that host (max_pages_per_host)
    offset.items[.<worker>]     the committed length of the items file (of that worker)
    offset.errors[.<worker>]    the committed length of the errors file (of that worker)
    offset.changes              the committed length of changes.jsonl (a crawl in rounds)
    offset.warc[.<worker>]      the committed length of the current WARC file
    warc.file[.<worker>]        the index of the current WARC file
    stats.pages  stats.items  stats.bytes  stats.deferred  stats.duration_ms
    stats.parsed  stats.start_parsed  stats.start_parse_errors  stats.rendered
    stats.status.<code>  stats.errors.<kind>  stats.dropped.<reason>  stats.sitemap.<code>
    stats.change.<new|changed|unchanged|removed>  stats.refused.<host:port>
    rate.<host:port>            the rate "auto" learned for that host, in thousandths of a
                                request per second: a resumed run or the next round
                                starts there

A new round deletes the ``stats.``, ``budget.`` and ``host.`` keys: the counts are
the round's.

No other module spells a key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from crawler.crawl.stats import CrawlStats

__all__ = [
    "DURATION",
    "FINISHED",
    "ROUND",
    "ROUND_RESET",
    "SPENT",
    "Checkpoint",
    "OutputFile",
    "host_counters",
    "increments",
    "offset_key",
    "rate_values",
    "stats_values",
    "warc_file_key",
]

FINISHED = "finished"
ROUND = "round"
SPENT = "budget.spent"
DURATION = "stats.duration_ms"  # set, not added: the crawl's time, not the sum of its workers'
_HOST = "host."
_OFFSET = "offset."
_WARC_FILE = "warc.file"
_STATS = "stats."
_TOTALS = (
    "pages",
    "items",
    "bytes",
    "deferred",
    "parsed",
    "start_parsed",
    "start_parse_errors",
    "rendered",
)
_GROUPS = {"status": "statuses", "errors": "errors", "dropped": "dropped", "sitemap": "sitemaps",
           "change": "changes", "refused": "refused"}  # fmt: skip
_RATE = "rate."

OutputFile = Literal["items", "errors", "changes", "warc"]
ROUND_RESET = (_STATS, "budget.", _HOST)  # what a new round starts from zero


def offset_key(file: OutputFile, worker: str | None) -> str:
    """Where the committed length of a crawl's (or one worker's) file is kept."""
    return f"{_OFFSET}{file}" + (f".{worker}" if worker else "")


def warc_file_key(worker: str | None) -> str:
    """Where the index of a crawl's (or one worker's) current WARC file is kept."""
    return _WARC_FILE + (f".{worker}" if worker else "")


def host_counters(hosts: Mapping[str, int]) -> dict[str, int]:
    """Pages per host, as checkpoint keys."""
    return {_HOST + host: n for host, n in hosts.items()}


def rate_values(rates: Mapping[str, float]) -> dict[str, int]:
    """Learned rates per host, as checkpoint keys (set, not added)."""
    return {_RATE + host: round(rate * 1000) for host, rate in rates.items()}


def stats_values(stats: CrawlStats) -> dict[str, int]:
    """The counts as checkpoint keys."""
    values = {f"{_STATS}{name}": getattr(stats, name) for name in _TOTALS}
    values[DURATION] = round(stats.duration * 1000)
    for group, attribute in _GROUPS.items():
        counts: Counter[int] | Counter[str] = getattr(stats, attribute)
        values.update({f"{_STATS}{group}.{key}": n for key, n in counts.items()})
    return values


def increments(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """What a commit adds to the counts, from ``stats_values`` before and after it
    (the duration aside: it is set, see ``DURATION``)."""
    return {
        key: n - before.get(key, 0)
        for key, n in after.items()
        if n != before.get(key, 0) and key != DURATION
    }


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A read of the checkpoint: what the crawl has committed so far."""

    values: Mapping[str, int]

    @property
    def finished(self) -> bool:
        return bool(self.values.get(FINISHED))

    @property
    def round(self) -> int:
        """The round this crawl is in; 0 for a crawl without [recrawl] (or before it had one)."""
        return self.values.get(ROUND, 0)

    def warc_file(self, worker: str | None) -> int:
        return self.values.get(warc_file_key(worker), 0)

    @property
    def spent(self) -> int:
        """Page requests sent so far; crawls from before the key count their pages."""
        return self.values.get(SPENT, self.values.get(f"{_STATS}pages", 0))

    def offset(self, file: OutputFile, worker: str | None) -> int:
        return self.values.get(offset_key(file, worker), 0)

    def rates(self) -> dict[str, float]:
        """The rates ``auto`` learned, per ``host:port``, requests per second."""
        return {key[len(_RATE):]: n / 1000 for key, n in self.values.items()
                if key.startswith(_RATE)}  # fmt: skip

    def host_pages(self) -> Counter[str]:
        return Counter({
            key[len(_HOST):]: n for key, n in self.values.items() if key.startswith(_HOST)
        })  # fmt: skip

    def stats(self) -> CrawlStats:
        stats = CrawlStats(round=self.round)
        for key, value in self.values.items():
            if not key.startswith(_STATS):
                continue
            name = key[len(_STATS) :]
            group, _, sub = name.partition(".")
            if group in ("status", "sitemap") and sub.isdigit():
                getattr(stats, _GROUPS[group])[int(sub)] = value
            elif group in ("errors", "dropped", "change", "refused") and sub:
                getattr(stats, _GROUPS[group])[sub] = value
            elif key == DURATION:
                stats.duration = value / 1000
            elif name in _TOTALS:
                setattr(stats, name, value)
        stats.rates = self.rates()
        return stats
