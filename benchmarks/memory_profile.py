"""Where does a crawl's memory go? tracemalloc over one in-process crawl.

    .venv/bin/python benchmarks/memory_profile.py --pages 20000 [--top 15]
    .venv/bin/python benchmarks/memory_profile.py --pages 20000 --no-trace --canonicalize-cache 1024

Starts the generated shop (``benchmarks/site.py``) in its own process, runs the
same crawl as ``benchmarks/memory.py`` inside this process with tracemalloc on,
and snapshots the Python heap when the crawl is about 90 % done (still running,
every per-crawl object alive). Prints the largest allocation sites and the size
of the process-wide caches that outlive a page. Run it for two sizes and compare:
what grows tenfold with ten times the pages is what breaks memory flatness.
``--no-trace`` only reports this process's peak RSS (nothing else runs in it), and
``--canonicalize-cache N`` swaps ``crawler.urls.canonicalize`` for one with an
``lru_cache`` of N entries, in this process only: an A/B test of that cache.
(tracemalloc sees Python allocations only; SQLite's page cache and libxml2 are not
in it, so compare the totals with the RSS that memory.py reports.)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import shutil
import sys
import tempfile
import tracemalloc
from functools import lru_cache
from pathlib import Path

import memory  # benchmarks/memory.py, next to this file

import crawler.urls
from crawler import Crawler


async def crawl(
    config: Path, expected: int, share: float, trace: bool
) -> tracemalloc.Snapshot | None:
    crawler = Crawler(config)
    task = asyncio.create_task(crawler.run())
    snapshot = None
    while not task.done():
        await asyncio.sleep(0.2)
        run = crawler._run  # the run in progress: its counts, as the progress line reads them
        if trace and snapshot is None and run is not None and run.stats.pages >= expected * share:
            gc.collect()
            snapshot = tracemalloc.take_snapshot()
    await task
    return snapshot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=20000)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--at", type=float, default=0.9, help="share of pages at the snapshot")
    parser.add_argument("--no-trace", action="store_true", help="peak RSS only, no tracemalloc")
    parser.add_argument("--canonicalize-cache", type=int, help="lru_cache size of canonicalize")
    args = parser.parse_args(argv)

    site_module = memory.load_site_module()
    processes = memory.Processes()
    work = Path(tempfile.mkdtemp(prefix="bench-memory-profile-"))
    try:
        _site, port = memory.start_site(processes, args.pages, work)
        expected = len(site_module.expected_paths(args.pages))
        if args.canonicalize_cache is not None:
            uncached = crawler.urls.canonicalize.__wrapped__
            crawler.urls.canonicalize = lru_cache(args.canonicalize_cache)(uncached)
        canonicalize = crawler.urls.canonicalize
        canonicalize.cache_clear()
        if not args.no_trace:
            tracemalloc.start(1)
        config = memory.write_config(work, port)
        snapshot = asyncio.run(crawl(config, expected, args.at, not args.no_trace))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"pages {args.pages:,} ({expected:,} to parse); peak RSS of this process "
              f"{peak:.1f} MiB{'' if args.no_trace else ' (with tracemalloc)'}")  # fmt: skip
        print(f"canonicalize cache: {canonicalize.cache_info()}")
        if args.no_trace:
            return 0
        if snapshot is None:
            print("the crawl ended before the snapshot", file=sys.stderr)
            return 1
        total = sum(stat.size for stat in snapshot.statistics("filename"))
        print(f"traced Python heap at {args.at:.0%} of the pages: {total / 2**20:.1f} MiB")
        print(f"\ntop {args.top} allocation sites:")
        for stat in snapshot.statistics("lineno")[: args.top]:
            frame = stat.traceback[0]
            where = frame.filename.replace(str(memory.ROOT) + "/", "")
            site_packages = where.find("site-packages/")
            if site_packages >= 0:
                where = where[site_packages + len("site-packages/") :]
            print(f"{stat.size / 2**20:8.2f} MiB {stat.count:>8,} blocks  {where}:{frame.lineno}")
        return 0
    finally:
        processes.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
