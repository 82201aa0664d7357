"""Rendering in headless Chromium: pages/s and peak RSS (browser processes included)
of a crawl that renders every page, one that renders only shells, and one that renders
nothing, on a site where one page in ten is built by script.

    .venv/bin/python benchmarks/browser.py [--pages 500] [--repeats 3] [--json FILE]
        [--only never,auto,browser] [--keep] [--timeout 900]

The site is static files behind nginx (``nginx.py``): ``/`` and ``/p/<i>.html`` for
i < PAGES, page i linking to pages 2i+1 and 2i+2, so every page is reachable from
``/``. Page i with i % 10 == 9 is a shell (an empty ``<div id="root">`` and
``/app.js``, which fetches ``/api/<i>.json`` and builds the title, about 2 KB of text and
the links); every other page carries its title, the same text and its links in the
HTML, as a server renders it. Variants, each ``python -m crawler CONFIG --quiet``
under ``harness.launch`` (wall time, the CPU of the crawl process and of the processes
it reaped, and the peak RSS and PSS of its whole process tree, Playwright's driver and
Chromium's processes included: summed RSS counts the pages Chromium's processes share
once per process, PSS counts each once):

- ``never``: ``engine = "aiohttp"``: the pages below a shell stay unfound;
- ``auto``: ``render = "auto"``: every page, the shells rendered;
- ``browser``: ``engine = "browser"``: every page, every one rendered.

All three: the ``generic`` site, robots.txt obeyed, no rate limit, 16 requests in
flight, the ``[browser]`` defaults (4 pages at once, ``networkidle``, images, fonts and
media blocked, a fresh browser every 500 pages). Checks: exit 0, no error, the pages
found and rendered are exactly the expected ones, and each shell's item has the title
its script sets. Prints medians; exit status 1 if a check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import harness
import nginx

VARIANTS = {
    "never": 'engine = "aiohttp"',
    "auto": 'engine = "aiohttp"\nrender = "auto"',
    "browser": 'engine = "browser"',
}
RUN_TIMEOUT = 900.0
TEXT = "<p>" + "A paragraph that a server would have rendered into the page. " * 32 + "</p>"
APP_JS = """
const number = location.pathname.match(/(\\d+)\\.html$/)[1];
fetch(`/api/${number}.json`).then((r) => r.json()).then((page) => {
  document.title = page.title;
  const root = document.getElementById("root");
  root.innerHTML = page.html;
});
"""


def is_shell(number: int) -> bool:
    return number % 10 == 9


def title(number: int) -> str:
    return f"Page {number}"


def write_site(root: Path, pages: int) -> None:
    (root / "p").mkdir(parents=True)
    (root / "api").mkdir()
    (root / "app.js").write_text(APP_JS, encoding="utf-8")
    (root / "robots.txt").write_text("User-agent: *\nAllow: /\n", encoding="utf-8")
    shell = ('<!doctype html><html><head><title>Loading</title><script src="/app.js" defer>'
             '</script></head><body><div id="root"></div></body></html>')  # fmt: skip
    (root / "index.html").write_text(
        f'<!doctype html><html><head><title>Home</title></head><body>{TEXT}'
        '<a href="/p/0.html">start</a></body></html>', encoding="utf-8",
    )  # fmt: skip
    for number in range(pages):
        links = "".join(f'<a href="/p/{n}.html">page {n}</a> '
                        for n in (2 * number + 1, 2 * number + 2) if n < pages)  # fmt: skip
        html = f"<h1>{title(number)}</h1>{TEXT}<nav>{links}</nav>"
        if is_shell(number):
            api = {"title": title(number), "html": html}
            (root / "api" / f"{number}.json").write_text(json.dumps(api), encoding="utf-8")
            page = shell
        else:
            page = (f"<!doctype html><html><head><title>{title(number)}</title></head>"
                    f"<body>{html}</body></html>")  # fmt: skip
        (root / "p" / f"{number}.html").write_text(page, encoding="utf-8")


def expected_pages(pages: int, variant: str) -> set[int]:
    """The pages a variant finds: without rendering, none below a shell."""
    if variant != "never":
        return set(range(pages))
    found, todo = set(), [0]
    while todo:
        number = todo.pop()
        if number >= pages:
            continue
        found.add(number)
        if not is_shell(number):
            todo += [2 * number + 1, 2 * number + 2]
    return found


@dataclass
class Run:
    variant: str
    repetition: int
    load1: float = 0.0
    exit_code: int | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_kib: int = 0
    peak_pss_kib: int = 0
    processes: int = 0
    pages: int = 0
    rendered: int = 0
    duration_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.duration_s if self.duration_s else 0.0


@dataclass
class Bench:
    work: Path
    pages: int
    port: int
    nginx_binary: str
    config: Path
    timeout: float


def write_crawl_config(bench: Bench, variant: str, folder: Path) -> Path:
    path = folder / "crawl.toml"
    path.write_text(f"""[crawl]
start_urls = ["http://127.0.0.1:{bench.port}/"]
site = "generic"
sitemaps = false

[fetch]
{VARIANTS[variant]}
concurrency = 16

[rate_limit]
per_host = ""

[output]
dir = "{folder / "out"}"
""", encoding="utf-8")  # fmt: skip
    return path


def check(run: Run, bench: Bench, folder: Path) -> None:
    out = folder / "out"
    if run.exit_code != 0:
        run.problems.append(f"exit code {run.exit_code}")
        return
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    run.pages, run.rendered = stats["pages"], stats["rendered"]
    run.duration_s = stats["duration_s"]
    if stats["errors"]:
        run.problems.append(f"errors: {stats['errors']}")
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    found = {int(i["url"].rsplit("/", 1)[1][:-5]): i for i in items if "/p/" in i["url"]}
    expected = expected_pages(bench.pages, run.variant)
    if set(found) != expected:
        run.problems.append(f"found {len(found)} pages, expected {len(expected)}")
    shells = {n for n in expected if is_shell(n)}
    rendered = {n for n, item in found.items() if item.get("rendered")}
    want = {"never": set(), "auto": shells, "browser": expected}[run.variant]
    if rendered != want:
        run.problems.append(f"rendered {len(rendered)} pages, expected {len(want)}")
    wrong = [n for n in shells & set(found) if found[n]["title"] != title(n)]
    if run.variant != "never" and wrong:
        run.problems.append(f"{len(wrong)} shells without their scripted title")


def measure(processes: harness.LaunchedProcesses, bench: Bench, variant: str,
            repetition: int) -> Run:  # fmt: skip
    run = Run(variant, repetition, load1=os.getloadavg()[0])
    folder = bench.work / "runs" / f"{variant}-{repetition}"
    folder.mkdir(parents=True)
    config = write_crawl_config(bench, variant, folder)
    command = [sys.executable, "-m", "crawler", str(config), "--quiet"]
    server = nginx.start(processes, bench.nginx_binary, bench.config, bench.port)
    try:
        usage = harness.launch(processes, command, folder / "run.log", bench.timeout, pss=True)
    finally:
        nginx.stop(processes, server)
    run.exit_code, run.wall_s, run.cpu_s = usage.exit_code, usage.wall_s, usage.cpu_s
    run.peak_rss_kib, run.processes = usage.peak_rss_kib, usage.tree_processes
    run.peak_pss_kib = usage.tree_pss_kib
    check(run, bench, folder)
    if run.problems:
        tail = (folder / "run.log").read_text(errors="replace")[-1500:].strip()
        run.problems += [f"log tail: {tail}"] if tail else []
    return run


def describe(run: Run) -> str:
    return (f"{run.variant:>7}: {run.pages} pages ({run.rendered} rendered), "
            f"{run.pages_per_s:.1f} pages/s, wall {run.wall_s:.1f} s, CPU {run.cpu_s:.1f} s, "
            f"peak RSS {run.peak_rss_kib / 1024:.0f} MiB (PSS {run.peak_pss_kib / 1024:.0f}) "
            f"over {run.processes} processes, "
            f"load {run.load1:.2f}")  # fmt: skip


def table(runs: list[Run]) -> str:
    lines = ["| variant | pages | rendered | pages/s | wall, s | crawl CPU, s "
             "| peak RSS (tree), MiB | peak PSS (tree), MiB | processes | runs ok |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for variant in VARIANTS:
        group = [r for r in runs if r.variant == variant]
        if not group:
            continue

        def median(key: str, group: list[Run] = group) -> float:
            return statistics.median(float(getattr(r, key)) for r in group)

        ok = sum(not r.problems for r in group)
        lines.append(
            f"| {variant} | {median('pages'):.0f} | {median('rendered'):.0f} "
            f"| {median('pages_per_s'):.1f} | {median('wall_s'):.1f} | {median('cpu_s'):.1f} "
            f"| {median('peak_rss_kib') / 1024:.0f} | {median('peak_pss_kib') / 1024:.0f} "
            f"| {max(r.processes for r in group)} "
            f"| {ok}/{len(group)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.run_options(parser, pages=500, timeout=RUN_TIMEOUT)
    parser.add_argument("--only", type=lambda text: text.split(","), default=list(VARIANTS),
                        help=f"comma-separated variants of: {', '.join(VARIANTS)}")  # fmt: skip
    args = parser.parse_args(argv)
    if not set(args.only) <= set(VARIANTS):
        parser.error(f"--only: variants are {', '.join(VARIANTS)}")
    if args.pages < 1 or args.repeats < 1:
        parser.error("--pages and --repeats must be at least 1")
    harness.exit_on_sigterm()
    header = harness.header(["python", *sys.argv])
    processes = harness.LaunchedProcesses()
    runs: list[Run] = []
    work = Path(tempfile.mkdtemp(prefix="bench-browser-"))
    session = harness.Session(
        processes, header, work, loads=lambda: [r.load1 for r in runs],
        report=lambda: {"runs": [asdict(r) for r in runs]}, json_path=args.json, keep=args.keep,
    )  # fmt: skip
    with session:
        work.chmod(0o755)  # mkdtemp's 0700 would keep nginx's worker (www-data) out
        write_site(work / "site", args.pages)
        port = nginx.free_port()
        config = nginx.write_config(work / "nginx", work / "site", port)
        bench = Bench(work, args.pages, port, nginx.ensure_nginx(), config, args.timeout)
        harness.measure_all(
            runs, args.repeats, args.only,
            lambda variant, repetition: measure(processes, bench, variant, repetition),
            describe, rotate=True,
        )  # fmt: skip
    if session.code is not None:
        return session.code
    text = "\n".join([f"- Date: {header['date']}", f"- Machine: {header['machine']}",
                      f"- Load: {header['load']}", f"- Command: `{header['command']}`",
                      f"- {args.pages} pages, {args.repeats} run(s) per variant; medians",
                      "", table(runs)])  # fmt: skip
    return harness.print_results(text, runs, lambda r: r.variant)


if __name__ == "__main__":
    sys.exit(main())
