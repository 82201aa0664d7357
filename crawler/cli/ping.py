"""``crawl ping URL...``: every URL fetched at once, a table (or JSON) of how each answered."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from crawler.cli.args import with_default_scheme
from crawler.cli.exits import EXIT_FAILED, EXIT_OK, UsageError, usage
from crawler.cli.loop import run
from crawler.errors import ConfigError
from crawler.health.probe import check_targets
from crawler.health.report import render_json, render_table
from crawler.health.result import HealthResult
from crawler.health.targets import Target
from crawler.policy.checks import http_url

__all__ = ["exit_code", "ping"]


def ping(args: argparse.Namespace) -> int:
    try:
        urls = dict.fromkeys(_read_urls(args.urls, args.from_files))  # once each, in order
        targets = [Target(url, url, timeout=args.timeout, retries=args.retries) for url in urls]
    except UsageError as exc:
        return usage(exc)
    if not targets:
        return usage(UsageError("no URLs to ping: give URLs, - for stdin, or --from FILE"))
    results = run(check_targets(targets, engine=args.engine, concurrency=args.concurrency))
    (render_json if args.json else render_table)(results, sys.stdout)
    return exit_code(results)


def _read_urls(urls: Iterable[str], files: Iterable[str]) -> Iterator[str]:
    """URLs from the arguments, ``-`` (stdin) and files: one per line, ``#`` comments;
    ``http://`` is assumed where none is written, as in ``crawl fetch``."""
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
                yield http_url("url", with_default_scheme(url))
            except ConfigError:
                where = "" if source == "arguments" else f" (line {number} of {source})"
                raise UsageError(f"not an http:// or https:// URL: {url!r}{where}") from None


def exit_code(results: list[HealthResult]) -> int:
    """0 when every result is healthy, else 1."""
    return EXIT_OK if all(result.ok for result in results) else EXIT_FAILED
