"""Page-state storage at scale: a synthetic SQLite frontier of N pages with L outlinks each.

    .venv/bin/python benchmarks/frontier_size.py [--pages 100000] [--links 100]
        [--batch 256] [--random] [--query-share 0.2] [--at REV] [--keep FILE] [--json FILE]

The issue: *a 100,000-page crawl with 100 links a page stays under 200 MB on disk*.
A crawl in rounds (``[recrawl]``) keeps, for every page fetched, its status,
validators, digest, schedule and outlinks (``crawler/frontier/_pages.py``: references
to the outlinks' rows, sorted, delta-coded, zlib-compressed). This builds such a file
through the frontier's own API, as a crawl would, without a network:

1. ``SqliteFrontier.push`` of every page, 5,000 a batch: URLs such as
   ``https://shop.example/category-7/amber-willow-lamp-012345.html``, a share of them
   (``--query-share``) with a query (``?color=...&ref=...``), depth 1, kind ``page``,
   the category's first page as referrer;
2. ``lease(BATCH)`` until the queue is empty, each lease answered by one ``commit``
   of ``Batch(done=..., links=..., pages=[PageUpdate(...)])``, as the crawl's committer
   does (its links are every outlink of the batch's pages, as the crawl pushes them):
   ``PageState(200, ETag, Last-Modified, 16-byte digest, due in a day, round 1)``, and
   L outlinks to other pages. By default 20 links every page has (the site's
   navigation), 40 to neighbours in its category (nearby rows) and the rest to pages
   anywhere, at random; ``--random``: all at random, the worst case for the delta
   coding;
3. ``PRAGMA wal_checkpoint(TRUNCATE)`` from a second connection, then the size of the
   file and its ``-wal`` on disk, and the share of each table and index (``dbstat``);
4. round 2, as a scheduled round runs: the frontier's clock moved two days on, so
   every page is due, ``begin_round(every=False)``, then leases and commits until the
   queue is empty again, every page unchanged (``outlinks=None``: the stored ones stand,
   and those of them due and not yet fetched this round go back to pending); then the
   checkpoint and the size again.

It reports the size per page and per link, the build time, the lease and commit
times of each round (overall, and in its first, middle and last tenth, to show whether
they grow with the file or the round), and what the same outlinks would cost as URL
strings (newline-separated, raw and zlib-compressed one page at a time, as the
references are). Everything runs in one process on a temporary folder, removed
afterwards unless ``--keep``; with ``--at REV``, in a child process that imports REV's
``crawler`` from a worktree (``compare.worktrees``, removed afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path

import compare
import harness  # benchmarks/harness.py: run as a script, this folder is first on sys.path
import recrawl

from crawler.frontier import Batch, PageState, PageUpdate, SqliteFrontier
from crawler.models import Lineage, Request

CATEGORIES = 50
NAV_LINKS = 20  # links every page has
NEAR_LINKS = 40  # links to pages of the same category
PUSH_CHUNK = 5000
COMMAND, AT, AT_PATH = "FRONTIER_SIZE_COMMAND", "FRONTIER_SIZE_AT", "FRONTIER_SIZE_AT_PATH"
DAY = 86400.0
SHOP = harness.load_site_module()  # the benchmark shop's words, for product slugs
COLORS = ("black", "blue", "green", "grey", "navy", "red", "white")
REFS = ("home-featured", "related", "search", "category-top", "newsletter", "recently-viewed")


@dataclass
class Timings:
    """Seconds per call of one kind, in call order."""

    calls: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.calls.append(seconds)

    @property
    def total(self) -> float:
        return sum(self.calls)

    def tenths(self) -> str:
        """Median ms per call in the first, the middle and the last tenth of the calls."""
        n = max(len(self.calls) // 10, 1)
        middle = max(len(self.calls) // 2 - n // 2, 0)
        parts = (self.calls[:n], self.calls[middle : middle + n], self.calls[-n:])
        return " → ".join(f"{1000 * statistics.median(p):.0f}" for p in parts if p)


@dataclass
class Round:
    """Leases and commits until the queue is empty."""

    pages: int = 0
    seconds: float = 0.0
    lease: Timings = field(default_factory=Timings)
    commit: Timings = field(default_factory=Timings)
    file_bytes: int = 0  # the file and its -wal after wal_checkpoint(TRUNCATE)
    wal_bytes_before: int = 0  # the -wal file when the round ended


@dataclass
class Report:
    pages: int
    links: int
    batch: int
    random_links: bool
    query_share: float
    url_chars: dict[str, float] = field(default_factory=dict)  # mean, min, max
    push_s: float = 0.0
    build: Round = field(default_factory=Round)  # round 1
    begin_round_s: float = 0.0
    round2: Round = field(default_factory=Round)  # every page due, none changed
    objects: dict[str, int] = field(default_factory=dict)  # dbstat: bytes per table, index
    columns: dict[str, int] = field(default_factory=dict)  # bytes of some columns' values
    as_strings: dict[str, int] = field(default_factory=dict)  # the outlinks as URL text


def page_urls(pages: int, query_share: float, seed: int = 7) -> list[str]:
    """One URL per page, category by category (so a category's pages are nearby rows)."""
    rng = random.Random(seed)
    per = -(-pages // CATEGORIES)
    urls = []
    for i in range(pages):
        url = (f"https://shop.example/category-{i // per}/"
               f"{rng.choice(SHOP._WORDS)}-{rng.choice(SHOP._WORDS)}-{rng.choice(SHOP._NOUNS)}"
               f"-{i:06d}.html")  # fmt: skip
        if rng.random() < query_share:
            url += f"?color={rng.choice(COLORS)}&ref={rng.choice(REFS)}"  # sorted: canonical
        urls.append(url)
    return urls


def outlinks(i: int, pages: int, links: int, random_links: bool, seed: int = 11) -> list[int]:
    """The pages page I links to: LINKS others, distinct (SEED: the random ones)."""
    rng = random.Random(seed * 1_000_003 + i)
    chosen: dict[int, None] = {}
    if not random_links:
        per = -(-pages // CATEGORIES)
        first, end = i // per * per, min(pages, i // per * per + per)  # I's category
        nav = (k * per for k in range(min(NAV_LINKS, CATEGORIES)))  # each category's first
        chosen.update(dict.fromkeys(j for j in nav if j != i))
        start = max(first, min(i - NEAR_LINKS // 2, end - NEAR_LINKS - 1))
        near = range(start, min(end, start + NEAR_LINKS + 1))
        chosen.update(dict.fromkeys(j for j in near if j != i))
    target = min(links, pages - 1)
    while len(chosen) < target:
        j = rng.randrange(pages)
        if j != i:
            chosen[j] = None
    return list(chosen)[:target]


def state(rng: random.Random, now: float, round: int = 1) -> PageState:
    """What a 200 with nginx's validators leaves: ETag, Last-Modified, digest, due in a day."""
    modified = now - rng.randrange(int(DAY) * 365)
    etag = f'"{int(modified):x}-{rng.randrange(4000, 60000):x}"'
    return PageState(200, etag, formatdate(modified, usegmt=True), rng.randbytes(16), now,
                     DAY, now + DAY, None, round)  # fmt: skip


def strings_cost(urls: list[str], args: argparse.Namespace) -> dict[str, int]:
    """The outlinks as newline-separated URL text: raw, and zlib-compressed per page."""
    raw = packed = 0
    for i in range(args.pages):
        text = "\n".join(urls[j] for j in outlinks(i, args.pages, args.links, args.random))
        raw += len(text) + 1
        packed += len(zlib.compress(text.encode()))
    return {"raw": raw, "zlib": packed}


def disk(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def checkpoint(path: Path, done: Round) -> sqlite3.Connection:
    """Checkpoint the WAL into the file (the frontier's connection is idle) and record
    the sizes in DONE; the connection, for more questions."""
    wal = path.with_name(path.name + "-wal")
    done.wal_bytes_before = disk(wal)
    db = sqlite3.connect(path)
    busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy:
        raise RuntimeError("wal_checkpoint(TRUNCATE) was blocked")
    done.file_bytes = disk(path) + disk(wal)
    return db


def measure_file(path: Path, report: Report) -> None:
    """The sizes after round 1, and the share of each table, index and column."""
    with contextlib.closing(checkpoint(path, report.build)) as db:
        report.objects = dict(db.execute(
            "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
        ).fetchall())  # fmt: skip
        report.columns = dict(zip(
            ("requests.url", "requests.referrer", "pages.outlinks", "pages.etag",
             "pages.last_modified", "pages.digest"),
            db.execute(
                "SELECT (SELECT SUM(length(url)) FROM requests), "
                "(SELECT SUM(length(referrer)) FROM requests), "
                "(SELECT SUM(length(outlinks)) FROM pages), (SELECT SUM(length(etag)) FROM pages), "
                "(SELECT SUM(length(last_modified)) FROM pages), "
                "(SELECT SUM(length(digest)) FROM pages)"
            ).fetchone(), strict=True,
        ))  # fmt: skip


async def lease_commit(
    frontier: SqliteFrontier, batch: int, answer: Callable[[Request], PageUpdate]
) -> tuple[float, float, int]:
    """One lease of BATCH and its commit, ANSWER(request) giving each leased page's
    ``PageUpdate``; (lease seconds, commit seconds, pages)."""
    started = time.perf_counter()
    lease = await frontier.lease(batch)
    leased = time.perf_counter()
    updates = [answer(request) for request in lease.requests]
    links = [link for update in updates for link in update.outlinks or ()]
    ready = time.perf_counter()
    await frontier.commit(Batch(done=lease.requests, links=links, pages=updates))
    return leased - started, time.perf_counter() - ready, len(lease.requests)


async def run_round(
    frontier: SqliteFrontier, batch: int, answer: Callable[[Request], PageUpdate], done: Round
) -> None:
    """Lease and commit until the queue is empty, timing each call into DONE."""
    started = time.perf_counter()
    while True:
        lease_s, commit_s, n = await lease_commit(frontier, batch, answer)
        if not n:
            break
        done.lease.add(lease_s)
        done.commit.add(commit_s)
        done.pages += n
        if done.pages % (batch * 40) == 0:
            print(f"  {done.pages:,} pages, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    done.seconds = time.perf_counter() - started


def chunks(items: list[Request], size: int) -> Iterator[list[Request]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def build(path: Path, args: argparse.Namespace, report: Report) -> None:
    urls = page_urls(args.pages, args.query_share)
    lengths = [len(url) for url in urls]
    report.url_chars = {"mean": statistics.fmean(lengths), "min": min(lengths),
                        "max": max(lengths)}  # fmt: skip
    per = -(-args.pages // CATEGORIES)
    requests = [Request(url, lineage=Lineage(1, "page", urls[i // per * per]))
                for i, url in enumerate(urls)]  # fmt: skip
    index = {url: i for i, url in enumerate(urls)}
    rng = random.Random(3)

    later = [0.0]  # seconds the frontier's clock is ahead: round 2 comes two days on

    def clock() -> float:
        return time.time() + later[0]

    def page(request: Request, round: int = 1, changed: bool = True) -> PageUpdate:
        i = index[request.url]
        links = outlinks(i, args.pages, args.links, args.random, seed=10 + round)
        new = [requests[j] for j in links] if changed else None
        return PageUpdate(request, state(rng, clock(), round), new)

    async with SqliteFrontier(path, clock=clock) as frontier:
        started = time.perf_counter()
        for chunk in chunks(requests, PUSH_CHUNK):
            await frontier.push(chunk)
        report.push_s = time.perf_counter() - started
        print(f"pushed {args.pages:,} pages in {report.push_s:.1f} s", file=sys.stderr)
        await run_round(frontier, args.batch, page, report.build)
        measure_file(path, report)
        later[0] = 2 * DAY
        started = time.perf_counter()
        await frontier.begin_round(clock(), every=False, checkpoint={"round": 2}, reset=())
        report.begin_round_s = time.perf_counter() - started
        await run_round(frontier, args.batch, lambda r: page(r, 2, False), report.round2)
        checkpoint(path, report.round2).close()
    report.as_strings = strings_cost(urls, args)


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def round_rows(name: str, done: Round) -> list[str]:
    lease, commit = done.lease, done.commit
    return [
        f"| {name}: leases and commits | {done.seconds:.1f} s "
        f"({done.pages / done.seconds:,.0f} pages/s) |",
        f"| ... lease: total, pages/s, ms per lease (first, middle, last tenth) "
        f"| {lease.total:.1f} s, {done.pages / lease.total:,.0f}, {lease.tenths()} |",
        f"| ... commit: total, pages/s, ms per commit (first, middle, last tenth) "
        f"| {commit.total:.1f} s, {done.pages / commit.total:,.0f}, {commit.tenths()} |",
        f"| ... file after it (with -wal, checkpointed); -wal before the checkpoint "
        f"| {mib(done.file_bytes)}; {mib(done.wal_bytes_before)} |",
    ]


def text(report: Report, header: dict[str, str]) -> str:
    pages, links = report.pages, report.pages * report.links
    size = report.build.file_bytes
    strings = report.as_strings
    blob = report.columns.get("pages.outlinks", 0)
    mix = "all at random" if report.random_links else (
        f"{NAV_LINKS} site-wide, {NEAR_LINKS} in the category, the rest at random")  # fmt: skip
    lines = [
        f"- Date: {header['date']}",
        f"- Machine: {header['machine']}",
        f"- Versions: SQLite {sqlite3.sqlite_version}",
        f"- Crawler: {header['crawler']}",
        f"- Command: `{header['command']}`",
        f"- {pages:,} pages, {report.links} outlinks each ({mix}), {links:,} links; "
        f"commits of {report.batch} pages; URLs of {report.url_chars['mean']:.0f} characters "
        f"on average ({report.url_chars['min']:.0f}-{report.url_chars['max']:.0f}), "
        f"{report.query_share:.0%} with a query",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| file on disk after round 1 and `wal_checkpoint(TRUNCATE)` (with its -wal) "
        f"| **{mib(size)}** ({size:,} B) |",
        f"| bytes per page | {size / pages:,.0f} |",
        f"| bytes per link (the whole file ÷ links) | {size / links:.1f} |",
        f"| outlinks column: bytes per page, per link | {blob / pages:,.0f}, {blob / links:.2f} |",
        f"| the same outlinks as URL text: raw, per page | {mib(strings['raw'])}, "
        f"{strings['raw'] / pages:,.0f} B |",
        f"| ... zlib-compressed page by page, per page | {mib(strings['zlib'])}, "
        f"{strings['zlib'] / pages:,.0f} B |",
        f"| push of {pages:,} pages | {report.push_s:.1f} s |",
        *round_rows("round 1 (the build: new pages, 100 outlinks each)", report.build),
        f"| `begin_round`, every page due | {report.begin_round_s:.2f} s |",
        *round_rows("round 2 (every page unchanged)", report.round2),
    ]
    lines += ["", "| table or index | size |", "|---|---:|"]
    lines += [f"| `{name}` | {mib(size)} |" for name, size in report.objects.items()]
    return "\n".join(lines)


def at_revision(args: argparse.Namespace, command: str) -> int:
    """This script again, in a child whose ``crawler`` is REV's, from a worktree that
    ``compare.worktrees`` makes (and removes, also when the child fails or is stopped)."""
    child = [sys.executable, __file__, "--pages", str(args.pages), "--links", str(args.links),
             "--batch", str(args.batch), "--query-share", str(args.query_share),
             *(["--random"] if args.random else [])]  # fmt: skip
    for option, path in (("--keep", args.keep), ("--json", args.json)):
        if path is not None:  # the child runs in the worktree
            child += [option, str(path.resolve())]
    harness.exit_on_sigterm()  # subprocess.run kills the child as SystemExit passes
    with compare.worktrees([args.at]) as revs:
        (rev,) = revs.values()
        env = {**rev.env(), COMMAND: command, AT: recrawl.crawler_line(rev), AT_PATH: str(rev.path)}
        return subprocess.run(child, env=env, cwd=rev.path, check=False).returncode


def crawler_used() -> str:
    """Which frontier this process imported: REV's worktree (``--at``) or this checkout."""
    checkout = os.environ.get(AT_PATH)
    if checkout is None:
        return recrawl.crawler_line(None, ("crawler/frontier", "crawler/urls.py"))
    imported = Path(sys.modules[SqliteFrontier.__module__].__file__ or "")
    if not imported.is_relative_to(checkout):
        raise RuntimeError(f"the frontier came from {imported}, not from {checkout}")
    return os.environ[AT]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=100_000, help="pages (default 100000)")
    parser.add_argument("--links", type=int, default=100, help="outlinks a page (default 100)")
    parser.add_argument("--batch", type=int, default=256, help="pages a commit (default 256)")
    parser.add_argument("--random", action="store_true", help="every outlink at random")
    parser.add_argument("--query-share", type=float, default=0.2,
                        help="share of the URLs with a query string (default 0.2)")  # fmt: skip
    parser.add_argument("--at", metavar="REV",
                        help="use the frontier of this commit (a git worktree under /tmp, as "
                        "compare.py --at) instead of the working tree's")  # fmt: skip
    parser.add_argument("--keep", type=Path, help="keep the frontier file here")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    args = parser.parse_args(argv)
    minimum = NAV_LINKS + NEAR_LINKS + 1 if not args.random else 2
    if args.pages < max(minimum, CATEGORIES) or not 1 <= args.links < args.pages:
        parser.error(f"--pages at least {max(minimum, CATEGORIES)}, --links from 1 to pages - 1")
    command = os.environ.get(COMMAND, shlex.join([compare._relative(sys.executable), *sys.argv]))
    if args.at:
        return at_revision(args, command)
    header = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": harness.machine(),
        "command": command,
        "crawler": crawler_used(),
    }
    report = Report(args.pages, args.links, args.batch, args.random, args.query_share)
    with tempfile.TemporaryDirectory(prefix="bench-frontier-") as work:
        path = Path(work) / "frontier.sqlite3"
        asyncio.run(build(path, args, report))
        if args.keep is not None:
            shutil.move(path, args.keep)
    print(text(report, header))
    if args.json is not None:
        args.json.write_text(json.dumps({**header, **asdict(report)}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
