"""One run of a crawl: from the first lease to the last commit.

    frontier ─lease─▶ fetch tasks (concurrency) ─▶ RequestHandler ─▶ outcome
        ▲                                                              │
        └──────────────────── commit ◀── Committer ◀──────────────────┘

A run leases requests in batches into a local queue that its fetch tasks (as
many as ``fetch.concurrency``: coroutines of this process, not workers) take
from; each task hands its request to the handler and the outcome to the
committer. The run ends when the frontier is finished (nothing pending, nothing
leased), the page budget is spent, or ``stop()`` is called.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Protocol

from crawler.config import Config
from crawler.crawl.archive import Archive
from crawler.crawl.budget import PageBudget
from crawler.crawl.checkpoint import Checkpoint
from crawler.crawl.committer import COMMIT_INTERVAL, Committer
from crawler.crawl.files import CrawlFiles
from crawler.crawl.handler import RequestHandler, sitemap_request
from crawler.crawl.metrics import CrawlMetrics, Histogram
from crawler.crawl.parser import PageParser
from crawler.crawl.progress import Progress, Snapshot
from crawler.crawl.scope import Scope
from crawler.crawl.stats import CrawlStats
from crawler.engines import Engine
from crawler.frontier import BaseFrontier, FrontierStats, PageState
from crawler.middleware import Robots, policy_chain, rate_limit
from crawler.middleware.ratelimit import SharedLimits
from crawler.middleware.robots import RobotsStore
from crawler.models import Handler, Middleware, Request
from crawler.sinks import PagesSink
from crawler.urls import origin

__all__ = ["STOP_GRACE", "Run", "SharedState"]

log = logging.getLogger(__name__)

DEFER_AFTER = 5.0  # a retry that must wait longer goes back to the frontier
STOP_GRACE = 5.0  # seconds the requests in flight get to finish after stop()
# A lease outlives any wait in one run: the embedded frontiers are used by one
# process, and reopening one frees every lease it finds.
LEASE_SECONDS = 7 * 24 * 3600.0


class SharedState(SharedLimits, RobotsStore, Protocol):
    """What the workers of a shared crawl share besides the frontier: per-host limits
    and robots.txt answers (``cluster.SharedPoliteness``)."""


class Run:
    """The state of one run, created whole here; ``execute()`` runs it once."""

    def __init__(
        self,
        config: Config,
        *,
        frontier: BaseFrontier,
        files: CrawlFiles,
        checkpoint: Checkpoint,
        engine: Engine,
        parser: PageParser,
        scope: Scope,
        progress: Progress,
        pages: PagesSink | None = None,
        shared: SharedState | None = None,
        metrics: CrawlMetrics | None = None,
    ) -> None:
        self.config = config
        self.stats: CrawlStats = checkpoint.stats()
        self.finished = False  # everything reachable was crawled
        self.stopped = False  # stop() ended this run early
        self._frontier, self._files, self._scope, self._progress = frontier, files, scope, progress
        self._concurrency = config.fetch.concurrency
        self.budget = PageBudget(config.crawl, checkpoint)
        self.limits = rate_limit(config.fetch, shared)
        self.limits.resume(checkpoint.rates())
        self.committer = Committer(
            frontier=frontier, files=files, checkpoint=checkpoint, budget=self.budget,
            stats=self.stats, per_host=bool(config.crawl.max_pages_per_host),
            on_commit=self._wake, on_fatal=self.stop, rounds=config.recrawl is not None,
            archive=Archive(config, files, checkpoint) if config.output.warc else None,
            limits=self.limits,
        )  # fmt: skip
        send = engine.send if metrics is None else metrics.observe(engine.send)
        robots = self._robots(shared)
        self.handler = RequestHandler(
            config, send=self._chain(send, robots), parser=parser, scope=scope,
            budget=self.budget, pages=pages, round=checkpoint.round,
            archive=bool(config.output.warc), robots=robots,
        )  # fmt: skip
        self._local: deque[Request] = deque()  # leased, not yet taken by a fetch task
        self._known: dict[str, PageState] = {}  # of the leased pages an earlier round saw
        self._lease_lock = asyncio.Lock()
        self._changed = asyncio.Event()  # set (and replaced) when leases may be ready
        self._in_flight = 0
        self._stopping = False
        if metrics is not None:
            metrics.attach(self)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def commit_latency(self) -> Histogram:
        return self.committer.latency

    async def frontier_stats(self) -> FrontierStats:
        return await self._frontier.stats()

    def _robots(self, shared: SharedState | None) -> Robots | None:
        if not self.config.crawl.obey_robots:
            return None
        return Robots(self.config.fetch.user_agent, rate_limit=self.limits,
                      on_sitemaps=self._on_sitemaps, shared=shared)  # fmt: skip

    def _chain(self, send: Handler, robots: Robots | None) -> Handler:
        outer: list[Middleware] = [] if robots is None else [robots]
        return policy_chain(self.config.fetch, send, outer=outer, limits=self.limits,
                            defer_after=DEFER_AFTER)  # fmt: skip

    def _seeds(self) -> list[Request]:
        start_urls = self.config.crawl.start_urls
        seeds = [Request(url) for url in start_urls]
        if self.config.crawl.sitemaps:
            origins = sorted({origin(url) for url in start_urls})
            seeds += [sitemap_request(origin + "/sitemap.xml") for origin in origins]
        return seeds

    def _on_sitemaps(self, origin: str, urls: list[str]) -> None:
        if self.config.crawl.sitemaps:
            self.committer.add_links([
                sitemap_request(url) for url in urls if self._scope.drop_reason(url, 0) is None
            ])  # fmt: skip

    def stop(self) -> None:
        """Lease nothing more, let requests in flight finish for up to ``STOP_GRACE``
        seconds (the rest go back to the frontier), commit, and end ``execute()``."""
        if self._stopping:
            return
        self._stopping = True
        self._wake()
        with contextlib.suppress(RuntimeError):  # no loop: the run is not running
            asyncio.get_running_loop().call_later(STOP_GRACE, self.handler.cancel_fetches)

    async def execute(self) -> None:
        async with self.committer:
            await self._frontier.push(self._seeds())
            committing = asyncio.create_task(self.committer.run())
            reported = asyncio.Event()  # set: the reporter stops, even if a cancel is lost
            reporting = asyncio.create_task(self._report(reported))
            try:
                async with asyncio.TaskGroup() as tasks:
                    for _ in range(self._concurrency):
                        tasks.create_task(self._fetch_task())
            except BaseExceptionGroup as group:  # a bug or a dead store, not a bad page
                raise group.exceptions[0] from None
            finally:
                reported.set()
                reporting.cancel()
                await self.committer.drain(committing)
                await asyncio.gather(reporting, return_exceptions=True)
            if self.committer.fatal is not None:
                raise self.committer.fatal
            self.stopped = self._stopping
            if self._round_spent():
                self.finished = True
            leftovers = list(self._local)
            self._local.clear()
            self._known.clear()
            await self.committer.commit(released=leftovers, final=True,
                                        finished=self.finished and not self._stopping)  # fmt: skip
        self._progress.finish(self.stats)

    def _round_spent(self) -> bool:
        """A crawl in rounds that spent its page budget: the round ends here, and the
        requests still queued wait for the next one instead of holding this one open."""
        spent = (self.config.recrawl is not None and not self.finished
                 and not self._stopping and self.budget.left <= 0)  # fmt: skip
        if spent:
            log.warning("round %s ended at the page budget (crawl.max_pages, %s pages); the "
                        "pages still queued wait for the next round", self.stats.round,
                        self.stats.pages)  # fmt: skip
        return spent

    # leasing -----------------------------------------------------------------------------

    def _wake(self) -> None:
        """Wake every fetch task waiting for work (a commit may have made some ready)."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _next_request(self) -> Request | None:
        while not self._stopping:
            if self._local:
                return self._local.popleft()
            changed, wait = self._changed, COMMIT_INTERVAL
            if self.budget.left <= 0:
                if not self._in_flight and not self.committer.pending:
                    return None  # spent, and no uncommitted request can give any back
                # A request in flight may yet be dropped unsent (robots) and refund its page.
                self.committer.commit_soon()
            else:
                async with self._lease_lock:
                    if self._local or self._stopping:
                        continue
                    if self._files.shared:
                        await self.committer.catch_up()  # what have the others spent?
                        if self.budget.left <= 0:
                            continue
                    size = self.budget.lease_size(self._concurrency)
                    lease = await self._frontier.lease(size, seconds=LEASE_SECONDS)
                    if lease.requests:
                        self.budget.leased(lease.requests)
                        self._local.extend(lease.requests)
                        self._known.update(lease.known)
                        continue
                    if lease.finished:
                        self.finished = True
                        return None
                # Nothing ready: results waiting for a commit, or retries waiting for their time.
                if self.committer.pending:
                    self.committer.commit_soon()
                if lease.next_at is not None:
                    wait = min(wait, max(lease.next_at - time.time(), 0.01))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), wait)
        return None

    async def _fetch_task(self) -> None:
        while (request := await self._next_request()) is not None:
            self._in_flight += 1
            try:
                outcome = await self.handler.handle(request, self._known.pop(request.url, None))
            finally:
                self._in_flight -= 1
            # Near the end of a shared budget the other workers must see our pages soon.
            near = self._files.shared and self.budget.left < 4 * self._concurrency
            self.committer.add(outcome, soon=near)

    # reporting ---------------------------------------------------------------------------

    async def _report(self, done: asyncio.Event) -> None:
        """Refresh the progress every half second until ``done``. Not by cancelling
        alone: a library may lose a cancel (redis-py under Python 3.11 does), and this
        loop would then keep the run from ending."""
        while not done.is_set():
            frontier = await self._frontier.stats()
            self._progress.update(Snapshot(
                pages=self.stats.pages + self.committer.pending,
                queued=frontier.pending,
                in_flight=self._in_flight,
                errors=self.stats.error_count,
                elapsed=self.committer.elapsed,
                rates=self.limits.rates(),
            ))  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.5)
