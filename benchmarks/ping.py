"""Ping speed: how long does ``crawl ping`` take for 1,000 URLs on a loopback server?

    .venv/bin/python benchmarks/ping.py [--urls 1000] [--repeats 5] [--concurrency 64] [--json FILE]

It starts the generated shop (``benchmarks/site.py``) in its own process, writes
N distinct product URLs (``/p/{i}.html``) to a temporary file, and warms the
site's page cache with one untimed pass. Then, for each repetition, it runs every
engine in turn (aiohttp, threads, futures, baseline, aiohttp, ...) as a child,
``python -m crawler ping --from FILE --json --engine E --concurrency C``, and
measures:

- wall time from spawn to exit (interpreter start included) and URLs/s;
- net time: that wall time minus the wall time of the same command for one URL,
  run just before it. What is left is roughly the checks themselves, without the
  interpreter start and imports that a 1-URL ping pays too;
- user + sys CPU seconds of that one child, from ``os.wait4(pid)``;
- correctness: exit code 0, and exactly one JSON line per URL, each ``ok`` with
  status 200, none missing, none twice, none extra.

The baseline row is ``python benchmarks/ping.py --baseline FILE``: the same URLs
fetched with one bare ``aiohttp.ClientSession`` and a ``Semaphore(C)``, so the
table shows how much the crawler adds on top of the client it uses.

It prints a markdown table of medians and each engine's ratio to the baseline.
Every process it starts is stopped by its pid on success, failure, timeout and
Ctrl-C; the exit status is 1 when a run failed a check.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import harness  # benchmarks/harness.py: run as a script, this folder is first on sys.path

THIS_SCRIPT = Path(__file__).resolve()
ENGINES = ("aiohttp", "threads", "futures")
BASELINE = "baseline"
RUN_TIMEOUT = 120.0  # seconds per ping


@dataclass
class Run:
    engine: str  # an engine name, or "baseline"
    repetition: int
    urls: int
    wall_s: float = 0.0  # spawn to exit, N URLs
    startup_s: float = 0.0  # spawn to exit, 1 URL: interpreter, imports and one request
    net_s: float = 0.0  # wall_s - startup_s
    cpu_s: float = 0.0  # user + sys of the N-URL child
    exit_code: int | None = None
    results: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Child:
    """What ``timed`` saw of one child: the rusage is that one process's, from wait4."""

    wall_s: float
    cpu_s: float
    exit_code: int | None
    timed_out: bool


# the baseline: what a bare aiohttp client does with the same URLs ---------------------------


def baseline(url_file: Path, concurrency: int) -> int:
    """Fetch every URL with one ClientSession, as the aiohttp engine bounds it (a
    semaphore and a connector limit of C); print ``{"url", "status", "size"}`` lines."""
    import asyncio

    import aiohttp

    urls = [line.strip() for line in url_file.read_text(encoding="utf-8").splitlines()]
    urls = [url for url in urls if url]

    async def fetch_all() -> list[dict[str, Any]]:
        semaphore = asyncio.Semaphore(concurrency)
        connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def fetch(url: str) -> dict[str, Any]:
                async with semaphore, session.get(url) as response:
                    body = await response.read()
                    return {"url": url, "status": response.status, "size": len(body)}

            return await asyncio.gather(*(fetch(url) for url in urls))

    results = asyncio.run(fetch_all())
    sys.stdout.write("".join(json.dumps(result) + "\n" for result in results))
    return 0 if all(result["status"] == 200 for result in results) else 1


# one measurement ---------------------------------------------------------------------------


def command(engine: str, url_file: Path, concurrency: int) -> list[str]:
    if engine == BASELINE:
        return [sys.executable, str(THIS_SCRIPT), "--baseline", str(url_file),
                "--concurrency", str(concurrency)]  # fmt: skip
    return [sys.executable, "-m", "crawler", "ping", "--from", str(url_file), "--json",
            "--engine", engine, "--concurrency", str(concurrency)]  # fmt: skip


def timed(processes: harness.Processes, args: list[str], out: Path, timeout: float) -> Child:
    """Run ARGS with stdout and stderr in files (a pipe would fill up and stall it)
    and reap it with ``os.wait4``, which gives that one child's CPU time.

    A pidfd wakes this harness the moment the child exits, so the wall time has no
    polling slack.
    """
    with out.open("wb") as stdout, out.with_suffix(".err").open("wb") as stderr:
        started = time.perf_counter()
        child = processes.start(args, stdout=stdout, stderr=stderr, cwd=harness.ROOT)
    pidfd = os.pidfd_open(child.pid)
    try:
        exited = bool(select.select([pidfd], [], [], timeout)[0])
    finally:
        os.close(pidfd)
    if not exited:
        processes.stop(child)
        return Child(time.perf_counter() - started, 0.0, child.returncode, timed_out=True)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait
    return Child(wall, usage.ru_utime + usage.ru_stime, child.returncode, timed_out=False)


def check(run: Run, out: Path, urls: list[str], child: Child) -> None:
    """Exit 0 and exactly one line per URL, each ok with status 200."""
    if child.timed_out:
        run.problems.append(f"timed out after {child.wall_s:.1f} s: stopped")
    if child.exit_code != 0:
        run.problems.append(f"exited with {child.exit_code}")
    seen: Counter[str] = Counter()
    bad: list[str] = []
    for line in out.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            run.problems.append(f"not a JSON line: {line[:200]!r}")
            continue
        seen[record.get("url")] += 1
        if record.get("status") != 200 or record.get("ok", True) is not True:
            bad.append(f"{record.get('url')}: {record.get('status')} {record.get('reason', '')}")
    run.results = sum(seen.values())
    if run.results != len(urls):
        run.problems.append(f"{run.results} results for {len(urls)} URLs")
    twice = sorted(url for url, n in seen.items() if n > 1)
    missing = sorted(set(urls) - seen.keys())
    extra = sorted(seen.keys() - set(urls))
    for label, found in (("twice", twice), ("missing", missing), ("extra", extra), ("bad", bad)):
        if found:
            run.problems.append(f"{len(found)} URLs {label}, e.g. {found[:3]}")
    if run.problems:
        tail = out.with_suffix(".err").read_text(errors="replace")[-1500:].strip()
        if tail:
            run.problems.append(f"stderr tail: {tail}")


def measure(
    processes: harness.Processes,
    engine: str,
    repetition: int,
    urls: list[str],
    work: Path,
    args: Any,
) -> Run:
    """The 1-URL run first (startup plus one request), then the N-URL run."""
    run = Run(engine, repetition, len(urls))
    out = work / f"{engine}-{repetition}.jsonl"
    one = timed(processes, command(engine, work / "one.txt", args.concurrency), out, args.timeout)
    check(run, out, urls[:1], one)
    many = command(engine, work / "urls.txt", args.concurrency)
    child = timed(processes, many, out, args.timeout)
    run.exit_code = child.exit_code
    check(run, out, urls, child)
    run.startup_s, run.wall_s, run.cpu_s = one.wall_s, child.wall_s, child.cpu_s
    run.net_s = run.wall_s - run.startup_s
    return run


# report ------------------------------------------------------------------------------------


def describe(run: Run) -> str:
    return (
        f"{run.engine:>8}: {run.results:,} results, wall {run.wall_s:.2f} s, "
        f"1 URL {run.startup_s:.2f} s, net {run.net_s:.2f} s, CPU {run.cpu_s:.2f} s"
    )


def table(runs: list[Run], engines: list[str], urls: int) -> str:
    base = [r for r in runs if r.engine == BASELINE]
    base_wall = statistics.median(r.wall_s for r in base) if base else 0.0
    base_net = statistics.median(r.net_s for r in base) if base else 0.0
    lines = [
        "| engine | runs ok | wall, s (median) | net, s (median) | URLs/s | CPU, s (median) "
        "| wall / baseline | net / baseline |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for engine in engines:
        group = [r for r in runs if r.engine == engine]
        if not group:
            continue
        wall = statistics.median(r.wall_s for r in group)
        net = statistics.median(r.net_s for r in group)
        name = "bare aiohttp gather (baseline)" if engine == BASELINE else f"`{engine}`"
        wall_ratio = f"{wall / base_wall:.2f}" if base_wall > 0 else "-"
        net_ratio = f"{net / base_net:.2f}" if base_net > 0 else "-"
        lines.append(
            f"| {name} | {sum(r.ok for r in group)}/{len(group)} | {wall:.2f} | {net:.2f} "
            f"| {urls / wall:,.0f} | {statistics.median(r.cpu_s for r in group):.2f} "
            f"| {wall_ratio} | {net_ratio} |"
        )
    return "\n".join(lines)


def _relative(path: str) -> str:
    """``.venv/bin/python`` rather than the absolute path, when it is under the cwd."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", type=int, default=1000, help="URLs to ping (default 1000)")
    parser.add_argument("--repeats", type=int, default=5, help="repetitions per engine")
    parser.add_argument("--concurrency", type=int, default=64, help="checks in flight at once")
    parser.add_argument("--timeout", type=float, default=RUN_TIMEOUT, help="seconds per ping")
    parser.add_argument("--json", type=Path, help="write every run's measurements here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--baseline", type=Path, metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline is not None:
        return baseline(args.baseline, args.concurrency)
    if args.urls < 1 or args.repeats < 1 or args.concurrency < 1:
        parser.error("--urls, --repeats and --concurrency must be at least 1")

    harness.exit_on_sigterm()
    engines = [*ENGINES, BASELINE]
    header = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": harness.machine(),
        "command": shlex.join([_relative(sys.executable), *sys.argv]),
    }
    for key, value in header.items():
        print(f"{key}: {value}", file=sys.stderr)
    processes = harness.Processes()
    runs: list[Run] = []
    work = Path(tempfile.mkdtemp(prefix="bench-ping-"))
    try:
        _, port = harness.start_site(processes, args.urls, work)
        urls = [f"http://127.0.0.1:{port}/p/{i}.html" for i in range(args.urls)]
        (work / "urls.txt").write_text("".join(url + "\n" for url in urls), encoding="utf-8")
        (work / "one.txt").write_text(urls[0] + "\n", encoding="utf-8")
        # Untimed: the site generates each page on first request, then serves it from
        # its cache; every timed run should meet the same, warm server.
        warm = Run(BASELINE, -1, len(urls))
        child = timed(processes, command(BASELINE, work / "urls.txt", args.concurrency),
                      work / "warm.jsonl", args.timeout)  # fmt: skip
        check(warm, work / "warm.jsonl", urls, child)
        if not warm.ok:
            raise RuntimeError("warm-up failed: " + "; ".join(warm.problems))
        harness.measure_all(
            runs,
            args.repeats,
            engines,
            lambda engine, repetition: measure(processes, engine, repetition, urls, work, args),
            describe,
        )
    except KeyboardInterrupt:
        print("interrupted: stopping the processes started", file=sys.stderr)
        return 130
    except RuntimeError as exc:  # the site or the warm-up: nothing to measure against
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        processes.stop_all()
        if args.json is not None and runs:
            report = {**header, "runs": [asdict(r) for r in runs]}
            args.json.write_text(json.dumps(report, indent=2) + "\n")
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"- Date: {header['date']}\n- Machine: {header['machine']}")
    print(f"- Command: `{header['command']}`\n")
    print(table(runs, engines, args.urls))
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
