"""The config: every key has a default, every bad value names its key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crawler.config import Config, load_config, parse_config
from crawler.errors import ConfigError
from crawler.models import Timeouts

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


def test_the_documented_example_runs_as_written() -> None:
    config = load_config(CONFIG_DIR / "example.toml")
    assert config.crawl.start_urls == ("http://127.0.0.1:8000/",)
    assert config.crawl.exclude[0].pattern == r"\.pdf$"
    assert config.fetch.timeout == Timeouts(total=15.0)
    assert config.fetch.retry_statuses == frozenset({429, 500, 502, 503, 504})
    assert config.output.dir == Path("out/example")
    assert config.state.name == "example"  # the file's name: crawls sharing a Redis keep apart
    assert config.folder == CONFIG_DIR.resolve()  # where crawl.site's module is looked for first
    assert config == parse_config(
        {"crawl": {"start_urls": ["http://127.0.0.1:8000/"], "site": "generic"},
         "state": {"name": "example"}}
    ).replace(folder=CONFIG_DIR.resolve())  # fmt: skip


def test_shortest_config_takes_every_default() -> None:
    config = parse_config({"crawl": {"start_urls": ["http://a.test/"]}})
    assert config == Config().replace(crawl=config.crawl)
    assert (config.crawl.max_depth, config.fetch.engine, config.state.frontier) == (
        20, "aiohttp", "sqlite",
    )  # fmt: skip


def test_timeout_table() -> None:
    config = parse_config({"crawl": {"start_urls": ["http://a.test/"]},
                           "fetch": {"timeout": {"connect": 5, "read": 10, "total": 30}}})  # fmt: skip
    assert config.fetch.timeout == Timeouts(connect=5, read=10, total=30)


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("crawl", "max_depth", "ten", 'crawl.max_depth: expected a non-negative integer, got "ten"'),
        ("crawl", "max_depth", -1, "crawl.max_depth: expected a non-negative integer, got -1"),
        ("crawl", "start_urls", ["ftp://x/"], "crawl.start_urls[0]: expected an absolute http"),
        ("crawl", "start_urls", "http://a.test/", "crawl.start_urls: expected a list of"),
        ("crawl", "exclude", ["("], "crawl.exclude[0]: expected a valid regular expression"),
        ("crawl", "obey_robots", "yes", 'crawl.obey_robots: expected true or false, got "yes"'),
        ("crawl", "site", "no such/site", "crawl.site: expected a site name like"),
        ("crawl", "max_dept", 3, "crawl.max_dept: expected a key of [crawl]"),
        ("crawl", "parse_workers", 0, 'crawl.parse_workers: expected "auto" or an integer >= 1, got 0'),
        ("crawl", "parse_workers", "two", 'crawl.parse_workers: expected "auto" or an integer >= 1, got "two"'),
        ("fetch", "engine", "curl", 'fetch.engine: expected one of aiohttp, browser, futures, threads, got "curl"'),
        ("fetch", "timeout", 0, "fetch.timeout: expected a positive number of seconds, or a duration like \"90s\""),
        ("fetch", "timeout", {"connct": 1}, "fetch.timeout.connct: expected connect, read or total"),
        ("fetch", "concurrency", 0, "fetch.concurrency: expected an integer >= 1, got 0"),
        ("fetch", "headers", {"X": 1}, "fetch.headers.X: expected a string, got 1"),
        ("retry", "statuses", [200, 999], "retry.statuses[1]: expected an HTTP status code"),
        ("rate_limit", "per_host", "fast", 'rate_limit.per_host: expected a rate like "4/s"'),
        ("output", "items", "items.xml", "output.items: expected a file name ending in .jsonl"),
        ("output", "items", "../escape.jsonl", "output.items: expected a file name ending"),
        ("state", "frontier", "postgres", 'state.frontier: expected memory, sqlite or a redis:// URL, got "postgres"'),
    ],
)  # fmt: skip
def test_bad_values_name_key_value_and_expectation(
    section: str, key: str, value: object, message: str
) -> None:
    data: dict[str, dict[str, object]] = {"crawl": {"start_urls": ["http://a.test/"]}}
    data.setdefault(section, {})[key] = value
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        parse_config(data)


def test_unknown_section_and_missing_start_urls() -> None:
    with pytest.raises(ConfigError, match=r"^crawler: expected a section named crawl"):
        parse_config({"crawler": {}})
    with pytest.raises(ConfigError, match=r"^crawl.start_urls: expected at least one"):
        parse_config({"crawl": {}})


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected an existing TOML file"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[crawl\nstart_urls = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected valid TOML"):
        load_config(broken)


def test_scope_compares_international_host_names_in_ascii() -> None:
    from crawler.crawl.scope import Scope

    config = parse_config({"crawl": {"start_urls": ["http://bücher.example/"]}})
    scope = Scope(config.crawl)
    assert scope.drop_reason("http://xn--bcher-kva.example/a", 1) is None
    assert scope.drop_reason("http://shop.bücher.example/a", 1) is None
    assert scope.drop_reason("http://other.example/a", 1) == "offsite"
