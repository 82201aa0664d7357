"""The commit protocol: what makes a resumed crawl write every item exactly once.

Outcomes wait in memory until a commit. A commit writes their items and errors
and fsyncs both files, then, in one frontier transaction, marks their requests
done (or released, to be retried), adds the links they produced, adds their
counts and records the files' new lengths. Opening the files for the next run
cuts them back to the recorded lengths, so whatever was written after the last
commit (a crash, ``kill -9``, a full disk) is thrown away and fetched again.
Items are always JSON Lines here: a CSV is rendered from them when a run ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Sequence

from crawler.crawl.archive import Archive
from crawler.crawl.budget import PageBudget
from crawler.crawl.checkpoint import (
    DURATION,
    FINISHED,
    SPENT,
    Checkpoint,
    increments,
    rate_values,
    stats_values,
)
from crawler.crawl.files import CrawlFiles
from crawler.crawl.metrics import Histogram
from crawler.crawl.outcome import Outcome
from crawler.crawl.rounds import change_record
from crawler.crawl.stats import CrawlStats
from crawler.frontier import BaseFrontier, Batch
from crawler.middleware import RateLimit
from crawler.models import AsyncResource, Request
from crawler.sinks import JsonlSink

__all__ = ["COMMIT_EVERY", "COMMIT_INTERVAL", "Committer"]

COMMIT_EVERY = 256  # outcomes per commit, at most
COMMIT_INTERVAL = 1.0  # seconds between commits, at most


class Committer(AsyncResource):
    """Buffers a run's outcomes and commits them, every ``COMMIT_INTERVAL`` seconds or
    ``COMMIT_EVERY`` outcomes, whichever comes first, from a task of its own (``run``).

    ``on_commit`` is called after every commit (leases may have become ready);
    ``on_fatal`` when one fails (disk full, store gone), after which ``fatal``
    holds the error and the committer stops.
    """

    def __init__(
        self,
        *,
        frontier: BaseFrontier,
        files: CrawlFiles,
        checkpoint: Checkpoint,
        budget: PageBudget,
        stats: CrawlStats,
        per_host: bool,
        on_commit: Callable[[], None],
        on_fatal: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
        rounds: bool = False,
        archive: Archive | None = None,
        limits: RateLimit | None = None,
    ) -> None:
        self._frontier, self._files, self._budget, self.stats = frontier, files, budget, stats
        self._items = JsonlSink(files.items, resume_at=files.offset(checkpoint, "items"))
        self._errors = JsonlSink(files.errors, resume_at=files.offset(checkpoint, "errors"))
        # A crawl in rounds: one record per page that is new, changed or removed.
        self._changes = (JsonlSink(files.changes, resume_at=files.offset(checkpoint, "changes"))
                         if rounds else None)  # fmt: skip
        self._archive = archive  # output.warc
        self._limits = limits  # its 429s and learned rates are saved with each commit
        self._refused_before = Counter(stats.refused)  # by the runs before this one
        self._rates_saved = dict(stats.rates)  # as the checkpoint has them: only changes go
        self._per_host = per_host  # a shared crawl reads the others' host counts at commits
        self._on_commit, self._on_fatal, self._clock = on_commit, on_fatal, clock
        self._base_duration = stats.duration
        self._started_at = clock()
        self._outcomes: list[Outcome] = []
        self._links: list[Request] = []
        self._lock = asyncio.Lock()
        self.latency = Histogram()  # seconds each commit took: write, fsync, frontier
        self._now = asyncio.Event()
        self._draining = False
        self.fatal: Exception | None = None

    async def open(self) -> None:
        """Open the files, cut back to what the checkpoint says was committed."""
        async with contextlib.AsyncExitStack() as opened:
            for sink in self._sinks:
                await sink.open()
                opened.push_async_callback(sink.aclose)
            opened.pop_all()  # all open: they stay so

    @property
    def _sinks(self) -> list[JsonlSink | Archive]:
        optional = (self._changes, self._archive)
        return [self._items, self._errors, *(sink for sink in optional if sink is not None)]

    async def aclose(self) -> None:
        async with contextlib.AsyncExitStack() as closing:
            for sink in self._sinks:
                closing.push_async_callback(sink.aclose)

    @property
    def pending(self) -> int:
        """Outcomes waiting for the next commit."""
        return len(self._outcomes)

    @property
    def elapsed(self) -> float:
        """Seconds of crawling, over every run."""
        return self._base_duration + self._clock() - self._started_at

    def add(self, outcome: Outcome, *, soon: bool = False) -> None:
        """Hold ``outcome`` for the next commit; ``soon``: commit without waiting."""
        self._outcomes.append(outcome)
        if soon or len(self._outcomes) >= COMMIT_EVERY:
            self._now.set()

    def add_links(self, links: Sequence[Request]) -> None:
        """Links found outside any page (a robots.txt's sitemaps), for the next commit."""
        self._links += links

    def commit_soon(self) -> None:
        self._now.set()

    async def run(self) -> None:
        """Commit until ``drain``; a failed commit is fatal to the run."""
        while not self._draining:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._now.wait(), COMMIT_INTERVAL)
            self._now.clear()
            try:
                await self.commit()
            except Exception as exc:  # disk full, store gone: stop the fetch tasks
                self.fatal = exc
                self._on_fatal()
                return

    async def drain(self, task: asyncio.Task[None]) -> None:
        """Stop ``run`` (its ``task``), letting a commit in progress finish: cancelling
        one halfway would leave items on disk whose requests the frontier still
        holds as leased, and they would be written twice."""
        self._draining = True
        self._now.set()
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:  # an abort: the next run cuts the files back
            task.cancel()
            raise

    async def commit(self, *, released: Sequence[Request] = (), final: bool = False,
                     finished: bool = False) -> None:  # fmt: skip
        """Write the outcomes, fsync, then record them and the files' lengths in one
        frontier transaction. ``released`` go back to the queue untouched; ``final``
        commits even when there is nothing to write; ``finished`` marks the crawl
        done."""
        async with self._lock:
            started = time.monotonic()
            outcomes, self._outcomes = self._outcomes, []
            links, self._links = self._links, []
            if not (outcomes or links or released or final):
                return
            batch = Batch(links=links, released=[(request, 0.0) for request in released],
                          round=self.stats.round)  # fmt: skip
            before = stats_values(self.stats)
            rates = self._politeness()
            for outcome in outcomes:
                await self._write(outcome, batch)
            self.stats.duration = self.elapsed
            spent, refund = self._budget.settle(outcomes)
            # Counts go to the frontier as increments, so many workers can add to them.
            batch.counters = {**increments(before, stats_values(self.stats)), **spent}
            batch.checkpoint = {
                self._files.offset_key("items"): await self._items.commit(),
                self._files.offset_key("errors"): await self._errors.commit(),
                DURATION: round(self.stats.duration * 1000),
                **rate_values(rates),
            }
            if self._changes is not None:
                batch.checkpoint[self._files.offset_key("changes")] = await self._changes.commit()
            if self._archive is not None:
                batch.checkpoint.update(await self._archive.commit())
            if finished:
                batch.checkpoint[FINISHED] = 1
            await self._frontier.commit(batch)
            self.latency.observe(time.monotonic() - started)
            self._budget.refund(refund)
            if self._files.shared:
                await self._catch_up(hosts=self._per_host)
        self._on_commit()

    def _politeness(self) -> dict[str, float]:
        """Bring the 429s per host up to date; the rates ``auto`` has learned that
        the checkpoint does not have yet."""
        if self._limits is None:
            return {}
        for host, refused in self._limits.refused().items():
            self.stats.refused[host] = self._refused_before[host] + refused
        rates = self._limits.rates()
        self.stats.rates.update(rates)
        changed = {
            host: rate for host, rate in rates.items() if self._rates_saved.get(host) != rate
        }
        self._rates_saved.update(changed)
        return changed

    async def _write(self, outcome: Outcome, batch: Batch) -> None:
        stats = self.stats
        for item in outcome.items:
            await self._items.write(item)
        for error in ([outcome.error] if outcome.error else []) + outcome.problems:
            await self._errors.write(error.to_json())
            stats.errors[error.kind] += 1
        if self._archive is not None:
            await self._archive.record(outcome)  # first: it adds the page's reference
        if outcome.page is not None:
            batch.pages.append(outcome.page)
        if outcome.change is not None:
            stats.changes[outcome.change] += 1
            if self._changes is not None and outcome.change != "unchanged":
                await self._changes.write(change_record(outcome, stats.round))
        stats.items += len(outcome.items)
        stats.dropped.update(outcome.dropped)
        batch.links += outcome.links
        if outcome.release_at is not None:
            batch.released.append((outcome.request, outcome.release_at))
            stats.deferred += not outcome.interrupted
            return
        batch.done.append(outcome.request)
        lineage = outcome.request.lineage
        if outcome.status is None:
            return
        if lineage.kind == "sitemap":  # a probe for URLs, not a page of the site
            stats.sitemaps[outcome.status] += 1
            return
        stats.pages += 1
        stats.rendered += outcome.rendered
        stats.bytes += outcome.size
        stats.statuses[outcome.status] += 1
        if outcome.parsed:
            failed = outcome.error is not None and outcome.error.kind == "parse"
            stats.parsed += 1
            if lineage.depth == 0:
                stats.start_parsed += 1
                stats.start_parse_errors += failed

    async def catch_up(self) -> None:
        """What have the other workers spent? Read between commits, never inside one."""
        async with self._lock:
            await self._catch_up(hosts=False)

    async def _catch_up(self, *, hosts: bool) -> None:
        """Under the lock, so the budget and the store agree on this worker's part."""
        values = await self._frontier.checkpoint(None if hosts else [SPENT])
        self._budget.catch_up(Checkpoint(values), hosts=hosts)
