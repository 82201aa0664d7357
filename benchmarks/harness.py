"""What the benchmark scripts share: children stopped by pid, the generated site, and
how a run of the benchmark ends and is reported.

``memory.py``, ``ping.py``, ``compare.py``, ``workers.py``, ``recrawl.py`` and
``help_time.py`` import it as ``harness``: run as ``python benchmarks/NAME.py``, Python
puts the script's folder first on ``sys.path``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any, Protocol, TypeVar

ROOT = Path(__file__).resolve().parent.parent
SITE_SCRIPT = Path(__file__).resolve().parent / "site.py"
START_TIMEOUT = 30.0  # seconds for a child to print its first line
TREE_POLL = 0.05  # seconds between samples of a process tree's RSS


def load_site_module() -> ModuleType:
    """benchmarks/site.py by path: ``import site`` would find the standard library's."""
    spec = importlib.util.spec_from_file_location("bench_site", SITE_SCRIPT)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {SITE_SCRIPT}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_site"] = module
    spec.loader.exec_module(module)
    return module


class Processes:
    """Every child this harness started; ``stop_all`` ends those still running, by pid.

    Subclasses that know of processes behind a child (a launcher's own child) can
    stop them too in ``before_kill``.
    """

    def __init__(self) -> None:
        self.children: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        # A session of its own: a Ctrl-C in the terminal reaches only this harness,
        # which then stops its children in order.
        child = subprocess.Popen(args, start_new_session=True, **kwargs)
        self.children.append(child)
        return child

    def stop(self, child: subprocess.Popen[bytes], grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if CHILD is still running after GRACE seconds."""
        if child.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            child.terminate()
        try:
            child.wait(grace)
        except subprocess.TimeoutExpired:
            self.before_kill(child)
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            child.wait()

    def before_kill(self, child: subprocess.Popen[bytes]) -> None:
        """Called while CHILD, which ignored SIGTERM, is still unreaped: its pid is still its."""

    def stop_all(self) -> None:
        for child in reversed(self.children):
            self.stop(child)
        self.children.clear()


# Runs COMMAND in a fresh child and reports that child's own rusage. A small process of
# its own, because ru_maxrss also counts the memory image a child had before exec: one
# forked from a harness would inherit the harness's RSS. The wall time is taken here,
# from just before the fork to the reaping, so polling in the harness adds nothing.
# Written to stdout: the child's pid, then "exit-code max-rss-kib user-s sys-s wall-s".
RUSAGE_LAUNCHER = r"""
import os, signal, sys, time
log, command = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.execv(command[0], command)
    finally:
        os._exit(127)
for signum in (signal.SIGTERM, signal.SIGINT):
    signal.signal(signum, lambda signum, frame: os.kill(pid, signum))
print(pid, flush=True)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
code = os.waitstatus_to_exitcode(status)
print(code, usage.ru_maxrss, usage.ru_utime, usage.ru_stime, wall, flush=True)
"""


@dataclass
class Usage:
    """What ``launch`` measured of one process: its own rusage, from ``os.wait4``, and
    the sampled RSS of it and its descendants (``TreeRss``)."""

    exit_code: int | None = None
    max_rss_kib: int = 0  # ru_maxrss of the launched process alone
    user_s: float = 0.0
    sys_s: float = 0.0
    wall_s: float = 0.0
    timed_out: bool = False
    tree_rss_kib: int = 0  # highest sampled sum of VmRSS over the process and its descendants
    tree_processes: int = 0  # most processes seen in one sample
    tree_samples: int = 0
    tree_pss_kib: int = 0  # highest sampled sum of PSS, with launch(pss=True)

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    @property
    def peak_rss_kib(self) -> int:
        """Peak RSS of the whole tree. The sum at any moment is at least the launched
        process's own RSS, so ``ru_maxrss`` is a floor that sampling cannot miss."""
        return max(self.tree_rss_kib, self.max_rss_kib)


def _status(pid: int) -> dict[str, str]:
    """The fields of ``/proc/PID/status``; empty when the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as status:
            return dict(line.rstrip("\n").split(":\t", 1) for line in status if ":\t" in line)
    except OSError:
        return {}


def _children(pid: int) -> list[int]:
    """PID's children, from every thread's ``children`` file: a child belongs to the
    thread that forked it (a pool's management thread, say), not to the main thread."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            path = f"/proc/{pid}/task/{task}/children"
            with contextlib.suppress(OSError, ValueError), open(path, encoding="ascii") as file:
                found.extend(int(child) for child in file.read().split())
    return found


def _pss(pid: int) -> int:
    """PID's proportional set size in KiB: its share of the pages it shares with others."""
    with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def tree_rss(pid: int, parent: int | None = None, pss: bool = False) -> tuple[int, int, int]:
    """(sum of VmRSS in KiB, processes, sum of PSS in KiB or 0) over PID and its
    descendants, now. With PARENT, PID counts only while its parent is PARENT, so that
    a reused pid is not measured. RSS counts a page shared by ten processes ten times
    (a browser's processes share most of theirs); PSS, with ``pss``, counts it once."""
    status = _status(pid)
    if not status or (parent is not None and status.get("PPid", "").strip() != str(parent)):
        return 0, 0, 0
    total, count, shares, todo = 0, 0, 0, [pid]
    while todo:
        current = todo.pop()
        fields = status if current == pid else _status(current)
        rss = fields.get("VmRSS", "")  # absent for a zombie
        if rss:
            total += int(rss.split()[0])  # "12345 kB"
            count += 1
            shares += _pss(current) if pss else 0
        todo.extend(_children(current))
    return total, count, shares


class TreeRss:
    """Samples ``tree_rss(PID)`` every ``TREE_POLL`` seconds from a thread of its own,
    keeping the highest sum, until ``stop``."""

    def __init__(
        self, pid: int, parent: int | None = None, interval: float = TREE_POLL, pss: bool = False
    ) -> None:
        self.pid, self.parent, self.interval, self.pss = pid, parent, interval, pss
        self.peak_kib = 0
        self.peak_pss_kib = 0
        self.processes = 0
        self.samples = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"tree-rss-{pid}", daemon=True)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while True:
            total, count, shares = tree_rss(self.pid, self.parent, self.pss)
            self.samples += 1
            self.peak_kib = max(self.peak_kib, total)
            self.peak_pss_kib = max(self.peak_pss_kib, shares)
            self.processes = max(self.processes, count)
            if self._stopped.wait(self.interval):
                return

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()


class LaunchedProcesses(Processes):
    """``Processes`` that also knows what stands behind a child.

    A launcher's own child (``adopt``) is killed by its pid if the launcher ignores
    SIGTERM; a child registered with ``group`` (a server with workers of its own, in
    the session ``start`` gave it) has its whole process group killed.
    """

    def __init__(self) -> None:
        super().__init__()
        self.inner: dict[int, int] = {}  # launcher pid -> its child's pid
        self.groups: set[int] = set()  # children whose process group dies with them

    def adopt(self, launcher: subprocess.Popen[bytes], pid: int) -> None:
        self.inner[launcher.pid] = pid

    def group(self, child: subprocess.Popen[bytes]) -> None:
        self.groups.add(child.pid)

    def before_kill(self, child: subprocess.Popen[bytes]) -> None:
        inner = self.inner.get(child.pid)
        if inner is not None:  # still the launcher's unreaped child: safe to signal
            with contextlib.suppress(ProcessLookupError):
                os.kill(inner, signal.SIGKILL)
        if child.pid in self.groups:  # unreaped leader: the group id is still its own
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)


def launch(
    processes: LaunchedProcesses,
    command: list[str],
    log: Path,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    pss: bool = False,
) -> Usage:
    """Run COMMAND (stdout and stderr to LOG) in CWD through ``RUSAGE_LAUNCHER``; stop it
    by pid after TIMEOUT seconds. The rusage is that one process's, not its launcher's;
    while it runs, ``TreeRss`` samples the RSS of it and every process it starts."""
    launcher = processes.start(
        [sys.executable, "-I", "-S", "-c", RUSAGE_LAUNCHER, str(log), *command],
        stdout=subprocess.PIPE, cwd=cwd, env=env,
    )  # fmt: skip
    pid = int(read_line(launcher, "the launcher"))
    processes.adopt(launcher, pid)
    usage = Usage()
    deadline = time.monotonic() + timeout
    with TreeRss(pid, parent=launcher.pid, pss=pss) as sampler:
        try:
            launcher.wait(max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            usage.timed_out = True
            processes.stop(launcher)
    usage.tree_rss_kib, usage.tree_processes = sampler.peak_kib, sampler.processes
    usage.tree_samples, usage.tree_pss_kib = sampler.samples, sampler.peak_pss_kib
    assert launcher.stdout is not None
    result = launcher.stdout.read().split()
    if len(result) == 5:
        usage.exit_code, usage.max_rss_kib = int(result[0]), int(result[1])  # KiB on Linux
        usage.user_s, usage.sys_s, usage.wall_s = map(float, result[2:])
    else:
        usage.exit_code = launcher.returncode
    return usage


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so that ``finally: processes.stop_all()`` runs:
    the default action would end this harness and leave its children running."""
    signal.signal(signal.SIGTERM, _raise_on_sigterm)


def read_line(child: subprocess.Popen[bytes], what: str, timeout: float = START_TIMEOUT) -> str:
    """The next line of CHILD's stdout pipe; RuntimeError if none comes within TIMEOUT
    seconds, since a bare ``readline`` would wait forever on a child that hangs."""
    assert child.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise RuntimeError(f"{what} did not start in {timeout:.0f} s")
    return child.stdout.readline().decode().strip()


def start_site(
    processes: Processes, pages: int, work: Path, stats: Path | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``site.py --pages PAGES`` on a free port; return it and its port once it listens.

    Its stderr goes to WORK/site.log, whose tail is in the error if it fails to start.
    """
    args = [sys.executable, str(SITE_SCRIPT), "--pages", str(pages), "--port", "0"]
    if stats is not None:
        args += ["--stats", str(stats)]
    with (work / "site.log").open("wb") as log:
        site = processes.start(args, stdout=subprocess.PIPE, stderr=log, cwd=ROOT)
    line = read_line(site, "site")
    if not line.startswith("listening on http://127.0.0.1:"):
        tail = (work / "site.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"site failed to start: {line!r}\n{tail}")
    return site, int(line.rsplit(":", 1)[1])


def run_options(parser: argparse.ArgumentParser, *, pages: int, timeout: float) -> None:
    """The options every benchmark of repeated crawls takes: --pages, --repeats,
    --timeout, --json, --keep."""
    parser.add_argument("--pages", type=int, default=pages, help=f"pages (default {pages})")
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant (default 3)")
    parser.add_argument("--timeout", type=float, default=timeout, help="seconds per run")
    parser.add_argument("--json", type=Path, help="write every run's measurements here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")


def header(command: Sequence[str]) -> dict[str, Any]:
    """What a report begins with: when, where, the command; ``load`` filled in at the end."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "command": shlex.join(command),
        "load": "",
    }


def machine() -> str:
    """CPU count and model, OS and Python: what a recorded result depends on."""
    cpu = platform.processor()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        names = (line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
        cpu = next(names, cpu)
    return (
        f"nproc {os.cpu_count()} ({cpu or 'unknown CPU'}, {platform.system()} "
        f"{platform.release()}), Python {platform.python_version()}"
    )


class Measured(Protocol):
    """What ``measure_all`` and ``print_results`` read of a run."""

    repetition: int  # from 0
    problems: list[str]  # empty when every check passed


R = TypeVar("R", bound=Measured)
V = TypeVar("V")


def measure_all(
    runs: list[R],
    repeats: int,
    variants: Sequence[V],
    measure: Callable[[V, int], R],
    describe: Callable[[R], str],
    rotate: bool = False,
) -> None:
    """``measure(variant, repetition)`` for every variant in turn, REPEATS times over
    (a, b, a, b, ...), so that drift on a shared machine hits every variant alike.
    With ROTATE, each repetition starts one variant later (a, b, c, b, c, a, ...), so
    that no variant always runs first, after a pause, or after the same neighbour.

    Each run is appended to RUNS as it ends, so that an interrupted benchmark still
    reports those, and gets a line on stderr, so that a long one shows where it is.
    """
    for repetition in range(repeats):
        shift = repetition % len(variants) if rotate and variants else 0
        for variant in [*variants[shift:], *variants[:shift]]:
            run = measure(variant, repetition)
            runs.append(run)
            status = "FAILED: " + "; ".join(run.problems) if run.problems else "ok"
            print(
                f"[{repetition + 1}/{repeats}] {describe(run)}, {status}",
                file=sys.stderr,
                flush=True,
            )


def load_line(start: float, loads: list[float]) -> str:
    """The machine's load around a set of runs, for the report: shared machines are noisy."""
    loads = loads or [start]
    return (
        f"1-minute load average {start:.2f} at the start, {os.getloadavg()[0]:.2f} at "
        f"the end, {min(loads):.2f} to {max(loads):.2f} as the runs started"
    )


def about(header: dict[str, Any], pages: int, expected: int, repeats: int) -> str:
    """The lines above a results table: when, where, with what, and how measured."""
    return "\n".join(
        [
            f"- Date: {header['date']}",
            f"- Machine: {header['machine']}",
            f"- Versions: {header['versions']}",
            f"- Load: {header['load']}",
            f"- Command: `{header['command']}`",
            f"- {pages:,} product pages, {expected:,} pages to find, "
            f"{repeats} run(s) per variant; medians",
        ]
    )


class Session:
    """The end of a benchmark's runs, however they end: ``with session: ...`` around them.

    Ctrl-C and the errors a benchmark expects (RuntimeError, a failed command, and
    ERRORS) end the runs with a line on stderr rather than a traceback, and set ``code``
    (130, 1) for ``main`` to return. On every way out, SIGTERM's too (``exit_on_sigterm``),
    the children are stopped, HEADER gets the load around the runs (from ``loads()``),
    JSON_PATH gets HEADER and ``report()`` if ``report()["runs"]`` holds any run, and WORK
    goes unless KEEP: an interrupted benchmark still records the runs it finished, and
    leaves nothing running.
    """

    def __init__(
        self,
        processes: Processes,
        header: dict[str, Any],
        work: Path,
        *,
        loads: Callable[[], list[float]],
        report: Callable[[], dict[str, Any]],
        json_path: Path | None,
        keep: bool,
        errors: tuple[type[Exception], ...] = (),
    ) -> None:
        self.processes, self.header, self.work = processes, header, work
        self.loads, self.report, self.json_path, self.keep = loads, report, json_path, keep
        self.errors = (RuntimeError, subprocess.CalledProcessError, *errors)
        self.load_start = 0.0
        self.code: int | None = None  # the exit status, once the runs ended early

    def __enter__(self) -> Session:
        self.load_start = os.getloadavg()[0]
        return self

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> bool:
        if isinstance(error, KeyboardInterrupt):
            print("interrupted: stopping the processes started", file=sys.stderr)
            self.code = 130
        elif isinstance(error, self.errors):
            print(f"error: {error}", file=sys.stderr)
            self.code = 1
        self.processes.stop_all()
        self.header["load"] = load_line(self.load_start, self.loads())
        if self.json_path is not None:
            report = self.report()
            if report["runs"]:
                self.json_path.write_text(json.dumps({**self.header, **report}, indent=2) + "\n")
        if self.keep:
            print(f"kept {self.work}", file=sys.stderr)
        else:
            shutil.rmtree(self.work, ignore_errors=True)
        return self.code is not None  # swallow only the errors reported above


def print_results(text: str, runs: Sequence[R], name: Callable[[R], str]) -> int:
    """Print TEXT (the tables), then each failed run's problems, which a table only
    counts; return the exit status: 1 if any run failed, else 0."""
    print(text)
    failed = [run for run in runs if run.problems]
    for run in failed:
        print(f"\nFAILED {name(run)} #{run.repetition + 1}: " + "; ".join(run.problems))
    return 1 if failed else 0
