"""How long does ``crawl --help`` take? Issue 5's target: under 0.3 s.

    .venv/bin/python benchmarks/help_time.py [--runs 10] [--bytecode as-is|cached]

Runs ``.venv/bin/crawl --help`` (the console script next to this interpreter) RUNS
times after one untimed run, each as a child with stdout discarded, and prints the
wall time of each from spawn to exit, their median, and the interpreter's own start
(``python -c pass``, measured the same way) for scale. A run that exits non-zero or
prints no usage line fails the benchmark (exit status 1).

``--bytecode``: with ``as-is`` (the default) the environment is left alone, so where
``PYTHONDONTWRITEBYTECODE`` is set and the checkout has no ``__pycache__``, every run
compiles the crawler's modules from source. ``cached`` unsets it and points
``PYTHONPYCACHEPREFIX`` at a temporary folder, which the untimed run fills: the
bytecode an installed package would have, without writing into the checkout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness  # benchmarks/harness.py: run as a script, this folder is first on sys.path

CRAWL = Path(sys.executable).parent / "crawl"
TIMEOUT = 30.0  # seconds per run


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int, bytes]:
    """Wall seconds from spawn to exit, the exit code and stdout of COMMAND."""
    started = time.perf_counter()
    result = subprocess.run(
        command, env=env, cwd=harness.ROOT, capture_output=True, timeout=TIMEOUT, check=False
    )
    return time.perf_counter() - started, result.returncode, result.stdout


def series(command: list[str], env: dict[str, str], runs: int) -> tuple[list[float], list[str]]:
    """One untimed run, then RUNS timed ones; the times and any problems."""
    problems: list[str] = []
    times: list[float] = []
    for index in range(runs + 1):
        wall, code, out = timed(command, env)
        if code != 0:
            problems.append(f"run {index}: exited with {code}")
        if command[0] == str(CRAWL) and b"usage" not in out.lower():
            problems.append(f"run {index}: no usage line in {out[:100]!r}")
        if index:  # the first one warms the page cache (and fills a pycache prefix)
            times.append(wall)
    return times, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs (default 10)")
    parser.add_argument("--bytecode", choices=("as-is", "cached"), default="as-is")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    env = dict(os.environ)
    prefix: str | None = None
    if args.bytecode == "cached":
        prefix = tempfile.mkdtemp(prefix="bench-pycache-")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = prefix
    try:
        print(harness.machine(), file=sys.stderr)
        print(f"PYTHONDONTWRITEBYTECODE={env.get('PYTHONDONTWRITEBYTECODE', '')!r}, "
              f"PYTHONPYCACHEPREFIX={env.get('PYTHONPYCACHEPREFIX', '')!r}, "
              f"load {os.getloadavg()[0]:.2f}", file=sys.stderr)  # fmt: skip
        bare, bare_problems = series([sys.executable, "-c", "pass"], env, args.runs)
        helps, problems = series([str(CRAWL), "--help"], env, args.runs)
    finally:
        if prefix is not None:
            shutil.rmtree(prefix, ignore_errors=True)
    problems += bare_problems
    each = ", ".join(f"{t:.3f}" for t in helps)
    print(f"`crawl --help` ({args.bytecode} bytecode), {args.runs} runs: "
          f"median {statistics.median(helps):.3f} s, min {min(helps):.3f} s, "
          f"max {max(helps):.3f} s ({each})")  # fmt: skip
    print(f"`python -c pass`: median {statistics.median(bare):.3f} s")
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
