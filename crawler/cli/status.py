"""``crawl status CONFIG``: what a crawl has committed so far. It only reads, so it
takes no lock and can run beside the crawl, a crawl of one process too."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from crawler.cli.exits import EXIT_FAILED, EXIT_OK
from crawler.cli.loop import run
from crawler.cli.options import configure
from crawler.config import Config
from crawler.crawl import open_state
from crawler.crawl.checkpoint import Checkpoint
from crawler.crawl.files import CrawlFiles, is_shared
from crawler.crawl.progress import summary_text
from crawler.crawl.stats import CrawlStats
from crawler.errors import FrontierError
from crawler.frontier import SQLITE_FILE, FrontierStats, read_store

__all__ = ["show_status", "status"]


def status(args: argparse.Namespace) -> int:
    return show_status(configure(args.config, output=args.output), as_json=args.json)


def show_status(config: Config, *, as_json: bool) -> int:
    """The frontier and the counts committed so far: every worker's (Redis), or the
    crawl's own, read from its SQLite store without writing to it (so while it runs
    too); a crawl kept in memory, or whose store is gone, has only the
    ``stats.json`` its last run saved."""
    store = config.output.dir / SQLITE_FILE
    if is_shared(config) or (config.state.frontier == "sqlite" and store.is_file()):
        try:
            if is_shared(config):
                stats, frontier, finished = run(_shared_status(config))
            else:
                stats, frontier, finished = _store_status(store)
        except FrontierError as exc:
            print(f"crawl: {exc}", file=sys.stderr)
            return EXIT_FAILED
        payload = {**stats.to_json(), "finished": finished, "frontier": {
            "seen": frontier.seen, "pending": frontier.pending,
            "leased": frontier.leased, "done": frontier.done,
        }}  # fmt: skip
    else:
        path = CrawlFiles.of(config).stats
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            print(f"crawl: no saved progress in {config.output.dir}", file=sys.stderr)
            return EXIT_FAILED
    if as_json:
        print(json.dumps(payload))
        return EXIT_OK
    print(summary_text(CrawlStats.from_json(payload)))
    print(f"{'finished':>13}: {'yes' if payload.get('finished') else 'no'}")
    queue = payload.get("frontier")
    if isinstance(queue, dict):
        print(f"{'frontier':>13}: " + ", ".join(f"{k} {v:,}" for k, v in queue.items()))
    if failure := payload.get("parser_failure"):
        print(f"{'parser':>13}: {failure}")
    return EXIT_OK


def _store_status(store: Path) -> tuple[CrawlStats, FrontierStats, bool]:
    values, frontier = read_store(store)
    checkpoint = Checkpoint(values)
    return checkpoint.stats(), frontier, checkpoint.finished


async def _shared_status(config: Config) -> tuple[CrawlStats, FrontierStats, bool]:
    async with open_state(config) as frontier:
        checkpoint = Checkpoint(await frontier.checkpoint())
        return checkpoint.stats(), await frontier.stats(), checkpoint.finished
