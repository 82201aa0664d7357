"""``crawl CONFIG``: a crawl from the command line, with signals, resume and exit codes."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import signal
import sys
from pathlib import Path

from crawler.config import Config, load_config
from crawler.crawl import ERRORS_FILE, STATS_FILE, Crawler
from crawler.errors import CrawlerError, FrontierError
from crawler.frontier import SQLITE_FILE
from crawler.loop import run
from crawler.progress import make_progress
from crawler.stats import CrawlStats

__all__ = ["run_crawl"]

EXIT_OK, EXIT_FATAL, EXIT_INTERRUPTED = 0, 1, 130


def configure(
    path: str, *, engine: str | None, max_pages: int | None, output: str | None
) -> Config:
    config = load_config(path)
    if engine:
        config = config.replace(fetch=dataclasses.replace(config.fetch, engine=engine))
    if max_pages is not None:
        config = config.replace(crawl=dataclasses.replace(config.crawl, max_pages=max_pages))
    if output:
        config = config.replace(output=dataclasses.replace(config.output, dir=Path(output)))
    return config


def discard(config: Config) -> None:
    """``--fresh``: remove exactly what a crawl writes in its folder, nothing else."""
    out = config.output.dir
    for name in (config.output.items, ERRORS_FILE, STATS_FILE, SQLITE_FILE,
                 SQLITE_FILE + "-wal", SQLITE_FILE + "-shm"):  # fmt: skip
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "pages", ignore_errors=True)


def run_crawl(
    path: str,
    *,
    engine: str | None = None,
    max_pages: int | None = None,
    output: str | None = None,
    fresh: bool = False,
    quiet: bool = False,
) -> int:
    config = configure(path, engine=engine, max_pages=max_pages, output=output)
    crawler = Crawler(config, progress=make_progress(quiet=quiet))  # validates the site
    if fresh:
        discard(config)
    try:
        stats = run(_run(crawler, quiet))
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("crawl: aborted; run the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (FrontierError, OSError, CrawlerError) as exc:
        print(f"crawl: fatal: {exc}", file=sys.stderr)
        return EXIT_FATAL
    out = config.output.dir
    if crawler.already_finished:
        print(f"crawl: already finished ({_brief(stats)} in {out}); use --fresh to start over",
              file=sys.stderr)  # fmt: skip
    elif crawler.stopped:
        print(f"crawl: stopped ({_brief(stats)}); run the same command to resume",
              file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    elif not quiet:
        print(f"crawl: done: {_brief(stats)} in {out}", file=sys.stderr)
    return EXIT_OK


def _brief(stats: CrawlStats) -> str:
    return f"{stats.pages} pages, {stats.items} items, {stats.error_count} errors"


async def _run(crawler: Crawler, quiet: bool) -> CrawlStats:
    """First Ctrl-C or SIGTERM: finish in-flight work and save. Second: abort now."""
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
        return await crawler.run()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
