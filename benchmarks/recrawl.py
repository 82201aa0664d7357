"""A crawl in rounds: round 2 (revalidation) against round 1, on the nginx-served shop.

    .venv/bin/python benchmarks/recrawl.py [--pages 20000] [--repeats 3] [--change 0.1]
        [--at REV] [--json FILE] [--keep] [--timeout 600]

``[recrawl]`` makes a finished crawl's next ``crawl CONFIG`` a new round: every due page
is asked for with ``If-None-Match`` / ``If-Modified-Since``, and a 304 (or a 200 with
the stored digest) is *unchanged* and not parsed. This measures what round 2 costs
against round 1 when nothing changed, and when a share of the pages did.

The site, nginx and the crawl's settings are ``compare.py``'s (``compare.prepare``,
its ``crawl-aiohttp-shop`` config: aiohttp, ``site = "shop"``, robots obeyed, 64 in
flight, no rate limit, SQLite frontier) plus ``[recrawl] after = "0s"``. nginx serves
the pages as static files, so it sends ``ETag`` and ``Last-Modified`` and answers a
conditional request with 304 itself. Each repetition of each variant, in a fresh
folder, runs ``python -m crawler CONFIG --quiet`` twice under ``workers.launch`` (wall
time, CPU and peak RSS as ``harness.launch`` measures them, and the CPU of the event
loop and of the other threads, sampled), each round against a freshly started nginx:

- ``unchanged``: round 2 right after round 1;
- ``changed-P%``: before round 2, P % of the pages (every (100/P)th of
  ``expected_paths``) are rewritten with another body (a paragraph added before
  ``</body>``: another size and mtime, so another ETag), and put back afterwards.

Read per round: ``stats.json`` (pages, body bytes, changes), nginx's access log (each
page's status) and a second access log of ``$bytes_sent`` (bytes on the wire, headers
included, every request), and the size of ``frontier.sqlite3`` (with ``-wal`` and
``-shm``, if any) once the crawl has exited. Checks: round 1 is ``compare.check``'s
(every expected page found once, fetched once, nothing under ``/private/``, no other
host) and ``changes`` all ``new``; round 2 requests every expected page once, gets
304 for exactly the unchanged ones and 200 for the changed ones, writes an item for
exactly the changed ones, and counts them in ``changes``. Both rounds exit 0 without
errors. ``--at REV`` crawls with that commit's ``crawler`` and ``sites``, from a worktree
(``compare.worktrees``, as ``compare.py --at``). It prints medians and the round 2 /
round 1 ratios; exit status 1 if a check failed. Every process is stopped by its pid
on success, failure, timeout and Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import compare
import harness  # benchmarks/harness.py: run as a script, this folder is first on sys.path
import nginx
import workers

from crawler.frontier import SQLITE_FILE
from crawler.urls import canonicalize

VARIANT = "crawl-aiohttp-shop"  # compare.py's crawl, whose config this one extends
RECRAWL = '\n[recrawl]\nafter = "0s"\n'
SENT_LOG = "sent.log"  # nginx: $bytes_sent of every request
LOGS = ("access.log", "error.log", SENT_LOG)
ADDED = b'<p class="updated">Revised for the next round.</p></body>'


@dataclass
class Round(compare.Run):
    """One round's crawl, measured as ``compare.Run`` is, with what a round adds."""

    round: int = 0
    pages: int = 0  # stats.json: responses received
    bytes: int = 0  # stats.json: body bytes received
    changes: dict[str, int] = field(default_factory=dict)  # stats.json
    statuses: dict[str, int] = field(default_factory=dict)  # nginx: expected pages, by status
    sent_bytes: int = 0  # nginx: $bytes_sent of every request, headers included
    frontier_bytes: int = 0  # frontier.sqlite3 (with -wal and -shm) after the crawl exited
    loop_cpu_s: float = 0.0  # the main thread (the event loop), sampled
    threads_cpu_s: float = 0.0  # every other thread (parsing, SQLite's, to_thread's), sampled


@dataclass
class Pair:
    """Round 1 and round 2 of one crawl folder."""

    share: float  # of the pages changed between the rounds
    repetition: int
    changed: int = 0  # pages rewritten
    rounds: list[Round] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Processes(workers.Processes):
    """With ``rev`` (``--at``), the crawl's launcher starts in that revision's worktree
    with its ``PYTHONPATH`` (``compare.Rev.env``), so the crawl imports that revision's
    ``crawler`` and ``sites``; nginx, started by path, is not affected."""

    rev: compare.Rev | None = None

    def start(self, args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        if self.rev is not None and args[0] == sys.executable:
            kwargs.update(cwd=self.rev.path, env=self.rev.env())
        return super().start(args, **kwargs)


def label(share: float) -> str:
    return f"changed-{share:.0%}" if share else "unchanged"


# setup -------------------------------------------------------------------------------------


def log_sent_bytes(config: Path) -> None:
    """A second access log in nginx.conf (``nginx.write_config``'s): ``$bytes_sent``,
    what a 304 saves on the wire, headers included."""
    text = config.read_text(encoding="utf-8")
    first = "    access_log "
    sent = (f"    log_format sent '$bytes_sent';\n"
            f"    access_log {config.parent / SENT_LOG} sent buffer=256k flush=10s;\n")  # fmt: skip
    if first not in text:
        raise RuntimeError(f"{config} has no access_log line")
    config.write_text(text.replace(first, sent + first, 1), encoding="utf-8")


def page_file(root: Path, path: str) -> Path:
    """The file nginx serves for an expected path (``ShopSite.write_static``'s layout)."""
    if path.startswith("/search?q="):
        return root / "search" / f"{path.split('=', 1)[1].split('&', 1)[0]}.html"
    assert path.startswith(("/p/", "/c/", "/info/")), path
    return root / path.lstrip("/")


@contextmanager
def changed_pages(root: Path, paths: list[str]) -> Iterator[None]:
    """PATHS rewritten with another body (another size and mtime: another ETag) for
    the block, then put back: the next repetition's round 1 starts from a fresh folder."""
    originals = {path: page_file(root, path).read_bytes() for path in paths}
    try:
        for path, body in originals.items():
            page_file(root, path).write_bytes(body.replace(b"</body>", ADDED, 1))
        yield
    finally:
        for path, body in originals.items():
            page_file(root, path).write_bytes(body)


def to_change(pages: int, share: float) -> list[str]:
    """Every (1/SHARE)th expected path, the home page apart: product and search pages."""
    if not share:
        return []
    paths = harness.load_site_module().expected_paths(pages)[1:]
    step = max(round(1 / share), 1)
    return paths[step // 2 :: step]


def crawler_line(rev: compare.Rev | None, paths: tuple[str, ...] = ("crawler", "sites")) -> str:
    """Which crawler ran: a commit's worktree, or the working tree (at HEAD, with the
    number of uncommitted changes under PATHS, if any)."""
    if rev is not None:
        return f"`{rev.short}` ({rev.subject[:60]}...), from a worktree of that commit"
    head = compare._git("rev-parse", "--short=7", "HEAD")
    changed = len(compare._git("status", "--porcelain", "--", *paths).splitlines())
    where = " and ".join(paths)
    return f"the working tree at `{head}`" + (
        f", with {changed} uncommitted changes under {where}"
        if changed
        else f", {where} as committed"
    )


# one round ---------------------------------------------------------------------------------


def crawl_round(
    processes: Processes, bench: compare.Bench, folder: Path, number: int,
    repetition: int, args: list[str],
) -> tuple[Round, harness.Usage]:  # fmt: skip
    """Round NUMBER of the crawl in FOLDER, against a freshly started nginx whose logs
    are then this round's alone, moved into FOLDER."""
    run = Round(VARIANT, repetition, round=number, load1=os.getloadavg()[0])
    server = nginx.start(processes, bench.nginx_binary, bench.config, bench.port)
    try:
        usage, cpu = workers.launch(processes, args, folder / f"run-{number}.log", bench.timeout)
        run.nginx_cpu_s = nginx.workers_cpu_s(server.pid)
    finally:
        nginx.stop(processes, server)
    for name in LOGS:
        log = bench.config.parent / name
        if log.exists():
            shutil.move(log, folder / name)
    run.exit_code, run.wall_s, run.cpu_s = usage.exit_code, usage.wall_s, usage.cpu_s
    run.user_s, run.sys_s, run.peak_rss_kib = usage.user_s, usage.sys_s, usage.peak_rss_kib
    run.rss_main, run.processes = usage.max_rss_kib, usage.tree_processes
    run.loop_cpu_s, run.threads_cpu_s = cpu.seconds({cpu.pid}, True), cpu.seconds({cpu.pid}, False)
    out = folder / "out"
    run.frontier_bytes = sum(
        path.stat().st_size for path in out.glob(SQLITE_FILE + "*") if path.is_file()
    )
    sent = folder / SENT_LOG
    if sent.exists():
        run.sent_bytes = sum(int(line) for line in sent.read_text().split())
    stats = out / "stats.json"
    run.stats = json.loads(stats.read_text(encoding="utf-8")) if stats.exists() else {}
    run.pages, run.bytes = run.stats.get("pages", 0), run.stats.get("bytes", 0)
    run.changes = run.stats.get("changes", {})
    if run.stats.get("round") != number:
        run.problems.append(f"stats.json says round {run.stats.get('round')}, not {number}")
    if run.stats.get("errors"):
        run.problems.append(f"errors {run.stats['errors']}")
    return run, usage


def answers(bench: compare.Bench, folder: Path) -> tuple[dict[str, list[int]], list[str]]:
    """nginx's answers to each expected page (canonical URL -> statuses), and every
    other request but robots.txt and the sitemap."""
    found: dict[str, list[int]] = {}
    other: list[str] = []
    for host, status, uri in nginx.read_log(folder / "access.log"):
        url = canonicalize(bench.base + uri)
        if host == nginx.HOST and url in bench.expected:
            found.setdefault(url, []).append(status)
        elif host != nginx.HOST or uri not in ("/robots.txt", "/sitemap.xml"):
            other.append(f"{host} {status} {uri}")
    return found, other


def count_statuses(run: Round, found: dict[str, list[int]]) -> None:
    run.statuses = dict(Counter(str(status) for got in found.values() for status in got))


def check_first(run: Round, bench: compare.Bench, folder: Path, usage: harness.Usage) -> None:
    """``compare.check``'s checks, and every page new."""
    compare.check(run, bench, folder, usage)
    count_statuses(run, answers(bench, folder)[0])
    if run.changes != {"new": len(bench.expected)}:
        run.problems.append(f"changes {run.changes}, not {len(bench.expected)} new")


def check_second(
    run: Round, bench: compare.Bench, folder: Path, usage: harness.Usage, changed: set[str]
) -> None:
    """Every expected page asked for once: 200 and an item for the CHANGED (canonical
    URLs), 304 and no item for the rest; nothing else fetched, no error."""
    if usage.timed_out or run.exit_code != 0:
        run.problems.append(f"exited with {run.exit_code} (timed out: {usage.timed_out})")
    found, other = answers(bench, folder)
    count_statuses(run, found)
    run.page_requests = sum(map(len, found.values()))
    wrong = [f"{url} {found.get(url)}" for url in sorted(bench.expected)
             if found.get(url) != [200 if url in changed else 304]]  # fmt: skip
    items = [json.loads(line) for line in (folder / "out/items.jsonl").read_text().splitlines()]
    items_of = Counter(canonicalize(item["url"]) for item in items if item.get("round") == 2)
    run.found, run.records = len(items_of), sum(items_of.values())
    expected = {"unchanged": len(bench.expected) - len(changed), "changed": len(changed)}
    for what, bad in (
        ("pages not answered once, 200 if changed and 304 if not", wrong),
        ("other requests", other),
        ("round-2 items not of exactly the changed pages", sorted(items_of.keys() ^ changed)),
        ("pages with two round-2 items", sorted(u for u, n in items_of.items() if n > 1)),
    ):
        if bad:
            run.problems.append(f"{len(bad)} {what}, e.g. {bad[:3]}")
    if run.changes != {key: n for key, n in expected.items() if n}:
        run.problems.append(f"changes {run.changes}, not {expected}")


def measure(
    processes: Processes, bench: compare.Bench, pages: int, share: float,
    repetition: int,
) -> Pair:  # fmt: skip
    """Round 1, then round 2 of one fresh crawl folder, SHARE of the pages changed between."""
    pair = Pair(share, repetition)
    folder = bench.work / "runs" / f"{label(share)}-{repetition}"
    folder.mkdir(parents=True)
    args = compare.command(VARIANT, bench, folder)  # writes folder/crawl.toml
    with (folder / "crawl.toml").open("a", encoding="utf-8") as config:
        config.write(RECRAWL)
    paths = to_change(pages, share)
    changed = {canonicalize(bench.base + path) for path in paths}
    pair.changed = len(changed)
    checks: tuple[Callable[[Round, compare.Bench, Path, harness.Usage], None], ...] = (
        check_first,
        lambda run, bench, folder, usage: check_second(run, bench, folder, usage, changed),
    )
    for number, check in enumerate(checks, 1):
        with changed_pages(bench.work / "site", paths if number == 2 else []):
            run, usage = crawl_round(processes, bench, folder, number, repetition, args)
        check(run, bench, folder, usage)
        for name in LOGS:  # kept under the round's name
            if (folder / name).exists():
                (folder / name).rename(folder / f"round{number}-{name}")
        pair.rounds.append(run)
        pair.problems += [f"round {number}: {problem}" for problem in run.problems]
        if run.problems:
            tail = (folder / f"run-{number}.log").read_text(errors="replace")[-1500:].strip()
            pair.problems += [f"log tail: {tail}"] if tail else []
            break
    return pair


# report ------------------------------------------------------------------------------------


def describe(pair: Pair) -> str:
    parts = [f"{label(pair.share):>12}"]
    for run in pair.rounds:
        parts.append(
            f"round {run.round}: {run.pages:,} pages, {run.wall_s:.1f} s, CPU {run.cpu_s:.1f} s "
            f"(loop {run.loop_cpu_s:.1f}, threads {run.threads_cpu_s:.1f}), "
            f"RSS {run.peak_rss_kib / 1024:.0f} MiB, {run.bytes:,} body bytes, "
            f"{run.sent_bytes:,} sent, {run.changes}, frontier {run.frontier_bytes / 2**20:.1f} MiB"
        )
    return "; ".join(parts)


def median(runs: list[Round], key: str) -> float:
    return statistics.median(float(getattr(run, key)) for run in runs)


def table(pairs: list[Pair], shares: list[float]) -> str:
    lines = [
        "| variant | round | pages | wall, s | pages/s | CPU, s | of which loop, threads "
        "| CPU ms/page | peak RSS, MiB | body bytes (stats) | sent by nginx | answers | changes "
        "| frontier.sqlite3 | runs ok |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    ratios = [
        "| variant | wall | CPU | body bytes | bytes sent by nginx | frontier.sqlite3 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for share in shares:
        group = [pair for pair in pairs if pair.share == share]
        ok = sum(not pair.problems for pair in group)
        rounds = [[p.rounds[n] for p in group if len(p.rounds) > n] for n in (0, 1)]
        for runs in filter(None, rounds):
            last = runs[-1]
            pages, wall, cpu = (median(runs, key) for key in ("pages", "wall_s", "cpu_s"))
            cells = [
                f"`{label(share)}`",
                str(last.round),
                f"{pages:,.0f}",
                f"{wall:.1f}",
                f"{pages / wall:,.0f}",
                f"{cpu:.1f}",
                f"{median(runs, 'loop_cpu_s'):.1f}, {median(runs, 'threads_cpu_s'):.1f}",
                f"{1000 * cpu / pages:.2f}",
                f"{median(runs, 'peak_rss_kib') / 1024:.0f}",
                f"{median(runs, 'bytes') / 1e6:,.1f} MB",
                f"{median(runs, 'sent_bytes') / 1e6:,.1f} MB",
                ", ".join(f"{n:,} of {s}" for s, n in sorted(last.statuses.items())),
                ", ".join(f"{n:,} {c}" for c, n in sorted(last.changes.items())),
                f"{median(runs, 'frontier_bytes') / 2**20:.1f} MiB",
                f"{ok}/{len(group)}",
            ]
            lines.append(f"| {' | '.join(cells)} |")
        if all(rounds):
            ratio = [
                f"{median(rounds[1], key) / median(rounds[0], key):.3f}"
                for key in ("wall_s", "cpu_s", "bytes", "sent_bytes", "frontier_bytes")
            ]
            ratios.append(f"| `{label(share)}` | {' | '.join(ratio)} |")
    return "\n".join([*lines, "", "Round 2 / round 1 (ratios of the medians):", "", *ratios])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=20000, help="product pages (default 20000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant (default 3)")
    parser.add_argument("--change", type=float, default=0.1,
                        help="share of the pages changed in the second variant (default 0.1; "
                        "0: only the unchanged variant)")  # fmt: skip
    parser.add_argument("--at", metavar="REV",
                        help="crawl with the crawler of this commit (a git worktree under /tmp, "
                        "as compare.py --at) instead of the working tree")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=compare.RUN_TIMEOUT,
                        help="seconds per round")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write every run's measurements here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if args.pages < 1 or args.repeats < 1 or not 0 <= args.change <= 0.5:
        parser.error("--pages and --repeats must be at least 1, --change from 0 to 0.5")

    harness.exit_on_sigterm()
    shares = [0.0, args.change] if args.change else [0.0]
    header = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": harness.machine(),
        "command": shlex.join([compare._relative(sys.executable), *sys.argv]),
        "versions": "",
        "load": "",
        "crawler": "",
    }
    processes = Processes()
    pairs: list[Pair] = []
    loads: list[float] = []
    work = Path(tempfile.mkdtemp(prefix="bench-recrawl-"))
    expected = 0
    session = harness.Session(
        processes,
        header,
        work,
        loads=lambda: loads,
        report=lambda: {"runs": [asdict(pair) for pair in pairs]},
        json_path=args.json,
        keep=args.keep,
    )
    with session, compare.worktrees([args.at] if args.at else []) as revs:
        processes.rev = next(iter(revs.values()), None)
        bench = compare.prepare(work, args.pages, [VARIANT], args.timeout)
        log_sent_bytes(bench.config)
        expected = len(bench.expected)
        header["versions"] = compare.versions(bench)
        header["crawler"] = crawler_line(processes.rev)
        for key in ("date", "machine", "versions", "crawler", "command"):
            print(f"{key}: {header[key]}", file=sys.stderr)

        def one(share: float, repetition: int) -> Pair:
            loads.append(os.getloadavg()[0])
            return measure(processes, bench, args.pages, share, repetition)

        try:
            harness.measure_all(pairs, args.repeats, shares, one, describe, rotate=True)
        finally:
            processes.stop_all()  # before the worktree they run in goes
    if session.code is not None:
        return session.code
    about = harness.about(header, args.pages, expected, args.repeats)
    text = f"{about}\n- Crawler: {header['crawler']}\n\n{table(pairs, shares)}"
    return harness.print_results(text, pairs, lambda pair: label(pair.share))


if __name__ == "__main__":
    sys.exit(main())
