"""``crawl check``: the targets of a health-check file, once or on an interval
(``--watch``), or every link of a site (``--crawl``)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from crawler.cli.exits import EXIT_FAILED, EXIT_OK, UsageError, usage
from crawler.cli.loop import run
from crawler.cli.options import serve_address
from crawler.cli.ping import exit_code
from crawler.errors import ConfigError, CrawlerError
from crawler.health.alerts import Alert, Alerter
from crawler.health.history import History
from crawler.health.probe import DEFAULT_CONCURRENCY, check_targets
from crawler.health.report import render_json, render_junit, render_prometheus, render_table
from crawler.health.result import HealthResult
from crawler.health.store import DEFAULT_RETAIN, HOURLY_KEPT, HistoryStore, open_readonly
from crawler.health.targets import HealthConfig, Target, load_health_config

__all__ = ["check"]

WATCH_FORMATS = ("table", "json")  # also --report's


def check(args: argparse.Namespace) -> int:
    try:
        _check_usage(args)
    except UsageError as exc:
        return usage(exc)
    if args.crawl:
        return _check_links(args)
    config = load_health_config(args.file)
    if config.alerts:  # a failed notification is said once, by the alerter, not per attempt
        logging.getLogger("apprise").setLevel(logging.ERROR)
    if args.test_alerts:
        return _test_alerts(config.alerts)
    if args.report is not None:
        return _report(args, config)
    targets = [_override(target, args) for target in config.targets]
    args.engine = args.engine or "aiohttp"
    args.concurrency = args.concurrency or DEFAULT_CONCURRENCY
    if args.watch:
        from crawler.cli.watch import ServeError, monitor

        store = None if args.no_store else HistoryStore(_store_path(args), retain=args.retain)
        try:
            with store or contextlib.nullcontext():
                return run(monitor(targets, interval=args.watch, serve=args.serve,
                                   title=config.title, history=args.history,
                                   json=args.format == "json", engine=args.engine,
                                   concurrency=args.concurrency, alerts=config.alerts,
                                   maintenance=config.maintenance, store=store))  # fmt: skip
        except ServeError as exc:
            return usage(UsageError(str(exc)))
        except CrawlerError as exc:  # the history file: another monitor's, or not one
            print(f"crawl: {exc}", file=sys.stderr)
            return EXIT_FAILED
    results = run(check_targets(targets, engine=args.engine, concurrency=args.concurrency))
    _render(args.format, results, sys.stdout)
    return exit_code(results)


def _store_path(args: argparse.Namespace) -> Path:
    """``--store``, or the health file's name with ``.sqlite3``, beside it."""
    if args.store:
        return Path(args.store)
    file = Path(args.file)
    return file.with_name(file.stem + ".sqlite3")


def _report(args: argparse.Namespace, config: HealthConfig) -> int:
    """``--report PERIOD``: exit 1 when a target is below its objective."""
    from crawler.health.sla import render_sla_json, render_sla_table, sla_report
    from crawler.health.uptime import Uptime

    try:
        db = open_readonly(_store_path(args))
    except CrawlerError as exc:
        print(f"crawl: {exc}", file=sys.stderr)
        return EXIT_FAILED
    now = time.time()
    try:
        report = sla_report(Uptime(db), config.targets, period=args.report, now=now)
    finally:
        db.close()
    render = render_sla_json if args.format == "json" else render_sla_table
    render(report, sys.stdout)
    return EXIT_FAILED if any(row.met is False for row in report.rows) else EXIT_OK


def _test_alerts(alerts: Sequence[Alert]) -> int:
    """``--test-alerts``: one message through every URL of every alert."""
    if not alerts:
        return usage(UsageError("--test-alerts: the file has no [[alert]]"))
    alerter = Alerter(alerts)
    ok = run(alerter.test())
    for (alert, result), count in sorted(alerter.counts().items()):
        if count:
            print(f"alert {alert}: {count} {result}")
    return EXIT_OK if ok else EXIT_FAILED


def _check_links(args: argparse.Namespace) -> int:
    """``--crawl``: a crawl, so with ``--output`` it holds that folder like any crawl."""
    from crawler.health.linkcheck import check_links

    try:
        report = run(check_links(args.crawl, engine=args.engine, timeout=args.timeout,
                                 retries=args.retries, concurrency=args.concurrency,
                                 output=args.output))  # fmt: skip
    except ConfigError:
        raise
    except CrawlerError as exc:  # the folder in use, a dead store, a full disk
        print(f"crawl: {exc}", file=sys.stderr)
        return EXIT_FAILED
    _render(args.format, report.broken, sys.stdout, footer=report.footer())
    print(f"crawl: {report.summary()}", file=sys.stderr)
    return exit_code(report.broken) if report.complete else EXIT_FAILED


def _check_usage(args: argparse.Namespace) -> None:
    if bool(args.file) == bool(args.crawl):
        raise UsageError("give a health-check file or --crawl CONFIG (one of them)")
    if args.serve and not args.watch:
        raise UsageError("--serve needs --watch SECONDS")
    if args.watch and args.crawl:
        raise UsageError("--watch works with a health-check file, not --crawl")
    if args.watch and args.format not in WATCH_FORMATS:
        raise UsageError(f"--watch prints {' or '.join(WATCH_FORMATS)}; /metrics serves Prometheus")
    if args.output and not args.crawl:
        raise UsageError("--output is for --crawl")
    if args.report is not None and (args.watch or args.crawl):
        raise UsageError("--report reads the history of a health-check file; without --watch")
    if args.report is not None and args.format not in WATCH_FORMATS:
        raise UsageError(f"--report prints {' or '.join(WATCH_FORMATS)}")
    if args.store and not (args.watch or args.report is not None):
        raise UsageError("--store is for --watch and --report")
    if args.retain and not args.watch:
        raise UsageError("--retain is for --watch")
    if args.retain and args.retain < HOURLY_KEPT:
        raise UsageError(f"--retain keeps daily uptime at least as long as the hourly: "
                         f"{HOURLY_KEPT // 86400}d or more")  # fmt: skip
    if args.no_store and (args.store or args.retain or args.report is not None):
        raise UsageError(
            "--no-store keeps no history: it goes without --store, --retain and --report"
        )
    args.retain = args.retain or DEFAULT_RETAIN
    if args.serve:
        args.serve = serve_address(args.serve)


def _render(
    format: str, results: list[HealthResult], file: TextIO, *, footer: str | None = None
) -> None:
    """``footer``: the table's last line, when the results alone do not tell it."""
    if format == "prometheus":
        file.write(render_prometheus(History.of(results)))
    elif format == "junit":
        render_junit(results, file)
    elif format == "json":
        render_json(results, file)
    else:
        render_table(results, file, footer=footer)


def _override(target: Target, args: argparse.Namespace) -> Target:
    changes: dict[str, Any] = {}
    if args.timeout is not None:
        changes["timeout"] = args.timeout
    if args.retries is not None:
        changes["retries"] = args.retries
    return replace(target, **changes)
