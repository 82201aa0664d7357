"""``crawl extract CONFIG URL``: the loop a user writes ``[[extract]]`` rules in: edit the
rules, run this on one page, look at what came out."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from crawler.cli.args import with_default_scheme
from crawler.cli.exits import EXIT_FAILED, EXIT_OK, UsageError, usage
from crawler.cli.options import configure
from crawler.config import Config
from crawler.errors import ConfigError, FetchError
from crawler.fetcher import SyncFetcher
from crawler.parse import Page
from crawler.parse.rules import Rule, apply_rule

__all__ = ["extract"]


def extract(args: argparse.Namespace) -> int:
    config = configure(args.config)
    try:
        rules = _rules(config, args.rule)
    except UsageError as exc:
        return usage(exc)
    url = with_default_scheme(args.url)
    try:
        page = _page(config, url, args.html)
    except (FetchError, OSError) as exc:
        print(f"crawl: {url}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    matching = [rule for rule in rules if rule.matches(page.url)]
    if not matching:
        patterns = "; ".join(f"{rule.name}: {rule.match!r}" for rule in rules)
        print(f"crawl: no rule matches {page.url} (the rules match: {patterns})", file=sys.stderr)
        return EXIT_FAILED
    complete = True
    for rule in matching:
        result = apply_rule(rule, page)
        for item in result.items:
            print(json.dumps(item, indent=2, ensure_ascii=False))
        report = [f"{len(result.items)} item{'s' * (len(result.items) != 1)}"]
        if result.missing:
            report.append("found nothing for " + ", ".join(result.missing))
        print(f"crawl: rule {rule.name}: " + "; ".join(report), file=sys.stderr)
        for failure in result.failures:
            print(f"crawl: rule {rule.name}: {failure}", file=sys.stderr)
        complete = complete and bool(result.items) and not result.failures
    return EXIT_OK if complete else EXIT_FAILED


def _rules(config: Config, name: str | None) -> tuple[Rule, ...]:
    if not config.extract:
        raise ConfigError("extract", None, "[[extract]] rules in the config")
    if name is None:
        return config.extract
    chosen = tuple(rule for rule in config.extract if rule.name == name)
    if not chosen:
        names = ", ".join(rule.name for rule in config.extract)
        raise UsageError(f"--rule {name}: no such rule (the rules: {names})")
    return chosen


def _page(config: Config, url: str, html: str | None) -> Page:
    if html is not None:
        body = Path(html).read_bytes()
        return Page(url, 200, {"content-type": "text/html"}, body)
    with SyncFetcher.of(config.fetch.replace(follow_redirects=True)) as fetcher:
        return Page.from_response(fetcher.get(url))
