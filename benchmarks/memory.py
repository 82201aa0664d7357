"""Memory flatness: does the crawler's peak RSS stay flat as the crawl grows?

    .venv/bin/python benchmarks/memory.py [--pages 2000,20000] [--repeats 3] [--json FILE]

For each size, alternating (2k, 20k, 2k, 20k, ...), this starts the generated
shop (``benchmarks/site.py``) in its own process, writes a crawl config (sqlite
frontier, ``site = "shop"``, no rate limit, concurrency 64) into a temporary
folder, runs ``python -m crawler CONFIG --quiet`` as a child and measures:

- peak RSS of exactly the crawler process: a tiny launcher process forks and
  execs it and reaps it with ``os.wait4(pid)``, which returns the rusage of that
  one process (``ru_maxrss``), unlike ``RUSAGE_CHILDREN``, which keeps the maximum
  over every child ever waited for. The launcher matters: ``ru_maxrss`` also
  counts the memory image before exec, and a child forked from this harness
  would start with the harness's RSS. ``VmHWM`` from ``/proc/PID/status``,
  polled every 50 ms, is kept as a cross-check;
- peak RSS of each parse process the crawler starts (``parse_workers = "auto"`` gives
  it some on 2 cores and more), from their ``VmHWM`` polled the same way: the largest
  one is reported, since they hold the same things;
- wall time from spawn to exit (interpreter start included), pages/s;
- correctness: one item per reachable allowed page (distinct canonical URLs,
  none twice, none missing, none extra), no request robots.txt disallows
  (``/private/``, ``/cart``, ``/account/``, ``?sessionid=``) and none to the
  ``localhost`` host name (from the site's own request counts), no errors.

It prints a markdown table of medians and the ratio of the median peak RSS of
the largest size to the smallest. The design's target: within 25 % (ratio <= 1.25).
Every process it starts is stopped by its pid on success, failure, timeout
(10 minutes per crawl) and Ctrl-C; the exit status is 1 when a run failed a check.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import harness  # benchmarks/harness.py: run as a script, this folder is first on sys.path
from harness import ROOT, load_site_module  # memory_profile.py uses them from here too

from crawler.urls import canonicalize

TARGET_RATIO = 1.25
RUN_TIMEOUT = 600.0  # seconds per crawl
POLL = 0.05


@dataclass
class Run:
    pages: int  # --pages of the site
    repetition: int
    expected: int = 0  # pages a correct crawl parses
    peak_rss_kib: int = 0  # ru_maxrss from wait4 of the crawler process
    vmhwm_kib: int = 0  # last VmHWM polled from /proc, a cross-check
    parse_peak_kib: int = 0  # the largest VmHWM among the crawler's parse processes
    wall_s: float = 0.0
    pages_per_s: float = 0.0
    exit_code: int | None = None
    items: int = 0
    distinct: int = 0
    problems: list[str] = field(default_factory=list)
    site_requests: dict[str, int] = field(default_factory=dict)
    crawl_stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


class Processes(harness.Processes):
    """``harness.Processes`` that also knows each launcher's child (the crawler).

    Registered with ``adopt``, it is stopped through its launcher, which forwards
    SIGTERM, or by its own pid when that fails.
    """

    def __init__(self) -> None:
        super().__init__()
        self.inner: dict[int, int] = {}  # launcher pid -> crawler pid

    def adopt(self, launcher: subprocess.Popen[bytes], pid: int) -> None:
        self.inner[launcher.pid] = pid

    def before_kill(self, child: subprocess.Popen[bytes]) -> None:
        inner = self.inner.get(child.pid)
        if inner is not None:  # still the launcher's unreaped child: safe to signal
            with contextlib.suppress(ProcessLookupError):
                os.kill(inner, signal.SIGKILL)


# one measurement ---------------------------------------------------------------------------


def start_site(processes: Processes, pages: int, work: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The site, writing its request counts to WORK/site-stats.json when it is stopped."""
    return harness.start_site(processes, pages, work, stats=work / "site-stats.json")


def write_config(work: Path, port: int) -> Path:
    config = work / "crawl.toml"
    config.write_text(
        f"""[crawl]
start_urls = ["http://127.0.0.1:{port}/"]
site = "shop"
max_pages = 10000000  # every page of the site, past the default 100,000 too

[rate_limit]
per_host = ""

[fetch]
concurrency = 64

[output]
dir = "{work / "out"}"

[state]
frontier = "sqlite"
""",
        encoding="utf-8",
    )
    return config


def _vmhwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as children:
            return [int(child) for child in children.read().split()]
    except (OSError, ValueError):
        return []


def run_crawler(processes: Processes, config: Path, work: Path, run: Run, timeout: float) -> None:
    """Run the crawl through ``harness.RUSAGE_LAUNCHER`` (a child of its own, so that
    ``ru_maxrss`` is the crawler's and not this harness's memory image before exec);
    poll VmHWM as a cross-check, and that of its parse processes; stop it at the
    deadline."""
    command = [sys.executable, "-m", "crawler", str(config), "--quiet"]
    started = time.perf_counter()
    launcher = processes.start(
        [sys.executable, "-I", "-S", "-c", harness.RUSAGE_LAUNCHER, str(work / "crawl.log"),
         *command],
        stdout=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    pid = int(harness.read_line(launcher, "the crawler launcher"))
    processes.adopt(launcher, pid)
    deadline = started + timeout
    while launcher.poll() is None:
        run.vmhwm_kib = max(run.vmhwm_kib, _vmhwm(pid))
        for child in _children(pid):
            run.parse_peak_kib = max(run.parse_peak_kib, _vmhwm(child))
        if time.perf_counter() > deadline:
            run.problems.append(f"timed out after {timeout:.0f} s: crawler stopped")
            processes.stop(launcher)
            break
        time.sleep(POLL)
    run.wall_s = time.perf_counter() - started
    assert launcher.stdout is not None
    result = launcher.stdout.read().split()  # exit-code max-rss-kib user-s sys-s wall-s
    if len(result) == 5:
        run.exit_code, run.peak_rss_kib = int(result[0]), int(result[1])  # KiB on Linux
    else:
        run.exit_code, run.peak_rss_kib = launcher.returncode, run.vmhwm_kib


# site.py counts requests by first path segment ("?sessionid" for any with that parameter).
PAGES = ("/", "/p", "/c", "/info", "/search")  # what expected_paths holds
DISALLOWED = ("/private", "/cart", "/account", "?sessionid")  # what its robots.txt disallows


def site_counts(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/__stats", timeout=10) as response:
        counts: dict[str, int] = json.load(response)["requests"]
    return counts


def check(run: Run, work: Path, expected: set[str]) -> None:
    out = work / "out"
    seen: Counter[str] = Counter()
    incomplete = 0
    items_file = out / "items.jsonl"
    if items_file.exists():
        with items_file.open(encoding="utf-8") as items:
            for line in items:
                item = json.loads(line)
                seen[canonicalize(item["url"])] += 1
                if not (item.get("name") and item.get("sku") and item.get("price")):
                    incomplete += 1
    run.items, run.distinct = sum(seen.values()), len(seen)
    twice = sorted(url for url, n in seen.items() if n > 1)
    missing = sorted(expected - seen.keys())
    extra = sorted(seen.keys() - expected)
    for label, urls in (("items twice", twice), ("pages missing", missing), ("extra", extra)):
        if urls:
            run.problems.append(f"{len(urls)} {label}, e.g. {urls[:3]}")
    if incomplete:
        run.problems.append(f"{incomplete} items without name, sku or price")
    if run.exit_code != 0:
        run.problems.append(f"crawler exited with {run.exit_code}")
    requests = run.site_requests
    disallowed = sum(n for key, n in requests.items() if key.split(" ")[1] in DISALLOWED)
    offsite = sum(n for key, n in requests.items() if key.split(" ")[0] != "127.0.0.1")
    if disallowed:
        run.problems.append(f"{disallowed} requests robots.txt disallows reached the site")
    if offsite:
        run.problems.append(f"{offsite} requests to another host name reached the site")
    fetched = sum(n for key, n in requests.items() if key.split(" ")[1] in PAGES)
    if fetched != len(expected):
        run.problems.append(f"{fetched} page requests for {len(expected)} pages")
    errors_file = out / "errors.jsonl"
    if errors_file.exists() and (errors := errors_file.read_text(encoding="utf-8").splitlines()):
        run.problems.append(f"{len(errors)} errors, e.g. {errors[0][:200]}")
    stats_file = out / "stats.json"
    if stats_file.exists():
        run.crawl_stats = json.loads(stats_file.read_text(encoding="utf-8"))


def measure(
    processes: Processes, site_module: ModuleType, pages: int, repetition: int, args: Any
) -> Run:
    run = Run(pages, repetition)
    work = Path(tempfile.mkdtemp(prefix=f"bench-memory-{pages}-"))
    try:
        site, port = start_site(processes, pages, work)
        try:
            expected: set[str] = site_module.expected_urls(pages, port)
            run.expected = len(expected)
            run_crawler(processes, write_config(work, port), work, run, args.timeout)
            run.site_requests = site_counts(port)
        finally:
            processes.stop(site)
        check(run, work, expected)
        run.pages_per_s = run.items / run.wall_s if run.wall_s else 0.0
        if run.problems:
            log = (work / "crawl.log").read_text(errors="replace")[-1500:]
            if log.strip():
                run.problems.append(f"crawl log tail: {log.strip()}")
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return run


# report ------------------------------------------------------------------------------------


def _mib(kib: float) -> float:
    return kib / 1024


def describe(run: Run) -> str:
    return (
        f"{run.pages:>6,} pages: {run.items:,} items, peak RSS "
        f"{_mib(run.peak_rss_kib):.1f} MiB (VmHWM {_mib(run.vmhwm_kib):.1f}), "
        f"parse process {_mib(run.parse_peak_kib):.1f} MiB, "
        f"{run.wall_s:.1f} s, {run.pages_per_s:.0f} pages/s"
    )


def table(runs: list[Run], sizes: list[int]) -> tuple[str, float | None]:
    lines = [
        "| site pages | pages crawled | runs ok | peak RSS, MiB (median) | peak RSS, MiB "
        "(each run) | parse process, MiB (median) | wall, s (median) | pages/s (median) |",
        "|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    medians: dict[int, float] = {}
    for size in sizes:
        group = [r for r in runs if r.pages == size]
        if not group:
            continue
        rss = [r.peak_rss_kib for r in group]
        medians[size] = statistics.median(rss)
        each = ", ".join(f"{_mib(v):.1f}" for v in rss)
        lines.append(
            f"| {size:,} | {statistics.median(r.items for r in group):,.0f} "
            f"| {sum(r.ok for r in group)}/{len(group)} | {_mib(medians[size]):.1f} | {each} "
            f"| {_mib(statistics.median(r.parse_peak_kib for r in group)):.1f} "
            f"| {statistics.median(r.wall_s for r in group):.1f} "
            f"| {statistics.median(r.pages_per_s for r in group):.0f} |"
        )
    ratio = None
    if len(medians) >= 2 and medians[min(medians)]:
        ratio = medians[max(medians)] / medians[min(medians)]
        verdict = "within" if ratio <= TARGET_RATIO else "OVER"
        lines.append("")
        lines.append(
            f"peak_RSS({max(medians):,}) / peak_RSS({min(medians):,}) = **{ratio:.2f}** "
            f"({verdict} the {TARGET_RATIO:.2f} target)"
        )
    return "\n".join(lines), ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pages",
        default="2000,20000",
        type=lambda text: [int(p) for p in text.split(",")],
        help="comma-separated site sizes (default 2000,20000)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="repetitions per size")
    parser.add_argument("--timeout", type=float, default=RUN_TIMEOUT, help="seconds per crawl")
    parser.add_argument("--json", type=Path, help="write every run's measurements here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    args = parser.parse_args(argv)

    harness.exit_on_sigterm()
    site_module = load_site_module()
    processes = Processes()
    runs: list[Run] = []
    print(harness.machine(), file=sys.stderr)
    try:
        harness.measure_all(
            runs,
            args.repeats,
            args.pages,
            lambda pages, repetition: measure(processes, site_module, pages, repetition, args),
            describe,
        )
    except KeyboardInterrupt:
        print("interrupted: stopping the processes started", file=sys.stderr)
        return 130
    finally:
        processes.stop_all()
        if args.json is not None and runs:
            args.json.write_text(json.dumps([asdict(r) for r in runs], indent=2) + "\n")
    text, _ = table(runs, sorted(set(args.pages)))
    print(text)
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
