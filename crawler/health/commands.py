"""``crawl ping`` and ``crawl check``: turn arguments into targets, run the checks
and print them. Exit codes: 0 all healthy, 1 any not, 2 a usage error."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from crawler.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from crawler.errors import ConfigError
from crawler.health.history import History
from crawler.health.probe import DEFAULT_CONCURRENCY, check_targets
from crawler.health.report import render_json, render_junit, render_prometheus, render_table
from crawler.health.result import HealthResult
from crawler.health.targets import Target, load_health_config
from crawler.loop import run
from crawler.validators import http_url

__all__ = ["check", "ping"]

WATCH_FORMATS = ("table", "json")


class UsageError(Exception):
    """Arguments that cannot work together; exits 2 with this message."""


def ping(args: argparse.Namespace) -> int:
    try:
        urls = dict.fromkeys(_read_urls(args.urls, args.from_files))  # once each, in order
        targets = [Target(url, url, timeout=args.timeout, retries=args.retries) for url in urls]
    except UsageError as exc:
        return _usage(exc)
    if not targets:
        return _usage(UsageError("no URLs to ping: give URLs, - for stdin, or --from FILE"))
    results = run(check_targets(targets, engine=args.engine, concurrency=args.concurrency))
    (render_json if args.json else render_table)(results, sys.stdout)
    return _exit_code(results)


def check(args: argparse.Namespace) -> int:
    try:
        _check_usage(args)
    except UsageError as exc:
        return _usage(exc)
    if args.crawl:
        from crawler.health.linkcheck import check_links

        report = check_links(args.crawl, engine=args.engine, timeout=args.timeout,
                             retries=args.retries, concurrency=args.concurrency,
                             output=args.output)  # fmt: skip
        _render(args.format, report.broken, sys.stdout)
        print(f"crawl: {report.summary()}", file=sys.stderr)
        return _exit_code(report.broken) if report.complete else EXIT_FAILED
    config = load_health_config(args.file)
    targets = [_override(target, args) for target in config.targets]
    args.engine = args.engine or "aiohttp"
    args.concurrency = args.concurrency or DEFAULT_CONCURRENCY
    if args.watch:
        from crawler.health.monitor import ServeError, monitor

        try:
            return run(monitor(targets, interval=args.watch, serve=args.serve, title=config.title,
                               history=args.history, json=args.format == "json",
                               engine=args.engine, concurrency=args.concurrency))  # fmt: skip
        except ServeError as exc:
            return _usage(UsageError(str(exc)))
    results = run(check_targets(targets, engine=args.engine, concurrency=args.concurrency))
    _render(args.format, results, sys.stdout)
    return _exit_code(results)


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
    if args.serve:
        args.serve = _address(args.serve)


def _render(format: str, results: list[HealthResult], file: TextIO) -> None:
    if format == "prometheus":
        file.write(render_prometheus(History.of(results)))
    elif format == "junit":
        render_junit(results, file)
    elif format == "json":
        render_json(results, file)
    else:
        render_table(results, file)


def _override(target: Target, args: argparse.Namespace) -> Target:
    changes: dict[str, Any] = {}
    if args.timeout is not None:
        changes["timeout"] = args.timeout
    if args.retries is not None:
        changes["retries"] = args.retries
    return replace(target, **changes)


def _read_urls(urls: Iterable[str], files: Iterable[str]) -> Iterator[str]:
    """URLs from the arguments, ``-`` (stdin) and files: one per line, ``#`` comments."""
    sources: list[tuple[str, Iterable[str]]] = []
    for url in urls:
        sources.append(("stdin", sys.stdin) if url == "-" else ("arguments", [url]))
    for name in files:
        if name == "-":
            sources.append(("stdin", sys.stdin))
            continue
        try:
            sources.append((name, Path(name).read_text(encoding="utf-8").splitlines()))
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--from {name}: {exc}") from None
    for source, lines in sources:
        for number, line in enumerate(lines, 1):
            url = line.strip()
            if not url or url.startswith("#"):
                continue
            try:
                yield http_url("url", url)
            except ConfigError:
                where = "" if source == "arguments" else f" (line {number} of {source})"
                raise UsageError(f"not an http:// or https:// URL: {url!r}{where}") from None


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--serve expects HOST:PORT such as 127.0.0.1:9108, got {text!r}")
    return host, int(port)


def _exit_code(results: list[HealthResult]) -> int:
    return EXIT_OK if all(result.ok for result in results) else EXIT_FAILED


def _usage(exc: UsageError) -> int:
    print(f"crawl: {exc}", file=sys.stderr)
    return EXIT_USAGE
