"""The crawl configuration: a frozen tree of settings with named defaults.

``load_config(path)`` reads TOML and validates every key; a bad value raises
``ConfigError`` naming the dotted key, the value and what was expected, so the
user can fix the file without reading code. Unknown keys are errors too: a
typo must not silently fall back to a default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crawler.errors import ConfigError
from crawler.frontier import REDIS_SCHEMES
from crawler.frontier.base import CRAWL_NAME
from crawler.guard import address_guard
from crawler.middleware.retry import DEFAULT_RETRY_STATUSES
from crawler.models import Timeouts
from crawler.validators import (
    Check,
    boolean,
    domain,
    engine,
    headers,
    http_url,
    integer,
    list_of,
    number,
    positive,
    proxy,
    rate,
    read_toml,
    regex,
    status,
    string,
    timeout,
)

__all__ = [
    "Config",
    "CrawlSettings",
    "FetchSettings",
    "OutputSettings",
    "RateLimitSettings",
    "RetrySettings",
    "StateSettings",
    "load_config",
    "parse_config",
]

DEFAULT_USER_AGENT = "crawler/0.1 (+https://example.org/bot)"
DEFAULT_TIMEOUT = Timeouts(total=15.0)


@dataclass(frozen=True, slots=True)
class CrawlSettings:
    start_urls: tuple[str, ...] = ()
    allowed_domains: tuple[str, ...] = ()  # empty: the hosts of start_urls
    max_depth: int = 20
    max_pages: int = 100_000
    max_pages_per_host: int = 0  # 0: no limit
    max_url_length: int = 2083
    max_path_repeats: int = 3
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = (re.compile(r"\.pdf$"),)
    content_types: tuple[str, ...] = ("text/html", "application/xhtml+xml")
    obey_robots: bool = True
    sitemaps: bool = True
    site: str = "generic"
    follow_nofollow: bool = False
    parse_workers: int = 1  # 1: threads of the crawl's process; more: that many processes


@dataclass(frozen=True, slots=True)
class FetchSettings:
    engine: str = "aiohttp"
    concurrency: int = 64
    per_host_concurrency: int = 8
    timeout: Timeouts = DEFAULT_TIMEOUT
    user_agent: str = DEFAULT_USER_AGENT
    headers: tuple[tuple[str, str], ...] = ()
    max_bytes: int = 10_000_000
    body_memory: int = 48_000_000  # what bodies past 256 KiB may hold at once; 0: no limit
    max_redirects: int = 10
    verify_tls: bool = True
    proxy: str = ""
    block_private: bool = False  # refuse loopback, private and reserved addresses
    allow_private: tuple[str, ...] = ()  # addresses, address:port or networks still allowed


@dataclass(frozen=True, slots=True)
class RetrySettings:
    retries: int = 2
    backoff: float = 0.5
    max_backoff: float = 30.0
    statuses: tuple[int, ...] = tuple(sorted(DEFAULT_RETRY_STATUSES))


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    per_host: str = "4/s"  # "" for no limit


@dataclass(frozen=True, slots=True)
class OutputSettings:
    dir: Path = Path("out/example")
    items: str = "items.jsonl"
    pages: bool = False


@dataclass(frozen=True, slots=True)
class StateSettings:
    frontier: str = "sqlite"  # memory | sqlite | a redis:// URL shared by many workers
    name: str = "crawl"  # the crawl's key prefix in Redis; load_config: the file's name
    lease_timeout: float = 60.0  # seconds of silence before a worker's leases go to others


@dataclass(frozen=True, slots=True)
class Config:
    crawl: CrawlSettings = field(default_factory=CrawlSettings)
    fetch: FetchSettings = field(default_factory=FetchSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    state: StateSettings = field(default_factory=StateSettings)

    def replace(self, **sections: Any) -> Config:
        return replace(self, **sections)


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file. ``state.name`` defaults to the file's
    name, so two crawls of two files on one Redis keep apart."""
    data = read_toml(path)
    state = data.get("state")
    if isinstance(state, Mapping) and "name" not in state:
        data["state"] = {**state, "name": _default_name(Path(path))}
    elif state is None:
        data["state"] = {"name": _default_name(Path(path))}
    return parse_config(data)


def _default_name(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-.") or "crawl"


def _items(key: str, value: Any) -> str:
    text = string(key, value)
    if not text.endswith((".jsonl", ".csv")) or "/" in text or "\\" in text or text.startswith("."):
        raise ConfigError(key, value, "a file name ending in .jsonl or .csv")
    return text


def _frontier(key: str, value: Any) -> str:
    text = string(key, value)
    if text in ("memory", "sqlite"):
        return text
    if (text.startswith(REDIS_SCHEMES) and urlsplit(text).hostname) or text.startswith("unix://"):
        return text
    raise ConfigError(key, value, "memory, sqlite or a redis:// URL")


def _name(key: str, value: Any) -> str:
    text = string(key, value)
    if not CRAWL_NAME.fullmatch(text):
        raise ConfigError(key, value, "letters, digits, '.', '_' or '-'")
    return text


def _site(key: str, value: Any) -> str:
    text = string(key, value)
    pattern = r"[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?"
    if not re.fullmatch(pattern, text):
        raise ConfigError(key, value, 'a module of sites/ or "package.module:Class"')
    return text


_SCHEMA: dict[str, tuple[type[Any], dict[str, Check]]] = {
    "crawl": (CrawlSettings, {
        "start_urls": list_of(http_url, "http(s) URLs"),
        "allowed_domains": list_of(domain, "host names"),
        "max_depth": integer(0),
        "max_pages": integer(0),
        "max_pages_per_host": integer(0),
        "max_url_length": integer(16),
        "max_path_repeats": integer(1),
        "include": list_of(regex, "regular expressions"),
        "exclude": list_of(regex, "regular expressions"),
        "content_types": list_of(string, "media types"),
        "obey_robots": boolean,
        "sitemaps": boolean,
        "site": _site,
        "follow_nofollow": boolean,
        "parse_workers": integer(1),
    }),
    "fetch": (FetchSettings, {
        "engine": engine,
        "concurrency": integer(1),
        "per_host_concurrency": integer(1),
        "timeout": timeout,
        "user_agent": string,
        "headers": headers,
        "max_bytes": integer(1),
        "body_memory": integer(0),
        "max_redirects": integer(0),
        "verify_tls": boolean,
        "proxy": proxy,
        "block_private": boolean,
        "allow_private": list_of(string, "addresses or networks"),
    }),
    "retry": (RetrySettings, {
        "retries": integer(0),
        "backoff": number,
        "max_backoff": number,
        "statuses": list_of(status, "HTTP status codes"),
    }),
    "rate_limit": (RateLimitSettings, {"per_host": rate}),
    "output": (OutputSettings, {
        "dir": lambda key, value: Path(string(key, value)),
        "items": _items,
        "pages": boolean,
    }),
    "state": (StateSettings, {
        "frontier": _frontier,
        "name": _name,
        "lease_timeout": positive,
    }),
}  # fmt: skip


def parse_config(data: Mapping[str, Any]) -> Config:
    """Validate a parsed TOML document (or any mapping of the same shape)."""
    sections: dict[str, Any] = {}
    for name, value in data.items():
        if name not in _SCHEMA:
            raise ConfigError(name, value, "a section named " + ", ".join(_SCHEMA))
        if not isinstance(value, Mapping):
            raise ConfigError(name, value, f"a [{name}] table")
        settings_class, checks = _SCHEMA[name]
        values = {}
        for key, raw in value.items():
            if key not in checks:
                raise ConfigError(
                    f"{name}.{key}", raw, "a key of [" + name + "]: " + ", ".join(checks)
                )
            values[key] = checks[key](f"{name}.{key}", raw)
        sections[name] = settings_class(**values)
    config = Config(**sections)
    fetch = config.fetch
    address_guard(fetch.block_private, fetch.allow_private, proxy=fetch.proxy, section="fetch.")
    if not config.crawl.start_urls:
        raise ConfigError(
            "crawl.start_urls", list(config.crawl.start_urls), "at least one http(s) URL"
        )
    return config
