"""``crawl CONFIG``: a crawl from the command line, with signals, resume and exit codes."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from crawler.config import Config, load_config
from crawler.crawl import FINISHED, STATS_FILE, Crawler
from crawler.errors import ConfigError, CrawlerError, FrontierError
from crawler.frontier import SQLITE_FILE, FrontierStats, open_frontier
from crawler.frontier.base import BaseFrontier
from crawler.loop import run
from crawler.progress import make_progress
from crawler.stats import CrawlStats
from crawler.workers import ERRORS_FILE, default_worker_name, is_shared

__all__ = ["run_crawl", "run_workers", "show_status"]

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
    """``--fresh``: remove exactly what a crawl writes in its folder, nothing else,
    and a shared crawl's state in Redis."""
    out = config.output.dir
    for name in (config.output.items, ERRORS_FILE, STATS_FILE, SQLITE_FILE,
                 SQLITE_FILE + "-wal", SQLITE_FILE + "-shm"):  # fmt: skip
        (out / name).unlink(missing_ok=True)
    for name in (config.output.items, ERRORS_FILE):  # the workers' own files
        stem, _, suffix = name.rpartition(".")
        for path in out.glob(f"{stem}-*.{suffix}"):
            path.unlink(missing_ok=True)
    shutil.rmtree(out / "pages", ignore_errors=True)
    if is_shared(config):
        run(_clear(config))


async def _clear(config: Config) -> None:
    async with _open_state(config) as frontier:
        await frontier.clear()


def _open_state(config: Config) -> BaseFrontier:
    """The crawl's frontier, opened to read or clear it, not to crawl: in Redis under
    a worker name of its own, which leases nothing."""
    state = config.state
    return open_frontier(
        state.frontier, config.output.dir, name=state.name,
        worker=f"status-{os.getpid()}", lease_timeout=state.lease_timeout,
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
) -> int:
    config = configure(path, engine=engine, max_pages=max_pages, output=output)
    if shared_only and not is_shared(config):
        raise ConfigError("state.frontier", config.state.frontier, "a redis:// URL for workers")
    # validates the site
    crawler = Crawler(config, progress=make_progress(quiet=quiet), worker=worker)
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
    Crawler(config)  # validates the site before anything starts
    if fresh:
        discard(config)
    command = [sys.executable, "-m", "crawler", "worker", path, "--quiet"]
    for flag, value in (("--engine", engine), ("--max-pages", max_pages), ("--output", output)):
        if value is not None:
            command += [flag, str(value)]
    workers: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, frame: object) -> None:  # SIGTERM reaches only this process
        for worker in workers:
            worker.send_signal(signum)

    interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the workers get Ctrl-C too
    terminate = signal.signal(signal.SIGTERM, forward)
    try:
        workers += [
            subprocess.Popen([*command, "--id", default_worker_name(index)])
            for index in range(count)
        ]
        codes = [worker.wait() for worker in workers]
    finally:
        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, terminate)
    if not quiet:
        show_status(path, output=output, as_json=False)
    if EXIT_FATAL in codes:
        return EXIT_FATAL
    return max(codes)


def show_status(path: str, *, output: str | None = None, as_json: bool) -> int:
    """``crawl status CONFIG``: the frontier and counts every worker has committed
    (Redis), or the last saved ``stats.json`` (a single-process crawl)."""
    config = configure(path, engine=None, max_pages=None, output=output)
    if is_shared(config):
        try:
            stats, frontier, finished = run(_shared_status(config))
        except FrontierError as exc:
            print(f"crawl: {exc}", file=sys.stderr)
            return EXIT_FATAL
        payload = {**stats.to_json(), "finished": finished, "frontier": {
            "seen": frontier.seen, "pending": frontier.pending,
            "leased": frontier.leased, "done": frontier.done,
        }}  # fmt: skip
    else:
        try:
            payload = json.loads((config.output.dir / STATS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            print(f"crawl: no saved progress in {config.output.dir}", file=sys.stderr)
            return EXIT_FATAL
    if as_json:
        print(json.dumps(payload))
    else:
        for key, value in payload.items():
            print(f"{key}: {json.dumps(value) if isinstance(value, dict) else value}")
    return EXIT_OK


async def _shared_status(config: Config) -> tuple[CrawlStats, FrontierStats, bool]:
    async with _open_state(config) as frontier:
        checkpoint = await frontier.checkpoint()
        return (CrawlStats.from_checkpoint(checkpoint), await frontier.stats(),
                bool(checkpoint.get(FINISHED)))  # fmt: skip
