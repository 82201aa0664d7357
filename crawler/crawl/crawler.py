"""The crawl's public front: ``stats = await Crawler(config).run()``.

A run takes the output folder's lock, opens the frontier, reads what was
committed before, opens what the run needs (files, parser, engine, the politeness
shared with other workers) and hands them to a ``Run``. Resuming is the default:
the frontier and the files are cut back to the last commit and the crawl goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from crawler.config import Config, load_config
from crawler.crawl.checkpoint import FINISHED, ROUND, ROUND_RESET, Checkpoint
from crawler.crawl.files import CrawlFiles, default_worker_name, is_shared, write_json
from crawler.crawl.lock import FolderLock
from crawler.crawl.metrics import CrawlMetrics
from crawler.crawl.parser import PageParser, ParseJob
from crawler.crawl.progress import Progress
from crawler.crawl.run import Run, SharedState
from crawler.crawl.scope import Scope
from crawler.crawl.stats import CrawlStats
from crawler.errors import ConfigError
from crawler.frontier import BaseFrontier, Batch, LeaseLost, open_frontier
from crawler.models import Middleware
from crawler.parse import Site, load_site
from crawler.parse.rules import RuleSite
from crawler.sinks import PagesSink

__all__ = ["Crawler", "configured_site", "open_state"]

log = logging.getLogger(__name__)


class Crawler:
    """Run one crawl: ``stats = await Crawler(config).run()``.

    ``config`` is a ``Config`` or a path to a TOML file; ``site`` replaces the
    configured site; ``middleware`` runs inside robots and outside retries;
    ``worker`` names this process in a crawl shared through Redis; ``fresh``
    deletes what an earlier crawl of the folder left, state included, and starts
    over; ``metrics`` (a ``CrawlMetrics``) sees every run's figures, to serve them.
    A crawler can run again, in the same process, and resumes where the last run
    stopped when its state is on disk (the ``sqlite`` frontier). While it runs it
    holds the folder (``AlreadyRunning`` for a second crawl of it).
    """

    def __init__(
        self,
        config: Config | str | Path,
        *,
        site: Site | None = None,
        middleware: Sequence[Middleware] = (),
        progress: Progress | None = None,
        worker: str | None = None,
        fresh: bool = False,
        recrawl: bool = False,
        metrics: CrawlMetrics | None = None,
    ) -> None:
        config = config if isinstance(config, Config) else load_config(config)
        if middleware:
            config = config.replace(fetch=config.fetch.replace(middleware=middleware))
        self.config = config
        # With a shared (Redis) frontier this process is one worker of many, with
        # files of its own; a stable name lets a restart repair what it left.
        self.files = CrawlFiles.of(config, worker)
        self.site = configured_site(config, site)
        self.progress = progress or Progress()
        self.scope = Scope(config.crawl)
        self.fresh = fresh
        self.recrawl = recrawl  # a crawl in rounds: every page is due in the next one
        self.next_due: float | None = None  # a round with nothing due: when something is
        self.stats = CrawlStats()
        self.already_finished = False  # the last run had finished: this one did nothing
        self.finished = False  # everything reachable was crawled
        self.stopped = False  # stop() ended this run early
        self.metrics = metrics
        self._run: Run | None = None

    def stop(self) -> None:
        """Lease nothing more, let requests in flight finish for a few seconds (the rest
        go back to the frontier), commit, and return from ``run()``."""
        if self._run is not None:
            self._run.stop()

    async def run(self) -> CrawlStats:
        files = self.files
        await asyncio.to_thread(files.out.mkdir, parents=True, exist_ok=True)
        self.stopped = self.finished = self.already_finished = False
        with FolderLock(files.lock, files.out):
            if self.fresh:
                await self._discard()
                self.fresh = False  # once: a second run of this crawler resumes
            async with open_state(self.config, files.worker) as frontier:
                checkpoint = Checkpoint(await frontier.checkpoint())
                if self.config.recrawl is not None:
                    checkpoint = await self._next_round(frontier, checkpoint)
                self.stats = checkpoint.stats()
                if checkpoint.finished:
                    self.already_finished = self.finished = self.stats.already_finished = True
                    self._say_finished()
                    if files.shared:  # whatever this worker wrote past its last commit goes
                        await files.repair(checkpoint, mine=True)
                    await files.write_csv()  # a CSV a crash left stale, or deleted, is renewed
                    return self.stats
                try:
                    await self._execute(frontier, checkpoint)
                except LeaseLost:  # others have, or will fetch, what this worker did not commit
                    await files.repair(Checkpoint(await frontier.checkpoint()), mine=True)
                    raise
                if files.shared:  # the stats and the ending of the whole crawl, not this worker's
                    checkpoint = Checkpoint(await frontier.checkpoint())
                    self.stats = checkpoint.stats()
                    if checkpoint.finished:
                        await files.repair(checkpoint)
            await write_json(files.stats, {**self.stats.to_json(), "finished": self.finished})
            await files.write_csv()
        return self.stats

    async def _next_round(self, frontier: BaseFrontier, checkpoint: Checkpoint) -> Checkpoint:
        """A crawl in rounds: begin the next one when the last has finished and a page
        is due (every page, with ``recrawl``); round 1 is the first crawl."""
        this = checkpoint.round or 1
        if not checkpoint.finished:
            if not checkpoint.round:
                await frontier.commit(Batch(checkpoint={ROUND: this}))
                return Checkpoint(await frontier.checkpoint())
            return checkpoint  # the round a crash or Ctrl-C cut short goes on
        now = time.time()
        due, self.next_due = await frontier.due(now)
        # Nothing scheduled: a crawl from before [recrawl] was added, whose pages have no
        # state yet, so its next round fetches them all. Requests still queued (the last
        # round ran out of page budget) make a round too.
        waiting = (await frontier.stats()).pending
        if not (due or waiting or self.recrawl or self.next_due is None):
            return checkpoint
        self.next_due = None
        await frontier.begin_round(now, every=self.recrawl, reset=ROUND_RESET,
                                   checkpoint={ROUND: this + 1, FINISHED: 0})  # fmt: skip
        return Checkpoint(await frontier.checkpoint())

    def _say_finished(self) -> None:
        stats = self.stats
        if self.next_due is not None:
            when = datetime.fromtimestamp(self.next_due, UTC).isoformat(timespec="seconds")
            log.warning("round %s of the crawl in %s is done and no page is due yet: the "
                        "next is due at %s (in %s); recrawl=True (--recrawl) makes every "
                        "page due now", stats.round, self.files.out, when,
                        _span(self.next_due - time.time()))  # fmt: skip
            return
        log.warning(
            "the crawl in %s had already finished (%s pages, %s items); nothing "
            "to do: start over with fresh=True (--fresh on the command line)",
            self.files.out, stats.pages, stats.items,
        )  # fmt: skip

    async def _execute(self, frontier: BaseFrontier, checkpoint: Checkpoint) -> None:
        config, files = self.config, self.files
        crawl = config.crawl
        # "auto" embedded: threads, since processes would import the caller's script
        # again, which only the command line (auto_parse_workers) knows to be safe.
        workers = 1 if crawl.parse_workers == "auto" else crawl.parse_workers
        job = ParseJob(self.site, self.scope, crawl.follow_nofollow,
                       links_once=config.recrawl is None)  # fmt: skip
        parser = PageParser(job, workers=workers)
        pages = PagesSink(files.pages, worker=files.worker) if config.output.pages else None
        try:
            async with contextlib.AsyncExitStack() as stack:
                shared = await stack.enter_async_context(shared_state(config, files))
                if pages is not None:
                    await stack.enter_async_context(pages)
                engine = await stack.enter_async_context(config.fetch.create_engine())
                run = self._run = Run(
                    config, frontier=frontier, files=files, checkpoint=checkpoint,
                    engine=engine, parser=parser, scope=self.scope, progress=self.progress,
                    pages=pages, shared=shared, metrics=self.metrics,
                )  # fmt: skip
                try:
                    await run.execute()
                finally:
                    self.stats = run.stats
                self.finished, self.stopped = run.finished, run.stopped
        finally:
            self._run = None
            parser.close()

    async def discard(self) -> None:
        """Delete what crawls of this folder left, state included, as ``fresh`` does
        before a run. A shared crawl's state is cleared only when no worker runs."""
        with FolderLock(self.files.lock, self.files.out):
            await self._discard()

    async def _discard(self) -> None:
        if is_shared(self.config):  # first: it refuses while workers are alive
            async with open_state(self.config) as frontier:
                await frontier.clear()
        await asyncio.to_thread(self.files.discard)


def _span(seconds: float) -> str:
    """A wait as people say it: 45 s, 12 min, 5 h, 3 d."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{max(seconds, 0):.0f} s"


def open_state(config: Config, worker: str | None = None) -> BaseFrontier:
    """The crawl's frontier, not yet open. Without ``worker``, opened to read or
    clear it, not to crawl: in Redis under a name of its own, which leases nothing."""
    state = config.state
    name = worker or f"status-{default_worker_name()}"
    return open_frontier(state.frontier, config.output.dir, name=state.name, worker=name,
                         lease_timeout=state.lease_timeout)  # fmt: skip


@contextlib.asynccontextmanager
async def shared_state(config: Config, files: CrawlFiles) -> AsyncIterator[SharedState | None]:
    """Rate limits, concurrency and robots.txt shared by every worker (Redis), or None."""
    if not files.shared:
        yield None
        return
    from crawler.crawl.cluster import SharedPoliteness  # redis is imported only when shared

    async with SharedPoliteness.from_url(
        config.state.frontier, name=config.state.name, lease_timeout=config.state.lease_timeout
    ) as shared:
        yield shared


def configured_site(config: Config, site: Site | None = None) -> Site:
    """The site a crawl parses with: ``site``, or the one ``crawl.site`` names (a name
    that does not load is the config's error); with ``[[extract]]`` rules, the rules,
    with that site's items too when one was given or named."""
    if site is None and (config.site_named or not config.extract):
        try:
            site = load_site(config.crawl.site, near=config.folder)
        except ValueError as exc:
            raise ConfigError("crawl.site", config.crawl.site, "a site that loads",
                              problem=str(exc)) from None  # fmt: skip
    return RuleSite(config.extract, base=site) if config.extract else cast(Site, site)
