"""The monitor's history file over a year: its size on disk, and what writing and
reading it costs.

    .venv/bin/python benchmarks/history.py [--targets 100] [--interval 60] [--days 400]
        [--retain 400] [--json FILE]

The issue: *a year of one-minute checks of 100 targets stays within tens of MB*.
This runs ``crawl check --watch``'s bookkeeping without a network, on a fake clock:
every ``--interval`` seconds for ``--days`` days, one ``HealthResult`` per target
(latency log-normal around 80 ms, one check in 500 failing with a 2 s answer, and
each target down for an hour once a month, so incidents open and close), recorded by
``History.record`` and ``HistoryStore.record`` exactly as each run of the watch loop
does, with the store pruning as the clock passes each hour. Then:

- the file's size after ``PRAGMA wal_checkpoint(TRUNCATE)`` (WAL folded in), its rows
  per table and each table's share (``dbstat``);
- write cost: runs per second and microseconds per check, over the whole year, and
  over its last day (when every table is at its steady size);
- read cost, at the end: ``status_json`` as ``/status.json`` builds it (uptime over
  four windows, 90 days, the incidents, for every target), and ``sla_report`` for 30 d
  and for the whole year, as ``--report`` does; medians of 5.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import harness

from crawler.health.history import History
from crawler.health.page import status_json
from crawler.health.result import Failure, HealthResult
from crawler.health.sla import sla_report
from crawler.health.store import DAY, HistoryStore
from crawler.health.targets import Target
from crawler.health.uptime import Uptime

START = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def result(name: str, now: float, rng: random.Random, down: bool) -> HealthResult:
    url = f"https://{name}.example/health"
    if down or rng.random() < 0.002:
        return HealthResult(name, url, False, now, 2.0, status=503,
                            failures=(Failure("status", "2xx", "503"),))  # fmt: skip
    return HealthResult(name, url, True, now, rng.lognormvariate(math.log(0.08), 0.4),
                        status=200, size=1234)  # fmt: skip


def median_ms(action: object, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between runs")
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--retain", type=int, default=400, help="days of daily roll-ups")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    args = parser.parse_args()
    report = harness.header(sys.argv)
    rng = random.Random(1)
    targets = [Target(f"t{i:03d}", f"https://t{i:03d}.example/health", slo=99.9)
               for i in range(args.targets)]  # fmt: skip
    history = History()
    for target in targets:
        history.expect(target.name, target.url)
    runs = int(args.days * DAY / args.interval)
    outage = {target.name: rng.randrange(0, 30 * 24) for target in targets}  # an hour a month
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "health.sqlite3"
        with HistoryStore(path, retain=args.retain * DAY) as store:
            started = time.perf_counter()
            last_day_from, last_day = runs - int(DAY / args.interval), 0.0
            for run in range(runs):
                if run == last_day_from:
                    last_day = time.perf_counter()
                now = START + run * args.interval
                hour_of_month = int((now - START) // 3600) % (30 * 24)
                results = [result(t.name, now, rng, outage[t.name] == hour_of_month)
                           for t in targets]  # fmt: skip
                changes = history.record(results)
                store.record(results, changes, history, quiet=lambda name: False, now=now)
            ended = time.perf_counter()
            store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            size = path.stat().st_size
            uptime = Uptime(store.db)
            reads = {
                "status_json_ms": median_ms(
                    lambda: status_json(history, interval=60, now=now, uptime=uptime)
                ),
                "report_30d_ms": median_ms(
                    lambda: sla_report(uptime, targets, period=30 * DAY, now=now)
                ),
                "report_year_ms": median_ms(
                    lambda: sla_report(uptime, targets, period=args.days * DAY, now=now)
                ),
            }
            db = sqlite3.connect(path)
            rows = {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                    for table in ("checks", "rollups", "incidents", "targets")}  # fmt: skip
            shares = dict(db.execute(
                "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
            ).fetchall())  # fmt: skip
            db.close()
            json_size = len(json.dumps(status_json(history, interval=60, now=now, uptime=uptime)))
    checks = runs * args.targets
    report.update({
        "targets": args.targets, "interval_s": args.interval, "days": args.days,
        "checks": checks, "size_bytes": size, "size_per_target_bytes": size // args.targets,
        "rows": rows, "bytes_by_table": shares,
        "write_s": round(ended - started, 1),
        "write_us_per_check": round((ended - started) / checks * 1e6, 2),
        "last_day_us_per_check": round(
            (ended - last_day) / ((runs - last_day_from) * args.targets) * 1e6, 2),
        "status_json_bytes": json_size, **{k: round(v, 1) for k, v in reads.items()},
    })  # fmt: skip
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
