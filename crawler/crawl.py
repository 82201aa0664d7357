"""The crawler: workers lease requests from the frontier, fetch them through the
policy chain, parse pages off the event loop, and hand the results to one
committer that writes them and tells the frontier, atomically, what is done.

    frontier ─lease─▶ worker x N ─▶ Robots ▶ [middleware] ▶ Retry ▶ RateLimit ▶ Timeout ▶ engine
        ▲                 │ parse (thread) → items, links
        └──── commit ◀────┘ (items and errors fsynced first, then one frontier transaction
                              with the files' new lengths: resume cuts the files back to them)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import Counter, deque
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler.config import Config, load_config
from crawler.engines import EngineOptions, create_engine
from crawler.engines._slots import slot_count
from crawler.errors import (
    ConfigError,
    FetchError,
    ParseError,
    RequestDropped,
    RetryLater,
    SinkError,
)
from crawler.frontier import Batch, LeaseLost, open_frontier
from crawler.frontier.base import BaseFrontier, depth_of
from crawler.guard import address_guard
from crawler.middleware import Middleware, RateLimit, Retry, Robots, Timeout, compose
from crawler.middleware.chain import Handler
from crawler.middleware.redirects import CREDENTIALS
from crawler.models import Headers, Request, Response, make_headers
from crawler.outcome import (
    Outcome,
    absolute_location,
    error_kind,
    error_status,
    is_page,
    same_page,
    sitemap_request,
)
from crawler.parsing import PageParser, ParseJob
from crawler.progress import Progress, Snapshot
from crawler.scope import Scope
from crawler.sinks import JsonlSink, PagesSink, Sink, open_items_sink
from crawler.site import Page, Site, load_site
from crawler.sitemaps import parse_sitemap
from crawler.stats import CrawlStats
from crawler.urls import host_key, origin
from crawler.workers import WorkerFiles, shared_politeness

if TYPE_CHECKING:
    from crawler.cluster import SharedPoliteness

__all__ = ["Crawler", "configured_site"]

DEFER_AFTER = 5.0  # a retry that must wait longer goes back to the frontier
COMMIT_EVERY = 256  # outcomes per commit, at most
COMMIT_INTERVAL = 1.0  # seconds between commits, at most
# A lease outlives any wait in one run: the embedded frontiers are used by one
# process, and reopening one frees every lease it finds.
LEASE_SECONDS = 7 * 24 * 3600.0
MAX_SITEMAP_NESTING = 3  # sitemap index levels followed
STATS_FILE = "stats.json"
FINISHED = "finished"
STOP_GRACE = 5.0  # seconds the requests in flight get to finish after stop()
SPENT = "budget.spent"
DURATION = "stats.duration_ms"  # set, not added: the crawl's time, not the workers' sum
HOST_PREFIX = "host."  # checkpoint keys of pages per host, for max_pages_per_host


class Crawler:
    """Run one crawl: ``stats = await Crawler(config).run()``.

    ``config`` is a ``Config`` or a path to a TOML file; ``site`` replaces the
    configured site; ``middleware`` runs inside robots and outside retries;
    ``worker`` names this process in a crawl shared through Redis.
    A crawler can run again, in the same process, and resumes where the last
    run stopped when its state is on disk (the ``sqlite`` frontier).
    """

    def __init__(
        self,
        config: Config | str | Path,
        *,
        site: Site | None = None,
        middleware: Sequence[Middleware] = (),
        progress: Progress | None = None,
        worker: str | None = None,
    ) -> None:
        self.config = config if isinstance(config, Config) else load_config(config)
        # With a shared (Redis) frontier this process is one worker of many, with
        # files of its own; a stable name lets a restart repair what it left.
        self.files = WorkerFiles.of(self.config, worker)
        self.site = site if site is not None else configured_site(self.config)
        self.middleware = tuple(middleware)
        self.progress = progress or Progress()
        self.scope = Scope(self.config.crawl)
        self.stats = CrawlStats()
        self.already_finished = False  # the last run had finished: this one did nothing
        self.finished = False  # everything reachable was crawled
        self.stopped = False  # stop() ended this run early
        self._stopping = False
        self._fetches: set[asyncio.Future[Response]] = set()

    def stop(self) -> None:
        """Lease nothing more, let requests in flight finish for up to ``STOP_GRACE``
        seconds (the rest go back to the frontier), commit, and return from ``run()``."""
        if self._stopping:
            return
        self._stopping = True
        self._wake()
        with contextlib.suppress(RuntimeError):  # no loop: run() is not running
            asyncio.get_running_loop().call_later(STOP_GRACE, self._cancel_fetches)

    def _cancel_fetches(self) -> None:
        for fetch in list(self._fetches):
            fetch.cancel()

    # the run -----------------------------------------------------------------------------

    async def run(self) -> CrawlStats:
        config = self.config
        out = config.output.dir
        await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
        self._stopping = self.stopped = self.finished = self.already_finished = False
        files, state = self.files, config.state
        async with open_frontier(state.frontier, out, name=state.name, worker=files.worker,
                                 lease_timeout=state.lease_timeout) as frontier:  # fmt: skip
            checkpoint = self._checkpoint = await frontier.checkpoint()
            self.stats = CrawlStats.from_checkpoint(checkpoint)
            self._host_pages = Counter({
                key[len(HOST_PREFIX):]: n for key, n in checkpoint.items()
                if key.startswith(HOST_PREFIX)
            })  # fmt: skip
            if checkpoint.get(FINISHED):
                self.already_finished = self.finished = True
                if files.shared:  # whatever this worker wrote past its last commit goes
                    await files.repair(checkpoint, mine=True)
                return self.stats
            items = open_items_sink(files.items, resume_at=checkpoint.get(files.items_key, 0))
            errors = JsonlSink(files.errors, resume_at=checkpoint.get(files.errors_key, 0))
            pages = PagesSink(out / "pages", worker=files.worker) if config.output.pages else None
            crawl = config.crawl
            parser = PageParser(ParseJob(self.site, self.scope, crawl.follow_nofollow),
                                workers=crawl.parse_workers)  # fmt: skip
            try:
                async with items, errors, shared_politeness(config, self.files) as shared:
                    if pages is not None:
                        await pages.open()
                    await self._crawl(frontier, items, errors, pages, parser, shared)
            except LeaseLost:  # others have, or will fetch, what this worker did not commit
                await files.repair(await frontier.checkpoint(), mine=True)
                raise
            finally:
                parser.close()
            if files.shared:  # the stats and the ending of the whole crawl, not this worker's
                checkpoint = await frontier.checkpoint()
                self.stats = CrawlStats.from_checkpoint(checkpoint)
                if checkpoint.get(FINISHED):
                    await files.repair(checkpoint)
        await self._write_stats(out / STATS_FILE)
        return self.stats

    async def _crawl(
        self,
        frontier: BaseFrontier,
        items: Sink,
        errors: Sink,
        pages: PagesSink | None,
        parser: PageParser,
        shared: SharedPoliteness | None,
    ) -> None:
        fetch = self.config.fetch
        self._frontier, self._items, self._errors, self._pages = frontier, items, errors, pages
        self._parser = parser
        self._outcomes: list[Outcome] = []
        self._extra_links: list[Request] = []
        self._local: deque[Request] = deque()
        self._lease_lock = asyncio.Lock()
        self._commit_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._commit_now = asyncio.Event()
        self._in_flight = 0
        self._draining = False
        self._host_active: Counter[str] = Counter()
        self._fatal: Exception | None = None
        # Page requests sent, failed ones included: what max_pages limits, across runs.
        self._spent = self._checkpoint.get(SPENT, self.stats.pages)
        self._budget = self.config.crawl.max_pages - self._spent
        self._base_duration = self.stats.duration
        self._started_at = time.monotonic()
        headers = [("User-Agent", fetch.user_agent), *fetch.headers]
        self._headers = make_headers(headers)
        # Configured credentials are for the start URLs' sites, not for every origin
        # a link or redirect in scope leads to (another port, a subdomain).
        anonymous = [(name, value) for name, value in headers if name.lower() not in CREDENTIALS]
        self._anonymous = make_headers(anonymous) if len(anonymous) < len(headers) else None
        self._credential_origins = {origin(url) for url in self.config.crawl.start_urls}

        engine = create_engine(fetch.engine, EngineOptions(
            concurrency=fetch.concurrency, verify_tls=fetch.verify_tls,
            proxy=fetch.proxy or None,
            guard=address_guard(fetch.block_private, fetch.allow_private, proxy=fetch.proxy),
            large_bodies=slot_count(fetch.body_memory, fetch.max_bytes)
            if fetch.body_memory else None,
        ))  # fmt: skip
        async with engine:
            self._handler = self._chain(engine.send, shared)
            await frontier.push(self._seeds())
            committer = asyncio.create_task(self._committer())
            reporter = asyncio.create_task(self._report())
            try:
                async with asyncio.TaskGroup() as workers:
                    for _ in range(fetch.concurrency):
                        workers.create_task(self._worker())
            except BaseExceptionGroup as group:  # a bug or a dead store, not a bad page
                raise group.exceptions[0] from None
            finally:
                reporter.cancel()
                await self._stop_committer(committer)
                await asyncio.gather(reporter, return_exceptions=True)
            if self._fatal is not None:
                raise self._fatal
            self.stopped = self._stopping
            leftovers = list(self._local)
            self._local.clear()
            await self._commit(released=leftovers, final=True)
        self.progress.finish(self.stats)

    def _chain(self, send: Handler, shared: SharedPoliteness | None) -> Handler:
        config = self.config
        rate_limit = RateLimit(
            config.rate_limit.per_host or None,
            per_host_concurrency=config.fetch.per_host_concurrency,
            shared=shared,
        )
        retry = Retry(config.retry.retries, backoff=config.retry.backoff,
                      max_backoff=config.retry.max_backoff, statuses=config.retry.statuses,
                      defer_after=DEFER_AFTER)  # fmt: skip
        chain: list[Middleware] = []
        if config.crawl.obey_robots:
            chain.append(Robots(config.fetch.user_agent, rate_limit=rate_limit,
                                on_sitemaps=self._on_sitemaps, shared=shared))  # fmt: skip
        chain += [*self.middleware, retry, rate_limit, Timeout(config.fetch.timeout)]
        return compose(chain, send)

    def _seeds(self) -> list[Request]:
        seeds = [Request(url, meta={"depth": 0}) for url in self.config.crawl.start_urls]
        if self.config.crawl.sitemaps:
            origins = {origin(url) for url in self.config.crawl.start_urls}
            seeds += [sitemap_request(origin + "/sitemap.xml") for origin in sorted(origins)]
        return seeds

    def _on_sitemaps(self, origin: str, urls: list[str]) -> None:
        if self.config.crawl.sitemaps:
            self._extra_links += [
                sitemap_request(url) for url in urls if self.scope.drop_reason(url, 0) is None
            ]

    # leasing -----------------------------------------------------------------------------

    def _wake(self) -> None:
        """Wake every worker waiting for work (a commit may have made some ready)."""
        changed = getattr(self, "_changed", None)
        if changed is not None:
            self._changed = asyncio.Event()
            changed.set()

    async def _next_request(self) -> Request | None:
        while not self._stopping:
            if self._local:
                return self._local.popleft()
            changed = self._changed
            if self._budget <= 0:
                if not self._in_flight and not self._outcomes:
                    return None  # spent, and no uncommitted request can give any back
                # A request in flight may yet be dropped unsent (robots) and refund its page.
                self._commit_now.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), COMMIT_INTERVAL)
                continue
            async with self._lease_lock:
                if self._local or self._stopping:
                    continue
                if self.files.shared:
                    async with self._commit_lock:  # not between a commit's two halves
                        await self._catch_up(hosts=False)  # what have the others spent?
                    if self._budget <= 0:
                        continue
                size = min(max(self.config.fetch.concurrency, 1), self._budget)
                lease = await self._frontier.lease(size, seconds=LEASE_SECONDS)
                if lease.requests:
                    self._budget -= sum(map(is_page, lease.requests))
                    self._local.extend(lease.requests)
                    continue
                if lease.finished:
                    self.finished = True
                    return None
            # Nothing ready: results waiting for a commit, or retries waiting for their time.
            if self._outcomes:
                self._commit_now.set()
            wait = COMMIT_INTERVAL
            if lease.next_at is not None:
                wait = min(wait, max(lease.next_at - time.time(), 0.01))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), wait)
        return None

    async def _worker(self) -> None:
        while (request := await self._next_request()) is not None:
            self._in_flight += 1
            try:
                outcome = await self._handle(request)
            finally:
                self._in_flight -= 1
            self._outcomes.append(outcome)
            if len(self._outcomes) >= COMMIT_EVERY or self._near_budget():
                self._commit_now.set()  # near the end, the other workers must see our pages

    def _near_budget(self) -> bool:
        """A shared crawl close to ``max_pages``: commit and look at the others' often."""
        return self.files.shared and self._budget < 4 * max(self.config.fetch.concurrency, 1)

    # one request -------------------------------------------------------------------------

    async def _handle(self, leased: Request) -> Outcome:
        config = self.config
        outcome = Outcome(leased)
        if not self._take_host_budget(outcome):
            return outcome
        request = Request(leased.url, headers=self._headers_for(leased.url),
                          timeouts=config.fetch.timeout,
                          max_bytes=config.fetch.max_bytes, meta=leased.meta)  # fmt: skip
        fetch = asyncio.ensure_future(self._handler(request))
        self._fetches.add(fetch)
        try:
            response = await fetch
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not fetch.cancelled() or (task is not None and task.cancelling()):
                raise
            # stop() ran out of patience: the request goes back untouched, for the next run.
            outcome.release_at, outcome.interrupted = 0.0, True
            return outcome
        except RequestDropped as exc:
            outcome.dropped.append(exc.reason)
            outcome.sent = False
            if outcome.host is not None:  # never sent: not a page of that host
                self._host_active[outcome.host] -= 1
                outcome.host = None
            return outcome
        except RetryLater as exc:
            tries = int(leased.meta.get("tries", 0)) + 1
            if tries <= config.retry.retries:
                outcome.request = leased.replace(meta={**leased.meta, "tries": tries})
                outcome.release_at = exc.not_before
                return outcome
            if exc.response is None:  # out of tries on an error: report that error
                cause = exc.__cause__
                kind = error_kind(cause) if isinstance(cause, FetchError) else "timeout"
                outcome.error = self._error(
                    leased, kind, str(cause or exc), status=error_status(cause)
                )
                return outcome
            response = exc.response
        except FetchError as exc:
            outcome.error = self._error(leased, error_kind(exc), str(exc), status=error_status(exc))
            return outcome
        finally:
            self._fetches.discard(fetch)
            # The task holds the error, whose traceback holds this frame, which holds
            # the task: a cycle only the garbage collector would free.
            del fetch
        outcome.status, outcome.size = response.status, len(response.body)
        await self._on_response(outcome, response)
        return outcome

    def _take_host_budget(self, outcome: Outcome) -> bool:
        """``max_pages_per_host``: committed pages plus those in flight, per host."""
        limit = self.config.crawl.max_pages_per_host
        if not limit or not is_page(outcome.request):
            return True
        host = host_key(outcome.request.url)
        if self._host_pages[host] + self._host_active[host] >= limit:
            outcome.dropped.append("host-budget")
            outcome.sent = False
            return False
        self._host_active[host] += 1
        outcome.host = host
        return True

    async def _on_response(self, outcome: Outcome, response: Response) -> None:
        request = outcome.request
        meta = request.meta
        kind = meta.get("kind", "page")
        if response.is_redirect:
            self._follow_redirect(outcome, response)
        elif kind == "sitemap":
            if response.ok:
                # Up to 50,000 URLs: parsed and scoped in a thread, off the loop.
                await asyncio.to_thread(self._read_sitemap, outcome, response)
        elif response.status >= 400:
            outcome.error = self._error(request, "http_status", f"HTTP {response.status}",
                                        status=response.status)  # fmt: skip
        elif response.content_type not in self.config.crawl.content_types:
            outcome.dropped.append("content-type")
        else:
            await self._parse(outcome, response)
        if self._pages is not None and response.body:
            try:
                await self._pages.write_page(response.url, response.body)
            except SinkError as exc:  # e.g. /a.html and /a.html/b want one path twice
                outcome.error = outcome.error or self._error(request, "write", str(exc))

    def _read_sitemap(self, outcome: Outcome, response: Response) -> None:
        sitemap = parse_sitemap(response.body)
        nesting = int(outcome.request.meta.get("nesting", 0)) + 1
        children = [sitemap_request(url, nesting) for url in sitemap.sitemaps]
        if nesting > MAX_SITEMAP_NESTING:  # an index of indexes of ...: a trap
            outcome.dropped += ["trap"] * len(children)
            children = []
        self._add_links(outcome, children, depth=0)
        pages = [Request(url, meta={"depth": 1, "referrer": response.url})
                 for url in sitemap.pages]  # fmt: skip
        self._add_links(outcome, pages, depth=1)

    def _follow_redirect(self, outcome: Outcome, response: Response) -> None:
        """In a crawl a redirect target is a link: scoped, deduplicated, robots-checked."""
        request = outcome.request
        hops = int(request.meta.get("hops", 0)) + 1
        if hops > self.config.fetch.max_redirects:
            outcome.error = self._error(request, "too_many_redirects",
                                        f"more than {self.config.fetch.max_redirects} redirects",
                                        status=response.status)  # fmt: skip
            return
        target = absolute_location(response.url, response.headers["location"])
        if target is None:
            outcome.error = self._error(request, "invalid_url", "redirect to an unusable URL",
                                        status=response.status)  # fmt: skip
            return
        if same_page(target, request.url):
            outcome.error = self._error(request, "too_many_redirects",
                                        f"redirects to itself ({target})",
                                        status=response.status)  # fmt: skip
            return
        depth = depth_of(request)
        meta = {**request.meta, "hops": hops, "referrer": request.url}
        meta.pop("tries", None)
        self._add_links(outcome, [Request(target, meta=meta)], depth=depth)

    async def _parse(self, outcome: Outcome, response: Response) -> None:
        request = outcome.request
        page = Page.from_response(
            response, depth=depth_of(request), referrer=request.meta.get("referrer")
        )
        try:
            items, links, dropped = await self._parser.parse(page)
        except ParseError as exc:
            outcome.error = self._error(request, "parse", str(exc), status=response.status)
            return
        fetched_at = datetime.now(UTC).isoformat(timespec="seconds")
        for item in items:
            if item.get("fetched_at", "") is None:
                item["fetched_at"] = fetched_at
        outcome.items += items
        depth = page.depth + 1
        outcome.links += [
            Request(url, meta={"depth": depth, "referrer": page.url}) for url in links
        ]
        outcome.dropped += dropped

    def _add_links(self, outcome: Outcome, links: list[Request], *, depth: int) -> None:
        for link in links:
            reason = self.scope.drop_reason(link.url, depth)
            if reason is None:
                outcome.links.append(link)
            else:
                outcome.dropped.append(reason)

    def _headers_for(self, url: str) -> Headers:
        if self._anonymous is None or origin(url) in self._credential_origins:
            return self._headers
        return self._anonymous

    def _error(
        self, request: Request, kind: str, message: str, *, status: int | None = None
    ) -> dict[str, Any]:
        return {"url": request.url, "kind": kind, "status": status, "message": message,
                "referrer": request.meta.get("referrer")}  # fmt: skip

    # committing --------------------------------------------------------------------------

    async def _stop_committer(self, committer: asyncio.Task[None]) -> None:
        """Let a commit in progress finish: cancelling one halfway would leave items
        on disk whose requests the frontier still holds as leased (written twice)."""
        self._draining = True
        self._commit_now.set()
        try:
            await asyncio.shield(committer)
        except asyncio.CancelledError:  # an abort: the next run cuts the files back
            committer.cancel()
            raise

    async def _committer(self) -> None:
        while not self._draining:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._commit_now.wait(), COMMIT_INTERVAL)
            self._commit_now.clear()
            try:
                await self._commit()
            except Exception as exc:  # disk full, store gone: fatal, stop the workers
                self._fatal = exc
                self.stop()
                return

    async def _commit(self, *, released: Sequence[Request] = (), final: bool = False) -> None:
        """Write the outcomes, fsync, then record them and the files' lengths in one
        frontier transaction. Everything after those lengths is cut off on resume."""
        async with self._commit_lock:
            outcomes, self._outcomes = self._outcomes, []
            extra, self._extra_links = self._extra_links, []
            if not (outcomes or extra or released or final):
                return
            batch = Batch(links=extra, released=[(r, 0.0) for r in released])
            stats = self.stats
            # Counts go to the frontier as increments, so many workers can add to them.
            before, host_before = stats.to_checkpoint(), Counter(self._host_pages)
            for outcome in outcomes:
                for item in outcome.items:
                    await self._items.write(item)
                if outcome.error is not None:
                    await self._errors.write(outcome.error)
                    stats.errors[outcome.error["kind"]] += 1
                stats.items += len(outcome.items)
                stats.dropped.update(outcome.dropped)
                batch.links += outcome.links
                if outcome.host is not None:  # no longer in flight: done, or back in the queue
                    self._host_active[outcome.host] -= 1
                if outcome.release_at is not None:
                    batch.released.append((outcome.request, outcome.release_at))
                    stats.deferred += not outcome.interrupted
                    continue
                batch.done.append(outcome.request)
                if outcome.host is not None:
                    self._host_pages[outcome.host] += 1
                if outcome.status is not None:
                    stats.pages += 1
                    stats.bytes += outcome.size
                    stats.statuses[outcome.status] += 1
            stats.duration = self._base_duration + time.monotonic() - self._started_at
            # A page either spent its budget (sent) or gives it back (deferred, dropped).
            refund = sum(is_page(o.request) for o in outcomes
                         if o.release_at is not None or not o.sent)  # fmt: skip
            spent = sum(is_page(o.request) for o in outcomes) - refund
            self._spent += spent
            after = stats.to_checkpoint()
            batch.counters = {
                **{k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)},
                SPENT: spent,
                **{HOST_PREFIX + host: n - host_before[host]
                   for host, n in self._host_pages.items() if n != host_before[host]},
            }  # fmt: skip
            batch.checkpoint = {
                self.files.items_key: await self._items.commit(),
                self.files.errors_key: await self._errors.commit(),
                DURATION: batch.counters.pop(DURATION, 0) + before.get(DURATION, 0),
            }
            if final and self.finished and not self._stopping:
                batch.checkpoint[FINISHED] = 1
            await self._frontier.commit(batch)
            self._budget += refund
            if self.files.shared:
                await self._catch_up(hosts=bool(self.config.crawl.max_pages_per_host))
        self._wake()

    async def _catch_up(self, *, hosts: bool) -> None:
        """Other workers spend the page budgets too: take their share into account.
        Under the commit lock, so ``_spent`` and the store agree on this worker's part.
        ``hosts``: the per-host counts too (a read of every key, so only at commits)."""
        checkpoint = await self._frontier.checkpoint(None if hosts else [SPENT])
        spent = checkpoint.get(SPENT, 0)
        self._budget -= spent - self._spent
        self._spent = spent
        for key, n in checkpoint.items():
            if key.startswith(HOST_PREFIX):
                self._host_pages[key[len(HOST_PREFIX) :]] = n

    # reporting ---------------------------------------------------------------------------

    async def _report(self) -> None:
        while True:
            frontier = await self._frontier.stats()
            self.progress.update(Snapshot(
                pages=self.stats.pages + len(self._outcomes),
                queued=frontier.pending,
                in_flight=self._in_flight,
                errors=self.stats.error_count,
                elapsed=self._base_duration + time.monotonic() - self._started_at,
            ))  # fmt: skip
            await asyncio.sleep(0.5)

    async def _write_stats(self, path: Path) -> None:
        payload = {**self.stats.to_json(), "finished": self.finished}
        temporary = path.with_suffix(f".{os.getpid()}.tmp")  # workers may share the folder

        def write() -> None:
            temporary.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
            os.replace(temporary, path)

        await asyncio.to_thread(write)


def configured_site(config: Config) -> Site:
    """The site ``crawl.site`` names; a name that does not load is the config's error."""
    try:
        return load_site(config.crawl.site)
    except ValueError as exc:
        raise ConfigError("crawl.site", config.crawl.site, str(exc)) from None
