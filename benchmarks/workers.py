"""Pages/s of one crawl shared by 1, 2 and 3 workers through Redis, on one nginx site.

    .venv/bin/python benchmarks/workers.py [--pages 20000] [--repeats 3] [--workers 1,2,3]
        [--json FILE] [--keep] [--timeout 600]

README.md, "Many workers": ``crawl CONFIG --workers N`` shares one crawl through a
Redis frontier, one worker process per core. One process of the crawler keeps about
1.3 cores busy (``compare.py``), so on a 2-core machine a second worker can buy at
most a little, and a third nothing; this measures how much, and what runs out.

It writes the generated shop (``site.py``) once as static files served by nginx, as
``compare.py`` does, with the fetch settings of its ``crawl-aiohttp-shop`` (aiohttp,
``site = "shop"``, robots obeyed, 64 in flight, 64 per host, no rate limit), and runs,
alternating and with the order rotated every repetition:

- ``sqlite``: ``crawl CONFIG`` with the default SQLite frontier, for reference;
- ``redis-N``: ``crawl CONFIG --workers N`` with ``[state] frontier = "redis://..."``,
  against a ``redis-server`` of its own (fresh for every run, nothing persisted, a
  free port of 127.0.0.1) and a crawl name of its own.

Measured per run: wall time and CPU (user + sys) of the launched process with every
child it waited for (the workers), from ``harness.launch``'s launcher; peak RSS of the
process tree (sampled sum); the CPU of every thread of the tree, sampled from ``/proc``
(the event loop is the main thread; the parse threads, SQLite's thread and
``to_thread`` are the others: Python 3.11 names no thread); the Redis server's CPU and
commands (``INFO`` before and after); nginx's worker CPU; and how busy the machine's
cores were (``/proc/stat``). Every run must find exactly ``expected_urls``, once, over
all the workers' ``items-*.jsonl`` (``compare.check``, which also reads nginx's access
log: each page fetched once, nothing under ``/private/``, no other host name), exit 0,
and ``crawl status --json`` must say ``finished``, with no errors. Every process is
stopped by its pid (a launcher's process group: the workers) on success, failure,
timeout and Ctrl-C; the exit status is 1 if any run failed a check.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import compare
import harness  # benchmarks/harness.py: run as a script, this folder is first on sys.path
import nginx
import redis

HERE = Path(__file__).resolve().parent
SQLITE = "sqlite"
RUN_TIMEOUT = 600.0  # seconds per run
THREAD_POLL = 0.1  # seconds between samples of every thread's CPU
REDIS_START = 10.0  # seconds for redis-server to answer PING
TICKS = os.sysconf("SC_CLK_TCK")


def variant_name(workers: int) -> str:
    return f"redis-{workers}"


def workers_of(variant: str) -> int:
    """Worker processes of VARIANT: 0 for the single-process SQLite crawl."""
    return 0 if variant == SQLITE else int(variant.rsplit("-", 1)[1])


@dataclass
class Run(compare.Run):
    workers: int = 0  # 0: the SQLite frontier, one process
    redis_cpu_s: float = 0.0  # used_cpu_user + used_cpu_sys of redis-server during the crawl
    redis_commands: int = 0  # commands Redis processed during the crawl
    redis_peak_kib: int = 0  # used_memory_peak
    redis_calls: dict[str, int] = field(default_factory=dict)  # command -> calls
    loop_cpu_s: float = 0.0  # main threads (event loops) of the crawling processes, sampled
    threads_cpu_s: float = 0.0  # every other thread of the crawling processes, sampled
    parent_cpu_s: float = 0.0  # --workers N: the process that starts and waits for the workers
    busiest_loop: float = 0.0  # the busiest event loop's CPU / wall
    machine_busy: float = 0.0  # cores busy on the whole machine during the run
    items_per_worker: dict[str, int] = field(default_factory=dict)  # items file -> lines
    finished: bool = False  # crawl status --json

    @property
    def sampled_cpu_s(self) -> float:
        return self.loop_cpu_s + self.threads_cpu_s + self.parent_cpu_s

    @property
    def all_cpu_s(self) -> float:
        """The crawl's processes, Redis and nginx: everything the crawl kept busy."""
        return self.cpu_s + self.redis_cpu_s + self.nginx_cpu_s

    @property
    def cores(self) -> float:
        """Cores the crawl kept busy on average: all its CPU over the wall time."""
        return self.all_cpu_s / self.wall_s if self.wall_s else 0.0

    def per_page(self, seconds: float) -> float:
        """SECONDS of CPU as ms per page found."""
        return 1000 * seconds / self.found if self.found else 0.0

    def ms_per_page(self) -> dict[str, float]:
        """CPU ms per page of each part of the crawl, and Redis commands per page."""
        return {
            "loops": self.per_page(self.loop_cpu_s),
            "threads": self.per_page(self.threads_cpu_s),
            "parent": self.per_page(self.parent_cpu_s),
            "redis": self.per_page(self.redis_cpu_s),
            "nginx": self.per_page(self.nginx_cpu_s),
            "all": self.per_page(self.all_cpu_s),
            "commands": self.redis_commands / self.found if self.found else 0.0,
        }


class Processes(harness.LaunchedProcesses):
    """A child registered with ``group`` gets its SIGTERM as a process group.

    ``crawl --workers N`` does not pass SIGTERM on to its workers: signalled alone,
    it would die and leave them running. Its launcher leads the group they are in.
    """

    def stop(self, child: subprocess.Popen[bytes], grace: float = 10.0) -> None:
        if child.pid in self.groups and child.poll() is None:  # unreaped: still its group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
        super().stop(child, grace)


# sampling ----------------------------------------------------------------------------------


def _ticks(pid: int, tid: int) -> int | None:
    """utime + stime of one thread, in clock ticks; None when it is gone."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None


class ThreadCpu:
    """The CPU of every thread of PID and its descendants, sampled every ``THREAD_POLL``
    seconds until ``stop``; a thread's last sample stands for it after it is gone.
    PID counts only while its parent is PARENT (a reused pid is not measured)."""

    def __init__(self, pid: int, parent: int) -> None:
        self.pid, self.parent = pid, parent
        self.ticks: dict[tuple[int, int], int] = {}  # (pid, tid) -> ticks so far
        self.parents: dict[int, int] = {}  # pid -> its parent's pid
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"cpu-{pid}", daemon=True)

    def __enter__(self) -> ThreadCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stopped.wait(THREAD_POLL):
                return

    def sample(self) -> None:
        if harness._status(self.pid).get("PPid", "").strip() != str(self.parent):
            return
        todo = [(self.pid, self.parent)]
        while todo:
            pid, parent = todo.pop()
            self.parents[pid] = parent
            with contextlib.suppress(OSError):
                for task in os.listdir(f"/proc/{pid}/task"):
                    ticks = _ticks(pid, int(task))
                    if ticks is not None:
                        self.ticks[pid, int(task)] = ticks
            todo.extend((child, pid) for child in harness._children(pid))

    def seconds(self, pids: set[int], main: bool) -> float:
        """CPU seconds of the main threads (MAIN) or the other threads of PIDS."""
        return sum(
            ticks for (pid, tid), ticks in self.ticks.items()
            if pid in pids and (tid == pid) == main
        ) / TICKS  # fmt: skip

    def main_thread(self, pid: int) -> float:
        return self.ticks.get((pid, pid), 0) / TICKS


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of every core so far, from the first line of /proc/stat."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(v) for v in stat.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = values
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def launch(
    processes: Processes, command: list[str], log: Path, timeout: float
) -> tuple[harness.Usage, ThreadCpu]:
    """``harness.launch``, with the CPU of every thread sampled too. On a timeout the
    launcher's whole process group (the crawl and its workers) gets SIGTERM."""
    launcher = processes.start(
        [sys.executable, "-I", "-S", "-c", harness.RUSAGE_LAUNCHER, str(log), *command],
        stdout=subprocess.PIPE, cwd=harness.ROOT,
    )  # fmt: skip
    processes.group(launcher)
    pid = int(harness.read_line(launcher, "the launcher"))
    processes.adopt(launcher, pid)
    usage = harness.Usage()
    deadline = time.monotonic() + timeout
    with harness.TreeRss(pid, parent=launcher.pid) as rss, ThreadCpu(pid, launcher.pid) as cpu:
        try:
            launcher.wait(max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            usage.timed_out = True
            processes.stop(launcher)
    usage.tree_rss_kib, usage.tree_processes, usage.tree_samples = (
        rss.peak_kib, rss.processes, rss.samples
    )  # fmt: skip
    assert launcher.stdout is not None
    result = launcher.stdout.read().split()
    if len(result) == 5:
        usage.exit_code, usage.max_rss_kib = int(result[0]), int(result[1])
        usage.user_s, usage.sys_s, usage.wall_s = map(float, result[2:])
    else:
        usage.exit_code = launcher.returncode
    return usage, cpu


# Redis -------------------------------------------------------------------------------------


def start_redis(
    processes: Processes, binary: str, folder: Path
) -> tuple[subprocess.Popen[bytes], redis.Redis, str]:
    """A fresh ``redis-server`` on a free port of 127.0.0.1, nothing persisted, its
    files in FOLDER (as ``tests/redis_server.py`` starts one): the process, a client
    and its URL, once it answers."""
    port = nginx.free_port()
    args = [binary, "--port", str(port), "--bind", nginx.HOST, "--save", "", "--appendonly",
            "no", "--dir", str(folder), "--daemonize", "no", "--loglevel", "warning"]  # fmt: skip
    with (folder / "redis.log").open("wb") as log:
        server = processes.start(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    client = redis.Redis(host=nginx.HOST, port=port, socket_timeout=5, decode_responses=True)
    deadline = time.monotonic() + REDIS_START
    while True:
        if server.poll() is not None:
            tail = (folder / "redis.log").read_text(errors="replace")[-800:]
            raise RuntimeError(f"redis-server exited with {server.returncode}: {tail}")
        with contextlib.suppress(redis.ConnectionError):
            if client.ping():
                return server, client, f"redis://{nginx.HOST}:{port}/0"
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not answer PING in {REDIS_START:.0f} s")
        time.sleep(0.02)


def redis_counters(client: redis.Redis) -> dict[str, Any]:
    """CPU seconds, commands processed, peak memory and calls per command, now."""
    info = client.info("everything")
    calls = {
        key.removeprefix("cmdstat_"): int(value["calls"])
        for key, value in info.items()
        if key.startswith("cmdstat_")
    }
    return {
        "cpu": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
        "commands": int(info["total_commands_processed"]),
        "peak": int(info["used_memory_peak"]) // 1024,
        "calls": calls,
    }


# one run -----------------------------------------------------------------------------------


def write_config(folder: Path, bench: compare.Bench, frontier: str, name: str) -> Path:
    """compare.py's ``crawl-aiohttp-shop`` config, with FRONTIER and a crawl NAME."""
    state = f'frontier = "{frontier}"\nname = "{name}"'
    return compare.write_crawl_config(folder, bench, "aiohttp", "shop", 1, None, state)


def merge_items(folder: Path, run: Run) -> None:
    """Every items file of the crawl (``items.jsonl``, or one ``items-<worker>.jsonl``
    per worker) into FOLDER/items.jsonl, which ``compare.check`` reads as it reads a
    feed of Scrapy's."""
    with (folder / "items.jsonl").open("wb") as merged:
        for path in sorted((folder / "out").glob("items*.jsonl")):
            data = path.read_bytes()
            run.items_per_worker[path.name] = data.count(b"\n")
            merged.write(data)


def crawl_status(config: Path) -> dict[str, Any]:
    """``crawl status CONFIG --json``: the shared counts (Redis) or stats.json (SQLite)."""
    result = subprocess.run(
        [sys.executable, "-m", "crawler", "status", str(config), "--json"],
        capture_output=True, text=True, cwd=harness.ROOT, timeout=60, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"crawl status exited with {result.returncode}: {result.stderr}")
    status: dict[str, Any] = json.loads(result.stdout)
    return status


def check_status(run: Run, expected: int) -> None:
    """Finished, every page an item, no errors, and (Redis) every worker crawled."""
    stats = run.stats
    run.finished = bool(stats.get("finished"))
    if not run.finished:
        run.problems.append("crawl status: not finished")
    if stats.get("items") != expected:
        run.problems.append(f"crawl status: {stats.get('items')} items, not {expected}")
    if stats.get("errors"):
        run.problems.append(f"crawl status: errors {stats['errors']}")
    files = len(run.items_per_worker)
    if files != max(run.workers, 1):
        run.problems.append(f"{files} items files for {max(run.workers, 1)} worker(s)")


def measure(
    processes: Processes, bench: compare.Bench, redis_binary: str, variant: str, repetition: int
) -> Run:
    """One run against a fresh nginx (its access log is this run's alone) and, for the
    Redis variants, a fresh redis-server."""
    run = Run(variant, repetition, workers=workers_of(variant), load1=os.getloadavg()[0])
    folder = bench.work / "runs" / f"{variant}-{repetition}"
    folder.mkdir(parents=True)
    server: subprocess.Popen[bytes] | None = None
    client: redis.Redis | None = None
    try:
        frontier = SQLITE
        if run.workers:
            server, client, frontier = start_redis(processes, redis_binary, folder)
        config = write_config(folder, bench, frontier, f"bench-{variant}-{repetition}")
        args = [sys.executable, "-m", "crawler", str(config), "--quiet"]
        if run.workers:
            args += ["--workers", str(run.workers)]
        web = nginx.start(processes, bench.nginx_binary, bench.config, bench.port)
        try:
            before = redis_counters(client) if client else None
            busy, total = machine_ticks()
            usage, cpu = launch(processes, args, folder / "run.log", bench.timeout)
            busy_after, total_after = machine_ticks()
            run.nginx_cpu_s = nginx.workers_cpu_s(web.pid)
            if client is not None and before is not None:
                after = redis_counters(client)
                run.redis_cpu_s = after["cpu"] - before["cpu"]
                run.redis_commands = after["commands"] - before["commands"]
                run.redis_peak_kib = after["peak"]
                calls = {k: n - before["calls"].get(k, 0) for k, n in after["calls"].items()}
                run.redis_calls = dict(sorted(calls.items(), key=lambda kv: -kv[1]))
        finally:
            nginx.stop(processes, web)
        for name in ("access.log", "error.log"):  # this run's alone
            log = bench.config.parent / name
            if log.exists():
                shutil.move(log, folder / name)
        record(run, usage, cpu, busy_after - busy, total_after - total)
        merge_items(folder, run)
        compare.check(run, bench, folder, usage)
        run.stats = crawl_status(config)
        check_status(run, len(bench.expected))
    finally:
        if server is not None:
            processes.stop(server)
        if client is not None:
            client.close()
    if run.problems:
        tail = (folder / "run.log").read_text(errors="replace")[-1500:].strip()
        if tail:
            run.problems.append(f"log tail: {tail}")
    return run


def record(run: Run, usage: harness.Usage, cpu: ThreadCpu, busy: int, total: int) -> None:
    """USAGE and the sampled CPU into RUN; BUSY and TOTAL are /proc/stat's ticks."""
    run.exit_code, run.wall_s = usage.exit_code, usage.wall_s
    run.peak_rss_kib, run.rss_main = usage.peak_rss_kib, usage.max_rss_kib
    run.rss_tree_sampled, run.processes = usage.tree_rss_kib, usage.tree_processes
    run.user_s, run.sys_s, run.cpu_s = usage.user_s, usage.sys_s, usage.cpu_s
    # With --workers N the launched process only starts and waits: its children crawl.
    crawling = {p for p, parent in cpu.parents.items() if parent == cpu.pid}
    if run.workers <= 1:
        crawling = {cpu.pid}
    else:
        run.parent_cpu_s = cpu.seconds({cpu.pid}, True) + cpu.seconds({cpu.pid}, False)
    run.loop_cpu_s = cpu.seconds(crawling, main=True)
    run.threads_cpu_s = cpu.seconds(crawling, main=False)
    if run.wall_s:
        run.busiest_loop = max((cpu.main_thread(p) for p in crawling), default=0) / run.wall_s
    run.machine_busy = (os.cpu_count() or 1) * busy / total if total else 0.0


# report ------------------------------------------------------------------------------------


def describe(run: Run) -> str:
    shares = "/".join(str(n) for n in run.items_per_worker.values())
    coverage = run.sampled_cpu_s / run.cpu_s if run.cpu_s else 0.0
    return (
        f"{run.variant:>8}: {run.found:,} pages ({shares}), {run.wall_s:.1f} s, "
        f"{run.pages_per_s:,.0f} pages/s, CPU {run.cpu_s:.1f} s "
        f"({run.cpu_ms_per_page:.2f} ms/page; sampled loops {run.loop_cpu_s:.1f}, threads "
        f"{run.threads_cpu_s:.1f}, parent {run.parent_cpu_s:.1f}: {coverage:.1%}), Redis CPU "
        f"{run.redis_cpu_s:.1f} s, nginx CPU {run.nginx_cpu_s:.1f} s, machine "
        f"{run.machine_busy:.2f} cores, RSS {run.peak_rss_kib / 1024:.0f} MiB "
        f"(tree of {run.processes}), load {run.load1:.2f}"
    )


def _median(values: Any) -> float:
    return statistics.median(float(v) for v in values)


def main_table(groups: dict[str, list[Run]], rates: dict[str, float]) -> list[str]:
    lines = [
        "| variant | workers | pages/s | pages/s, each run | wall, s | CPU ms/page "
        "| of which sys | peak RSS, MiB | Redis CPU, s | Redis CPU ms/page | nginx CPU, s "
        "| runs ok |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant, group in groups.items():
        each = ", ".join(f"{r.pages_per_s:,.0f}" for r in group)
        lines.append(
            f"| `{variant}` | {group[0].workers or '1 (SQLite)'} | {rates[variant]:,.0f} "
            f"| {each} | {_median(r.wall_s for r in group):.1f} "
            f"| {_median(r.cpu_ms_per_page for r in group):.2f} "
            f"| {_median(r.per_page(r.sys_s) for r in group):.2f} "
            f"| {_median(r.peak_rss_kib for r in group) / 1024:.0f} "
            f"| {_median(r.redis_cpu_s for r in group):.1f} "
            f"| {_median(r.per_page(r.redis_cpu_s) for r in group):.2f} "
            f"| {_median(r.nginx_cpu_s for r in group):.1f} "
            f"| {sum(r.ok for r in group)}/{len(group)} |"
        )
    return lines


def cpu_table(groups: dict[str, list[Run]]) -> list[str]:
    lines = [
        "| variant | event loops | other threads | `--workers` parent | Redis | nginx | sum "
        "| crawl's cores (sum ÷ wall) | machine busy, cores | busiest loop, % of wall "
        "| Redis commands/page |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant, group in groups.items():
        parts = [r.ms_per_page() for r in group]
        ms = {key: _median(p[key] for p in parts) for key in parts[0]}
        lines.append(
            f"| `{variant}` | {ms['loops']:.2f} | {ms['threads']:.2f} | {ms['parent']:.2f} "
            f"| {ms['redis']:.2f} | {ms['nginx']:.2f} | {ms['all']:.2f} "
            f"| {_median(r.cores for r in group):.2f} "
            f"| {_median(r.machine_busy for r in group):.2f} "
            f"| {100 * _median(r.busiest_loop for r in group):.0f} | {ms['commands']:.1f} |"
        )
    return lines


def tables(runs: list[Run], variants: list[str]) -> str:
    """The medians, where the CPU goes, and the scaling ratios, as markdown."""
    groups = {v: [r for r in runs if r.variant == v] for v in variants}
    groups = {v: group for v, group in groups.items() if group}
    rates = {v: _median(r.pages_per_s for r in group) for v, group in groups.items()}
    ratios = []
    for label, top, bottom in (
        ("2 workers / 1 worker", variant_name(2), variant_name(1)),
        ("3 workers / 1 worker", variant_name(3), variant_name(1)),
        ("1 Redis worker / SQLite single process", variant_name(1), SQLITE),
        ("2 workers / SQLite single process", variant_name(2), SQLITE),
    ):
        if rates.get(top) and rates.get(bottom):
            ratios.append(f"- {label}: **{rates[top] / rates[bottom]:.2f}**")
    return "\n".join(
        [
            *main_table(groups, rates),
            "",
            "CPU ms per page (medians): the sampled threads of the crawl's processes, and "
            "the servers. Redis commands include those its Lua scripts run; machine busy "
            "includes this harness's sampling.",
            "",
            *cpu_table(groups),
            "",
            "Ratios of median pages/s:",
            "",
            *ratios,
        ]
    )


def versions(bench: compare.Bench, redis_binary: str) -> str:
    server = subprocess.run([redis_binary, "--version"], capture_output=True, text=True)
    redis_v = next((f for f in server.stdout.split() if f.startswith("v=")), "v=?")[2:]
    return ", ".join(
        [
            compare.versions(bench),
            f"redis-server {redis_v}",
            f"redis-py {version('redis')}",
            f"uvloop {version('uvloop')}",
        ]
    )


def _workers(text: str) -> list[int]:
    try:
        counts = sorted({int(n) for n in text.split(",") if n.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError("worker counts must be at least 1")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=20000, help="product pages (default 20000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant (default 3)")
    parser.add_argument("--workers", type=_workers, default=[1, 2, 3], metavar="N,...",
                        help="worker counts to run with Redis (default 1,2,3)")  # fmt: skip
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite reference")
    parser.add_argument("--timeout", type=float, default=RUN_TIMEOUT, help="seconds per run")
    parser.add_argument("--json", type=Path, help="write every run's measurements here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if args.pages < 1 or args.repeats < 1:
        parser.error("--pages and --repeats must be at least 1")
    redis_binary = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin")
    if redis_binary is None:
        parser.error("redis-server is not installed (scripts/setup installs it)")

    harness.exit_on_sigterm()
    variants = [*([] if args.no_sqlite else [SQLITE]), *map(variant_name, args.workers)]
    header = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": harness.machine(),
        "command": shlex.join([compare._relative(sys.executable), *sys.argv]),
        "versions": "",
        "load": "",
    }
    processes = Processes()
    runs: list[Run] = []
    work = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    expected = 0
    session = harness.Session(
        processes,
        header,
        work,
        loads=lambda: [r.load1 for r in runs],
        report=lambda: {"runs": [{**asdict(r), "ok": r.ok} for r in runs]},
        json_path=args.json,
        keep=args.keep,
        errors=(redis.RedisError,),
    )
    with session:
        bench = compare.prepare(work, args.pages, variants, args.timeout)
        expected = len(bench.expected)
        header["versions"] = versions(bench, redis_binary)
        for key in ("date", "machine", "versions", "command"):
            print(f"{key}: {header[key]}", file=sys.stderr)
        harness.measure_all(
            runs,
            args.repeats,
            variants,
            lambda variant, repetition: measure(
                processes, bench, redis_binary, variant, repetition
            ),
            describe,
            rotate=True,
        )
    if session.code is not None:
        return session.code
    about = harness.about(header, args.pages, expected, args.repeats)
    return harness.print_results(f"{about}\n\n{tables(runs, variants)}", runs, lambda r: r.variant)


if __name__ == "__main__":
    sys.exit(main())
