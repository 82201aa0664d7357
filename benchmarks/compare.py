"""Pages/s against Scrapy and against the limits of a Python client, on one nginx site.

    .venv/bin/python benchmarks/compare.py [--pages 20000] [--repeats 3] [--only NAME,...]
        [--at REV,...] [--write-readme] [--json FILE] [--keep] [--timeout 600]

Issue 5 asks for several times Scrapy's pages/s, near the limit of a Python crawler.
This writes the generated shop (``site.py``) once as static files, serves it with
Debian's nginx (``nginx.py``: fast enough that only the client is measured), and
runs, alternating and with the order rotated every repetition:

- ``aiohttp-bare``: ``limits.py`` over the known URL list, 64 in flight, no parsing;
- ``aiohttp-lxml``: the same, plus lxml link extraction and the three item fields;
- ``crawl-<engine>-shop`` (aiohttp, threads, futures) and ``crawl-aiohttp-generic``:
  ``python -m crawler CONFIG --quiet``, robots obeyed, SQLite frontier, 64 in flight,
  a rate limit of 2,000 requests/s per host (configured, as on a real crawl, but high),
  the default ``parse_workers`` ("auto": processes on 2+ cores);
- ``crawl-aiohttp-shop-p1``: the same, parsing in threads (``parse_workers = 1``);
- ``crawl-aiohttp-rules``: the same with no ``crawl.site`` and ``[[extract]]`` rules
  (``RULES``) taking what ``sites/shop.py`` takes;
- ``scrapy``: ``scrapy_spider.py``, an equivalent ``CrawlSpider`` (its download delay
  the same 2,000 requests/s), in a virtualenv of its own under ``benchmarks/.cache/``
  (created on first use).

Each child runs under the launcher of ``harness.launch``, so wall time and CPU (user +
sys) are that one process's (with the children it waited for); peak RSS is the highest
sum of RSS over it and all its descendants (parse workers), sampled every 50 ms.
``--at REV,...`` runs the crawl variants of ``--only`` at those commits instead of the
working tree: each in a ``git worktree`` under /tmp (removed afterwards), imported
through ``PYTHONPATH``, named ``VARIANT@REV``. Pages found are distinct canonical URLs:
of items for the crawls and Scrapy, of status-200 fetches for the baselines. Every
run must find exactly ``expected_urls``; nginx's access log must show each page
fetched once, nothing robots.txt disallows (site.py's ``is_disallowed``: under ``/private/``,
``/cart`` or ``/account/``, or with ``sessionid=`` in the query) and no other host
name. It prints a markdown table of medians (``--write-readme`` also puts it in
``README.md``) and exits 1 if any run failed a check. Every process is stopped by its
pid on success, failure, timeout and Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from textwrap import shorten
from typing import Any

import harness  # benchmarks/harness.py: run as a script, this folder is first on sys.path
import nginx

from crawler.urls import canonicalize

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
SCRAPY_VENV = HERE / ".cache" / "venv-scrapy"
BASELINES = ("aiohttp-bare", "aiohttp-lxml")
# variant -> (engine, site, parse_workers); site "": none, the variant's RULES;
# parse_workers "auto": no such line, the default (at an older revision, its default)
CRAWLS: dict[str, tuple[str, str, int | str]] = {
    "crawl-aiohttp-shop": ("aiohttp", "shop", "auto"),
    "crawl-threads-shop": ("threads", "shop", "auto"),
    "crawl-futures-shop": ("futures", "shop", "auto"),
    "crawl-aiohttp-generic": ("aiohttp", "generic", "auto"),
    "crawl-aiohttp-shop-p1": ("aiohttp", "shop", 1),  # parsing in threads: what auto buys
    "crawl-aiohttp-rules": ("aiohttp", "", "auto"),
}
# [[extract]] rules ending a variant's config. With no crawl.site only their items are
# written: here one "product" item per product block with what sites/shop.py takes from
# it (the first .name, .sku and .price, text with whitespace collapsed; price a number).
# Every page of site.py has one such block, so every page gives one item.
RULES = {
    "crawl-aiohttp-rules": """
[[extract]]
name = "product"
each = "div.product"

[extract.fields]
name = ".name"
sku = ".sku"
price = { css = ".price", type = "number" }
""",
}
SCRAPY = "scrapy"
VARIANTS = (*BASELINES, *CRAWLS, SCRAPY)
CONCURRENCY = 64
RATE_LIMIT = "2000/s"  # [rate_limit] per_host; scrapy_spider.py's DOWNLOAD_DELAY matches
RUN_TIMEOUT = 600.0  # seconds per run
MARK_START, MARK_END = "<!-- compare:start -->", "<!-- compare:end -->"
AT_START, AT_END = "<!-- compare-at:start -->", "<!-- compare-at:end -->"
WORKTREES = Path("/tmp")  # REV's worktree: WORKTREES / f"bench-rev-{short}"


def split_variant(name: str) -> tuple[str, str | None]:
    """``crawl-aiohttp-shop@1a802d6`` -> (``crawl-aiohttp-shop``, ``1a802d6``)."""
    base, _, rev = name.partition("@")
    return base, rev or None


@dataclass
class Run:
    variant: str
    repetition: int
    wall_s: float = 0.0  # spawn to exit, from the launcher
    cpu_s: float = 0.0  # user + sys of that one process
    user_s: float = 0.0
    sys_s: float = 0.0
    peak_rss_kib: int = 0  # of the process tree: see harness.Usage.peak_rss_kib
    rss_main: int = 0  # ru_maxrss (KiB) from wait4: the largest single process of the tree
    rss_tree_sampled: int = 0  # highest sampled sum of VmRSS over the tree, KiB
    processes: int = 0  # most processes in the tree in one sample
    exit_code: int | None = None
    found: int = 0  # distinct canonical URLs found (items, or status-200 fetches)
    records: int = 0  # item or fetch lines, duplicates included
    page_requests: int = 0  # requests nginx saw for expected pages
    robots_requests: int = 0
    sitemap_requests: int = 0
    nginx_cpu_s: float = 0.0  # nginx's worker during the run
    load1: float = 0.0  # 1-minute load average when the run started
    problems: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)  # the crawler's or Scrapy's own

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def pages_per_s(self) -> float:
        return self.found / self.wall_s if self.wall_s else 0.0

    @property
    def cpu_ms_per_page(self) -> float:
        return 1000 * self.cpu_s / self.found if self.found else 0.0


@dataclass
class Rev:
    """An older version of the crawler, checked out in a worktree of its own."""

    short: str
    sha: str
    subject: str
    path: Path  # the worktree
    parse_workers: bool = False  # its config knows ``[crawl] parse_workers``
    extract: bool = False  # its config knows ``[[extract]]`` rules
    uvloop: bool = False  # its command line runs on uvloop when installed
    crawler_file: str = ""  # crawler.__file__ as a crawl there imports it

    def env(self) -> dict[str, str]:
        """PYTHONPATH comes before the editable install's finder (a meta path hook
        after the path finder), so the worktree's ``crawler`` and ``sites`` win."""
        old = os.environ.get("PYTHONPATH")
        return {
            **os.environ,
            "PYTHONPATH": f"{self.path}{os.pathsep}{old}" if old else str(self.path),
        }


@dataclass
class Bench:
    """What every run shares: one site on disk, one port, one expected set."""

    work: Path
    port: int
    nginx_binary: str
    config: Path  # nginx.conf
    expected: set[str]
    url_file: Path  # every expected URL, for the baselines
    scrapy_python: Path | None
    timeout: float
    is_disallowed: Callable[[str], bool]  # site.py's: what its robots.txt disallows
    revs: dict[str, Rev] = field(default_factory=dict)  # short -> Rev, for --at

    @property
    def base(self) -> str:
        return f"http://{nginx.HOST}:{self.port}"


# setup -------------------------------------------------------------------------------------


def ensure_scrapy() -> Path:
    """The Python of the harness's own Scrapy virtualenv, created on first use: Scrapy
    (the latest on the package index then) is no dependency of the crawler."""
    python = SCRAPY_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {SCRAPY_VENV} and installing Scrapy", file=sys.stderr)
        # The project venv's Python makes a venv on the same base interpreter.
        subprocess.run([sys.executable, "-m", "venv", str(SCRAPY_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip", "scrapy"],
            check=True,
        )
    return python


def scrapy_version(python: Path) -> str:
    script = "import scrapy, twisted; print(scrapy.__version__, twisted.__version__)"
    result = subprocess.run([str(python), "-c", script], capture_output=True, text=True, check=True)
    scrapy, twisted = result.stdout.split()
    return f"Scrapy {scrapy} (Twisted {twisted})"


def versions(bench: Bench) -> str:
    """nginx, the client libraries and Scrapy: what the numbers depend on besides the code."""
    nginx_v = subprocess.run([bench.nginx_binary, "-v"], capture_output=True, text=True)
    found = [
        f"nginx {nginx_v.stderr.strip().rsplit('/', 1)[-1]}",
        f"aiohttp {version('aiohttp')}",
        f"lxml {version('lxml')}",
    ]
    if bench.scrapy_python is not None:
        found.append(scrapy_version(bench.scrapy_python))
    return ", ".join(found)


def _source(checkout: Path, *paths: str) -> str:
    """The text of the first of ``paths`` (under ``crawler/``) that exists at that
    revision: modules moved when the package was grouped by role."""
    for relative in paths:
        path = checkout / "crawler" / relative
        if path.exists():
            return path.read_text(encoding="utf-8")
    return ""


def _git(*args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=harness.ROOT, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


IMPORTED = "import crawler, sites; print(crawler.__file__); print(sites.__file__)"


@contextlib.contextmanager
def worktrees(names: list[str]) -> Iterator[dict[str, Rev]]:
    """A detached worktree under /tmp for each revision, removed on the way out. Checks
    that a crawl run there imports that worktree's ``crawler`` and ``sites``."""
    revs: dict[str, Rev] = {}
    try:
        for name in names:
            sha = _git("rev-parse", "--verify", f"{name}^{{commit}}")
            short = _git("rev-parse", "--short=7", sha)
            if short in revs:
                raise RuntimeError(f"--at names {short} twice")
            path = WORKTREES / f"bench-rev-{short}"
            if path.exists():
                raise RuntimeError(f"{path} exists: remove it (git worktree remove {path})")
            _git("worktree", "add", "--detach", str(path), sha)
            rev = Rev(short, sha, _git("log", "-1", "--format=%s", sha), path)
            revs[short] = rev
            config_source = _source(path, "config.py", "config/crawl.py")
            rev.parse_workers = '"parse_workers"' in config_source
            rev.extract = '"extract"' in config_source
            rev.uvloop = "uvloop" in _source(path, "loop.py", "cli/loop.py")
            # The same interpreter, environment and working directory as its crawls.
            result = subprocess.run([sys.executable, "-c", IMPORTED], cwd=path, env=rev.env(),
                                    capture_output=True, text=True, check=True)  # fmt: skip
            files = result.stdout.split()
            if len(files) != 2 or not all(Path(f).is_relative_to(path) for f in files):
                raise RuntimeError(f"{short}: a crawl there would import {files}, not {path}'s")
            rev.crawler_file = files[0]
            print(f"{short} {rev.subject[:70]!r}: crawler from {rev.crawler_file}, "
                  f"parse_workers {'known' if rev.parse_workers else 'unknown'}, "
                  f"uvloop {'used' if rev.uvloop else 'not used'}", file=sys.stderr)  # fmt: skip
        yield revs
    finally:
        for rev in revs.values():
            try:
                _git("worktree", "remove", "--force", str(rev.path))
            except RuntimeError as exc:
                print(f"warning: {exc}", file=sys.stderr)


def at_variants(only: list[str], revs: dict[str, Rev]) -> list[str]:
    """ONLY with each crawl variant replaced by one per revision, ``VARIANT@REV``; a
    variant with parse_workers > 1 only at revisions that know that setting, one with
    ``RULES`` only at revisions that know ``[[extract]]``."""
    variants: list[str] = []
    for variant in only:
        if variant not in CRAWLS:
            variants.append(variant)
            continue
        for rev in revs.values():
            if CRAWLS[variant][2] not in ("auto", 1) and not rev.parse_workers:
                print(f"skipping {variant}@{rev.short}: no parse_workers there", file=sys.stderr)
            elif variant in RULES and not rev.extract:
                print(f"skipping {variant}@{rev.short}: no [[extract]] there", file=sys.stderr)
            else:
                variants.append(f"{variant}@{rev.short}")
    return variants


def prepare(work: Path, pages: int, variants: list[str], timeout: float) -> Bench:
    """Install what is missing, write the site for a free port and nginx's config."""
    binary = nginx.ensure_nginx()
    scrapy_python = ensure_scrapy() if SCRAPY in variants else None
    site_module = harness.load_site_module()
    port = nginx.free_port()
    root = work / "site"
    old_umask = os.umask(0o022)  # nginx's worker runs as nobody when started by root
    try:
        work.chmod(0o755)
        written = site_module.ShopSite(pages, port=port).write_static(root)
    finally:
        os.umask(old_umask)
    print(f"wrote {written:,} files to {root}", file=sys.stderr)
    expected: set[str] = site_module.expected_urls(pages, port)
    base = f"http://{nginx.HOST}:{port}"
    url_file = work / "urls.txt"
    paths = site_module.expected_paths(pages)
    url_file.write_text("".join(f"{base}{path}\n" for path in paths), encoding="utf-8")
    config = nginx.write_config(work / "nginx", root, port)
    return Bench(work, port, binary, config, expected, url_file, scrapy_python, timeout,
                 site_module.is_disallowed)  # fmt: skip


# one run -----------------------------------------------------------------------------------


def write_crawl_config(
    folder: Path,
    bench: Bench,
    engine: str,
    site: str,
    parse_workers: int | str,
    rev: Rev | None,
    state: str = 'frontier = "sqlite"',
    rules: str = "",
) -> Path:
    """The crawl's config; without ``parse_workers`` when it is "auto" (the default),
    or for a REV whose config lacks it (configs reject unknown keys), which then parses
    in threads, as 1 does. ``state``: the lines of its ``[state]`` table. ``site`` "":
    no ``crawl.site`` line. ``rules``: ``[[extract]]`` tables, written last."""
    known = rev is None or rev.parse_workers
    workers = f"parse_workers = {parse_workers}\n" if known and parse_workers != "auto" else ""
    assert workers or parse_workers in ("auto", 1)
    site_line = f'site = "{site}"\n' if site else ""
    config = folder / "crawl.toml"
    config.write_text(
        f"""[crawl]
start_urls = ["{bench.base}/"]
{site_line}obey_robots = true
{workers}
[fetch]
engine = "{engine}"
concurrency = {CONCURRENCY}
per_host_concurrency = {CONCURRENCY}

[rate_limit]
per_host = "{RATE_LIMIT}"

[output]
dir = "{folder / "out"}"
items = "items.jsonl"

[state]
{state}
{rules}""",
        encoding="utf-8",
    )
    return config


def command(name: str, bench: Bench, folder: Path) -> list[str]:
    variant, rev = split_variant(name)
    if variant in BASELINES:
        parse = ["--parse"] if variant == "aiohttp-lxml" else []
        return [sys.executable, str(HERE / "limits.py"), str(bench.url_file),
                str(folder / "fetched.tsv"), "--concurrency", str(CONCURRENCY), *parse]  # fmt: skip
    if variant in CRAWLS:
        at = bench.revs[rev] if rev else None
        config = write_crawl_config(
            folder, bench, *CRAWLS[variant], at, rules=RULES.get(variant, "")
        )
        return [sys.executable, "-m", "crawler", str(config), "--quiet"]
    assert variant == SCRAPY
    assert bench.scrapy_python is not None
    return [str(bench.scrapy_python), str(HERE / "scrapy_spider.py"), "--url", f"{bench.base}/",
            "--feed", str(folder / "items.jsonl"), "--stats", str(folder / "scrapy-stats.json"),
            "--concurrency", str(CONCURRENCY)]  # fmt: skip


def complete_item(variant: str, item: dict[str, Any]) -> bool:
    """Every field the variant's parser extracts; the rules' items also their rule's
    name as ``type`` and the price as a number, as ``sites/shop.py`` gives it."""
    if variant == "crawl-aiohttp-generic":
        return bool(item.get("title"))
    if not all(item.get(key) for key in ("name", "sku", "price")):
        return False
    if variant in RULES:
        price = item["price"]
        return (
            item.get("type") == "product"
            and isinstance(price, int | float)
            and not isinstance(price, bool)
        )
    return True


def found_urls(name: str, folder: Path, run: Run) -> Counter[str]:
    """Canonical URL -> lines naming it: items for crawls, status-200 fetches for baselines.
    Records missing a field that variant extracts are problems."""
    variant, _ = split_variant(name)
    seen: Counter[str] = Counter()
    incomplete: list[str] = []
    if variant in BASELINES:
        path = folder / "fetched.tsv"
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        for line in lines:
            status, url, *parsed = line.split("\t")
            if status == "200":
                seen[canonicalize(url)] += 1
                # links, name, sku, price: some links and every field, on every page
                complete = len(parsed) == 4 and parsed[0] != "0" and all(parsed[1:])
                if variant == "aiohttp-lxml" and not complete:
                    incomplete.append(url)
        run.records = len(lines)
    else:
        path = folder / ("out/items.jsonl" if variant in CRAWLS else "items.jsonl")
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        for line in lines:
            item = json.loads(line)
            seen[canonicalize(item["url"])] += 1
            if not complete_item(variant, item):
                incomplete.append(item["url"])
        run.records = len(lines)
    if incomplete:
        run.problems.append(f"{len(incomplete)} records without every field, e.g. {incomplete[:3]}")
    return seen


def check(run: Run, bench: Bench, folder: Path, usage: harness.Usage) -> None:
    """Exactly the expected pages found, each fetched once, nothing else fetched."""
    if usage.timed_out:
        run.problems.append(f"timed out after {bench.timeout:.0f} s: stopped")
    if run.exit_code != 0:
        run.problems.append(f"exited with {run.exit_code}")
    seen = found_urls(run.variant, folder, run)
    run.found = len(seen)
    twice = sorted(url for url, n in seen.items() if n > 1)
    missing = sorted(bench.expected - seen.keys())
    extra = sorted(seen.keys() - bench.expected)
    for label, urls in (("found twice", twice), ("missing", missing), ("extra", extra)):
        if urls:
            run.problems.append(f"{len(urls)} pages {label}, e.g. {urls[:3]}")

    fetched: Counter[str] = Counter()
    disallowed, offsite, other, failed = [], [], [], []
    for host, status, uri in nginx.read_log(folder / "access.log"):
        if host != nginx.HOST:
            offsite.append(f"{host} {uri}")
        elif bench.is_disallowed(uri):
            disallowed.append(uri)
        elif uri == "/robots.txt":
            run.robots_requests += 1
        elif uri == "/sitemap.xml":
            run.sitemap_requests += 1
        elif (url := canonicalize(bench.base + uri)) in bench.expected:
            fetched[url] += 1
            if status != 200:
                failed.append(f"{status} {uri}")
        else:
            other.append(f"{status} {uri}")
    run.page_requests = sum(fetched.values())
    again = sorted(url for url, n in fetched.items() if n > 1)
    unfetched = len(bench.expected) - len(fetched)
    for label, items in (
        ("requests robots.txt disallows", disallowed),
        ("requests to another host name", offsite),
        ("requests for other paths", other),
        ("page requests not answered 200", failed),
        ("pages fetched more than once", again),
    ):
        if items:
            run.problems.append(f"{len(items)} {label}, e.g. {items[:3]}")
    if unfetched:
        run.problems.append(f"{unfetched} expected pages never requested")
    error_log = folder / "error.log"
    if error_log.exists() and (errors := error_log.read_text(errors="replace").splitlines()):
        run.problems.append(f"{len(errors)} lines in nginx's error log, e.g. {errors[:2]}")


def read_stats(name: str, folder: Path) -> dict[str, Any]:
    variant, _ = split_variant(name)
    path = folder / ("out/stats.json" if variant in CRAWLS else "scrapy-stats.json")
    if variant in BASELINES or not path.exists():
        return {}
    stats: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return stats


def measure(
    processes: harness.LaunchedProcesses, bench: Bench, variant: str, repetition: int
) -> Run:
    """One run against a freshly started nginx, whose access log is this run's alone."""
    run = Run(variant, repetition, load1=os.getloadavg()[0])
    folder = bench.work / "runs" / f"{variant}-{repetition}"
    folder.mkdir(parents=True)
    args = command(variant, bench, folder)
    rev = bench.revs.get(split_variant(variant)[1] or "")
    env, cwd = (rev.env(), rev.path) if rev else (None, harness.ROOT)
    server = nginx.start(processes, bench.nginx_binary, bench.config, bench.port)
    try:
        usage = harness.launch(processes, args, folder / "run.log", bench.timeout, env, cwd)
        run.nginx_cpu_s = nginx.workers_cpu_s(server.pid)
    finally:
        nginx.stop(processes, server)
    for name in ("access.log", "error.log"):  # this run's alone; no log, no page fetched
        log = bench.config.parent / name
        if log.exists():
            shutil.move(log, folder / name)
    run.exit_code, run.wall_s = usage.exit_code, usage.wall_s
    run.peak_rss_kib, run.rss_main = usage.peak_rss_kib, usage.max_rss_kib
    run.rss_tree_sampled, run.processes = usage.tree_rss_kib, usage.tree_processes
    run.user_s, run.sys_s, run.cpu_s = usage.user_s, usage.sys_s, usage.cpu_s
    check(run, bench, folder, usage)
    run.stats = read_stats(variant, folder)
    if run.problems:
        tail = (folder / "run.log").read_text(errors="replace")[-1500:].strip()
        if tail:
            run.problems.append(f"log tail: {tail}")
    return run


# report ------------------------------------------------------------------------------------


def describe(run: Run) -> str:
    return (
        f"{run.variant:>29}: {run.found:,} pages, {run.wall_s:.1f} s, "
        f"{run.pages_per_s:,.0f} pages/s, CPU {run.cpu_s:.1f} s "
        f"({run.cpu_ms_per_page:.2f} ms/page), RSS {run.peak_rss_kib / 1024:.0f} MiB "
        f"(tree of {run.processes}, largest alone {run.rss_main / 1024:.0f}), "
        f"nginx CPU {run.nginx_cpu_s:.1f} s, load {run.load1:.2f}"
    )


def table(runs: list[Run], variants: list[str]) -> str:
    def median(group: list[Run], key: str) -> float:
        return statistics.median(float(getattr(r, key)) for r in group)

    groups = {v: [r for r in runs if r.variant == v] for v in variants}
    groups = {v: group for v, group in groups.items() if group}
    rates = {v: median(group, "pages_per_s") for v, group in groups.items()}

    def ratio(variant: str, reference: str) -> str:
        base = rates.get(reference, 0.0)
        return f"{rates[variant] / base:.2f}" if base else "-"

    lines = [
        "| variant | pages/s | wall, s | CPU, s | CPU ms/page | peak RSS, MiB | pages found "
        "| runs ok | vs Scrapy | vs aiohttp-lxml | nginx CPU, s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant, group in groups.items():
        lines.append(
            f"| `{variant}` | {rates[variant]:,.0f} | {median(group, 'wall_s'):.1f} "
            f"| {median(group, 'cpu_s'):.1f} | {median(group, 'cpu_ms_per_page'):.2f} "
            f"| {median(group, 'peak_rss_kib') / 1024:.0f} | {median(group, 'found'):,.0f} "
            f"| {sum(r.ok for r in group)}/{len(group)} | {ratio(variant, SCRAPY)} "
            f"| {ratio(variant, 'aiohttp-lxml')} | {median(group, 'nginx_cpu_s'):.1f} |"
        )
    return "\n".join(lines)


def ab_table(runs: list[Run], variants: list[str], revs: dict[str, Rev]) -> str:
    """For each crawl variant run at several revisions, in the order of ``--at``: medians
    and each step's ratio to the one before (pages/s up, CPU per page down)."""
    lines = [
        "| variant | commit | pages/s | CPU ms/page | peak RSS, MiB | runs ok | uvloop "
        "| pages/s vs previous | CPU/page vs previous | pages/s vs first |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    bases = list(dict.fromkeys(split_variant(v)[0] for v in variants if split_variant(v)[1]))
    for base in bases:
        previous: tuple[float, float] | None = None
        first = 0.0
        for rev in revs.values():
            group = [r for r in runs if r.variant == f"{base}@{rev.short}"]
            if not group:
                continue
            rate = statistics.median(r.pages_per_s for r in group)
            cpu = statistics.median(r.cpu_ms_per_page for r in group)
            rss = statistics.median(r.peak_rss_kib for r in group) / 1024
            first = first or rate
            steps = (
                f"{rate / previous[0]:.2f} | {cpu / previous[1]:.2f}"
                if previous and previous[0] and previous[1]
                else "- | -"
            )
            subject = shorten(rev.subject, 60, placeholder=" …")
            lines.append(
                f"| `{base}` | `{rev.short}` {subject} | {rate:,.0f} | {cpu:.2f} "
                f"| {rss:.0f} | {sum(r.ok for r in group)}/{len(group)} "
                f"| {'yes' if rev.uvloop else 'no'} | {steps} "
                f"| {rate / first if first else 0:.2f} |"
            )
            previous = (rate, cpu)
    return "\n".join(lines)


def write_readme(text: str, start: str = MARK_START, end: str = MARK_END) -> None:
    """Replace what stands between the markers START and END of README.md with TEXT."""
    readme = README.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(readme):
        raise RuntimeError(f"{README} has no {start} ... {end} section")
    block = f"{start}\n{text}\n{end}"
    README.write_text(pattern.sub(lambda _: block, readme, count=1), encoding="utf-8")


def _relative(path: str) -> str:
    """``.venv/bin/python`` rather than the absolute path, when it is under the cwd."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _variants(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {', '.join(VARIANTS)}")
    return [v for v in VARIANTS if v in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=20000, help="product pages (default 20000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant (default 3)")
    parser.add_argument("--only", type=_variants, default=list(VARIANTS),
                        help=f"comma-separated variants of: {', '.join(VARIANTS)}")  # fmt: skip
    parser.add_argument("--at", type=lambda text: [r for r in text.split(",") if r.strip()],
                        default=[], metavar="REV,...",
                        help="run the crawl variants at these commits (git worktrees under "
                        "/tmp) instead of the working tree")  # fmt: skip
    parser.add_argument("--write-readme", action="store_true",
                        help="put the table in README.md (with --at: the A/B table, between "
                        f"{AT_START} and {AT_END})")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=RUN_TIMEOUT, help="seconds per run")
    parser.add_argument("--json", type=Path, help="write every run's measurements here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if args.pages < 1 or args.repeats < 1:
        parser.error("--pages and --repeats must be at least 1")

    harness.exit_on_sigterm()
    header = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": harness.machine(),
        "command": shlex.join([_relative(sys.executable), *sys.argv]),
        "versions": "",
        "load": "",
    }
    processes = harness.LaunchedProcesses()
    runs: list[Run] = []
    work = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    expected = 0
    variants: list[str] = args.only
    revs: dict[str, Rev] = {}  # bound before the worktrees are: report() reads it

    def report() -> dict[str, Any]:
        return {
            "revs": {short: {**asdict(rev), "path": str(rev.path)} for short, rev in revs.items()},
            "runs": [{**asdict(r), "ok": r.ok} for r in runs],
        }

    session = harness.Session(
        processes,
        header,
        work,
        loads=lambda: [r.load1 for r in runs],
        report=report,
        json_path=args.json,
        keep=args.keep,
    )
    with session, worktrees(args.at) as made:
        revs.update(made)
        variants = at_variants(args.only, revs) if revs else args.only
        bench = prepare(work, args.pages, variants, args.timeout)
        bench.revs = revs
        expected = len(bench.expected)
        header["versions"] = versions(bench)
        for key in ("date", "machine", "versions", "command"):
            print(f"{key}: {header[key]}", file=sys.stderr)
        try:
            harness.measure_all(
                runs,
                args.repeats,
                variants,
                lambda variant, repetition: measure(processes, bench, variant, repetition),
                describe,
                rotate=True,
            )
        finally:
            processes.stop_all()  # before the worktrees they may run in go
    if session.code is not None:
        return session.code
    about = harness.about(header, args.pages, expected, args.repeats)
    text = f"{about}\n\n{table(runs, variants)}"
    ab = ab_table(runs, variants, revs) if revs else ""
    code = harness.print_results(f"{text}\n\n{ab}" if ab else text, runs, lambda r: r.variant)
    if args.write_readme and ab:  # with --at: the A/B table, in a section of its own
        write_readme(f"{about}\n\n{ab}", AT_START, AT_END)
    elif args.write_readme:
        write_readme(text)
        print(f"wrote the table to {README}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
