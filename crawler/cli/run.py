"""``crawl CONFIG`` (``crawl run``) and ``crawl worker``: a crawl from the command
line, with signals, resume and exit codes; ``--workers N`` starts N workers here."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from crawler.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, UsageError, usage
from crawler.cli.loop import run as run_loop
from crawler.cli.options import configure, serve_address
from crawler.config import Config
from crawler.crawl import Crawler, open_state
from crawler.crawl.checkpoint import Checkpoint
from crawler.crawl.files import ERRORS_FILE, default_worker_name, is_shared
from crawler.crawl.parser import auto_parse_workers
from crawler.crawl.progress import Progress, Snapshot, make_progress
from crawler.crawl.stats import CrawlStats
from crawler.errors import AlreadyRunning, ConfigError, CrawlerError, FrontierError

if TYPE_CHECKING:
    from crawler.crawl.serve import MetricsServer

__all__ = ["run", "run_crawl", "run_workers", "worker"]

WATCH_EVERY = 0.5  # seconds between reads of the whole crawl's progress, with --workers


def run(args: argparse.Namespace) -> int:
    if args.workers > 1:
        if args.serve:
            return usage(UsageError("--serve is for one process: give each `crawl worker` "
                                    "its own --serve"))  # fmt: skip
        return run_workers(
            args.config, args.workers, engine=args.engine, max_pages=args.max_pages,
            output=args.output, fresh=args.fresh, quiet=args.quiet,
        )  # fmt: skip
    return run_crawl(
        args.config, engine=args.engine, max_pages=args.max_pages, output=args.output,
        fresh=args.fresh, quiet=args.quiet, recrawl=args.recrawl, serve=args.serve,
    )  # fmt: skip


def worker(args: argparse.Namespace) -> int:
    return run_crawl(
        args.config, engine=args.engine, max_pages=args.max_pages, output=args.output,
        quiet=args.quiet, worker=args.worker_id, shared_only=True, serve=args.serve,
    )  # fmt: skip


def run_crawl(
    path: str,
    *,
    engine: str | None = None,
    max_pages: int | None = None,
    output: str | None = None,
    fresh: bool = False,
    quiet: bool = False,
    worker: str | None = None,
    shared_only: bool = False,
    recrawl: bool = False,
    serve: str | None = None,
) -> int:
    try:
        address = serve_address(serve) if serve else None
    except UsageError as exc:
        return usage(exc)
    config = configure(path, engine=engine, max_pages=max_pages, output=output)
    if config.crawl.parse_workers == "auto" and worker is None:  # a worker shares the cores
        config = config.replace(crawl=replace(config.crawl, parse_workers=auto_parse_workers()))
    if recrawl and config.recrawl is None:
        raise ConfigError("recrawl", None, "a [recrawl] table in the config for --recrawl")
    if shared_only and not is_shared(config):
        raise ConfigError("state.frontier", config.state.frontier, "a redis:// URL for workers")
    progress = make_progress(quiet=quiet)
    metrics, server = None, None
    if address is not None:  # imported only here: a worker starts no faster than it must
        from crawler.crawl.metrics import CrawlMetrics
        from crawler.crawl.serve import MetricsServer

        metrics = CrawlMetrics()
        server = MetricsServer(metrics, host=address[0], port=address[1])
    crawler = Crawler(config, progress=progress, worker=worker, fresh=fresh,
                      recrawl=recrawl, metrics=metrics)  # validates the site  # fmt: skip
    try:
        stats = run_loop(_run(crawler, quiet, server))
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("crawl: aborted; run the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except AlreadyRunning as exc:
        print(f"crawl: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ConfigError:  # found as the crawl starts (no browser to render with): usage
        raise
    except (FrontierError, OSError, CrawlerError) as exc:
        print(f"crawl: fatal: {exc}", file=sys.stderr)
        return EXIT_FAILED
    out = config.output.dir
    if crawler.stopped:
        print(f"crawl: stopped ({_brief(stats)}); run the same command to resume",
              file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    if failure := stats.parser_failure:
        print(f"crawl: done, but {failure}: {_brief(stats)}; the first error's traceback "
              f"is above, every error is in {out / ERRORS_FILE}", file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    if not (quiet or crawler.already_finished):  # a finished crawl said so, through logging
        print(f"crawl: done: {_brief(stats)} in {out}", file=sys.stderr)
    return EXIT_OK


def _brief(stats: CrawlStats) -> str:
    return f"{stats.pages} pages, {stats.items} items, {stats.error_count} errors"


async def _run(crawler: Crawler, quiet: bool, server: MetricsServer | None) -> CrawlStats:
    """First Ctrl-C or SIGTERM: finish in-flight work and save. Second: abort now.
    ``server`` serves the crawl's figures while it runs."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    presses = 0

    def on_signal() -> None:
        nonlocal presses
        presses += 1
        if presses == 1:
            if not quiet:
                print("\ncrawl: stopping after the requests in flight (again to abort)",
                      file=sys.stderr)  # fmt: skip
            crawler.stop()
        elif task is not None:
            task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    try:
        async with contextlib.AsyncExitStack() as stack:
            if server is not None:
                await stack.enter_async_context(server)
                print(f"crawl: serving {server.url}metrics and {server.url}status.json",
                      file=sys.stderr, flush=True)  # fmt: skip
            return await crawler.run()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def run_workers(
    path: str,
    count: int,
    *,
    engine: str | None = None,
    max_pages: int | None = None,
    output: str | None = None,
    fresh: bool = False,
    quiet: bool = False,
) -> int:
    """``crawl CONFIG --workers N``: N ``crawl worker`` processes on this machine, one
    per core, sharing the crawl through its Redis frontier. Ctrl-C reaches them all
    (one process group); this process waits for them and reports the whole crawl."""
    config = configure(path, engine=engine, max_pages=max_pages, output=output)
    if not is_shared(config):
        raise ConfigError("state.frontier", config.state.frontier, "a redis:// URL for --workers")
    crawler = Crawler(config)  # validates the site before anything starts
    if fresh:
        try:
            run_loop(crawler.discard())
        except CrawlerError as exc:  # a worker still running, Redis unreachable
            print(f"crawl: {exc}", file=sys.stderr)
            return EXIT_FAILED
    command = [sys.executable, "-m", "crawler", "worker", path, "--quiet"]
    for flag, value in (("--engine", engine), ("--max-pages", max_pages), ("--output", output)):
        if value is not None:
            command += [flag, str(value)]
    workers: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, frame: object) -> None:  # SIGTERM reaches only this process
        for process in workers:
            process.send_signal(signum)

    interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the workers get Ctrl-C too
    terminate = signal.signal(signal.SIGTERM, forward)
    progress = make_progress(quiet=quiet)
    try:
        workers += [
            subprocess.Popen([*command, "--id", default_worker_name(index)])
            for index in range(count)
        ]
        stats = run_loop(_watch(config, workers, progress))
    finally:
        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, terminate)
    codes = [process.wait() for process in workers]
    if EXIT_FAILED in codes:
        return EXIT_FAILED
    if max(codes) == EXIT_OK and (failure := stats.parser_failure):
        print(f"crawl: done, but {failure}: {_brief(stats)}", file=sys.stderr)
        return EXIT_FAILED
    if max(codes) == EXIT_OK and not quiet:
        print(f"crawl: done: {_brief(stats)} in {config.output.dir}", file=sys.stderr)
    return max(codes)


async def _watch(
    config: Config, workers: list[subprocess.Popen[bytes]], progress: Progress
) -> CrawlStats:
    """The whole crawl's progress, read from Redis while the workers run, then its
    summary, as a crawl of one process shows its own."""
    started = time.monotonic()
    stats = CrawlStats()
    async with open_state(config) as frontier:
        while True:
            running = any(process.poll() is None for process in workers)
            try:
                stats = Checkpoint(await frontier.checkpoint()).stats()
                queue = await frontier.stats()
            except FrontierError:  # Redis away for a moment: the workers say so themselves
                pass
            else:
                progress.update(Snapshot(pages=stats.pages, queued=queue.pending,
                                         in_flight=queue.leased, errors=stats.error_count,
                                         elapsed=time.monotonic() - started))  # fmt: skip
            if not running:
                break
            await asyncio.sleep(WATCH_EVERY)
    progress.finish(stats)
    return stats
