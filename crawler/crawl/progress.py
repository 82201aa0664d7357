"""How a crawl shows itself: a live bar on a terminal, log lines elsewhere,
nothing when quiet, and a summary table at the end."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TextIO

from crawler.crawl.stats import CrawlStats

__all__ = ["LogProgress", "Progress", "RichProgress", "Snapshot", "make_progress"]

SHOWN_HOSTS = 3  # learned rates in the progress line


@dataclass(frozen=True, slots=True)
class Snapshot:
    pages: int
    queued: int
    in_flight: int
    errors: int
    elapsed: float
    rates: Mapping[str, float] = field(default_factory=dict)  # hosts at "auto": learned

    @property
    def rate(self) -> float:
        return self.pages / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def hosts(self) -> str:
        return host_rates(self.rates)


def host_rates(rates: Mapping[str, float]) -> str:
    """The learned rates of the fastest hosts at ``auto``: ``a.test:443 18.2/s, ...``."""
    fastest = sorted(rates.items(), key=lambda item: -item[1])[:SHOWN_HOSTS]
    more = len(rates) - len(fastest)
    shown = ", ".join(f"{host} {rate:.1f}/s" for host, rate in fastest)
    return shown + (f" (+{more} hosts)" if more > 0 else "")


class Progress:
    """Shows nothing (``--quiet``); the base of the others."""

    def update(self, snapshot: Snapshot) -> None:
        """Called about twice a second while the crawl runs."""

    def finish(self, stats: CrawlStats) -> None:
        """Called once when the crawl ends."""


class LogProgress(Progress):
    """A plain line every ``every`` seconds: for logs, CI and pipes."""

    def __init__(self, stream: TextIO = sys.stderr, every: float = 5.0) -> None:
        self.stream = stream
        self.every = every
        self._last = 0.0

    def update(self, snapshot: Snapshot) -> None:
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            hosts = f" hosts={snapshot.hosts}" if snapshot.rates else ""
            print(
                f"pages={snapshot.pages} queued={snapshot.queued} in_flight={snapshot.in_flight}"
                f" errors={snapshot.errors} rate={snapshot.rate:.1f}/s{hosts}",
                file=self.stream, flush=True,
            )  # fmt: skip

    def finish(self, stats: CrawlStats) -> None:
        print(summary_text(stats), file=self.stream, flush=True)


class RichProgress(Progress):
    """A live bar on a terminal, then a summary table."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        from rich.console import Console
        from rich.progress import Progress as Bar
        from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = Console(file=stream)
        self._bar = Bar(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[pages]}[/] pages"),
            TextColumn("{task.fields[queued]} queued"),
            TextColumn("{task.fields[in_flight]} in flight"),
            TextColumn("{task.fields[rate]:.1f} pages/s"),
            TextColumn("[red]{task.fields[errors]} errors"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[hosts]}"),
            console=self.console,
            transient=True,
        )
        self._task = self._bar.add_task("crawl", total=None, pages=0, queued=0, in_flight=0,
                                        rate=0.0, errors=0, hosts="")  # fmt: skip
        self._bar.start()

    def update(self, snapshot: Snapshot) -> None:
        from rich.markup import escape

        self._bar.update(self._task, pages=snapshot.pages, queued=snapshot.queued,
                         in_flight=snapshot.in_flight, rate=snapshot.rate,
                         errors=snapshot.errors, hosts=escape(snapshot.hosts))  # fmt: skip

    def finish(self, stats: CrawlStats) -> None:
        from rich.table import Table

        self._bar.stop()
        table = Table(title="crawl summary", show_header=False)
        for name, value in summary_rows(stats):
            table.add_row(name, value)
        self.console.print(table)


def summary_rows(stats: CrawlStats) -> list[tuple[str, str]]:
    rows = [
        ("pages", str(stats.pages)),
        ("items", str(stats.items)),
        ("bytes", f"{stats.bytes:,}"),
        ("duration", f"{stats.duration:.1f} s"),
        ("pages/s", f"{stats.pages_per_second:.1f}"),
        ("status codes", _counts(stats.statuses)),
        ("errors", _counts(stats.errors)),
        ("dropped", _counts(stats.dropped)),
    ]
    if stats.sitemaps:  # probes for URLs: a missing /sitemap.xml is no page's error
        rows.append(("sitemaps", _counts(stats.sitemaps)))
    if stats.round:
        rows.insert(0, ("round", str(stats.round)))
        rows.append(("changes", _counts(stats.changes)))
    if stats.refused:
        rows.append(("429/503 by host", _counts(stats.refused)))
    if stats.rates:
        rows.append(("auto rates", host_rates(stats.rates)))
    return rows


def summary_text(stats: CrawlStats) -> str:
    return "\n".join(f"{name:>13}: {value}" for name, value in summary_rows(stats))


def _counts(counter: dict[str, int] | dict[int, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counter.items(), key=str)) or "none"


def make_progress(*, quiet: bool, stream: TextIO = sys.stderr) -> Progress:
    if quiet:
        return Progress()
    return RichProgress(stream) if stream.isatty() else LogProgress(stream)
