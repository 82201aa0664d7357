"""The crawl configuration: a frozen tree of settings with named defaults.

``load_config(path)`` reads TOML and validates every key; a bad value raises
``ConfigError`` naming the dotted key, the value and what was expected, so the
user can fix the file without reading code. Unknown keys are errors too: a
typo must not silently fall back to a default.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from crawler.errors import ConfigError
from crawler.middleware.ratelimit import parse_rate
from crawler.middleware.retry import DEFAULT_RETRY_STATUSES
from crawler.models import Timeouts
from crawler.urls import parse_http_url

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
ENGINE_NAMES = ("aiohttp", "futures", "threads")
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


@dataclass(frozen=True, slots=True)
class FetchSettings:
    engine: str = "aiohttp"
    concurrency: int = 64
    per_host_concurrency: int = 8
    timeout: Timeouts = DEFAULT_TIMEOUT
    user_agent: str = DEFAULT_USER_AGENT
    headers: tuple[tuple[str, str], ...] = ()
    max_bytes: int = 10_000_000
    max_redirects: int = 10
    verify_tls: bool = True
    proxy: str = ""


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
    frontier: str = "sqlite"  # memory | sqlite


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
    """Read and validate a TOML config file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config", str(path), "an existing TOML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("config", str(path), f"a readable UTF-8 file ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", str(path), f"valid TOML ({exc})") from None
    return parse_config(data)


# validators ------------------------------------------------------------------------------

Check = Callable[[str, Any], Any]


def _int(minimum: int) -> Check:
    expected = "a non-negative integer" if minimum == 0 else f"an integer >= {minimum}"

    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(key, value, expected)
        return value

    return check


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(key, value, "a non-negative number")
    return float(value)


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, value, "true or false")
    return value


def _str(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, value, "a string")
    return value


def _list(item: Check, expected: str) -> Check:
    def check(key: str, value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise ConfigError(key, value, f"a list of {expected}")
        return tuple(item(f"{key}[{i}]", v) for i, v in enumerate(value))

    return check


def _url(key: str, value: Any) -> str:
    try:
        parse_http_url(_str(key, value))
    except ValueError:
        raise ConfigError(key, value, "an absolute http:// or https:// URL") from None
    return str(value)


def _domain(key: str, value: Any) -> str:
    text = _str(key, value).strip().lower().rstrip(".")
    if not text or "/" in text or ":" in text or " " in text:
        raise ConfigError(key, value, "a host name such as example.org")
    return text


def _regex(key: str, value: Any) -> re.Pattern[str]:
    try:
        return re.compile(_str(key, value))
    except re.error as exc:
        raise ConfigError(key, value, f"a valid regular expression ({exc})") from None


def _status(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise ConfigError(key, value, "an HTTP status code (100-599)")
    return value


def _engine(key: str, value: Any) -> str:
    if value not in ENGINE_NAMES:
        raise ConfigError(key, value, "one of " + ", ".join(ENGINE_NAMES))
    return str(value)


def _timeout(key: str, value: Any) -> Timeouts:
    if isinstance(value, Mapping):
        known = {"connect", "read", "total"}
        for name in value:
            if name not in known:
                raise ConfigError(f"{key}.{name}", value[name], "connect, read or total")
        phases = {name: _positive(f"{key}.{name}", v) for name, v in value.items()}
        return Timeouts(**phases)
    return Timeouts(total=_positive(key, value))


def _positive(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(key, value, "a positive number of seconds")
    return float(value)


def _headers(key: str, value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        raise ConfigError(key, value, "a table of header names to strings")
    return tuple((str(name), _str(f"{key}.{name}", v)) for name, v in value.items())


def _rate(key: str, value: Any) -> str:
    try:
        parse_rate(_str(key, value))
    except ValueError:
        raise ConfigError(key, value, 'a rate like "4/s" or "30/m", or ""') from None
    return str(value)


def _proxy(key: str, value: Any) -> str:
    text = _str(key, value)
    return _url(key, text) if text else ""


def _items(key: str, value: Any) -> str:
    text = _str(key, value)
    if not text.endswith((".jsonl", ".csv")) or "/" in text or "\\" in text or text.startswith("."):
        raise ConfigError(key, value, "a file name ending in .jsonl or .csv")
    return text


def _frontier(key: str, value: Any) -> str:
    text = _str(key, value)
    if text not in ("memory", "sqlite"):
        raise ConfigError(key, value, "memory or sqlite")
    return text


def _site(key: str, value: Any) -> str:
    text = _str(key, value)
    pattern = r"[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?"
    if not re.fullmatch(pattern, text):
        raise ConfigError(key, value, 'a module of sites/ or "package.module:Class"')
    return text


_SCHEMA: dict[str, tuple[type[Any], dict[str, Check]]] = {
    "crawl": (CrawlSettings, {
        "start_urls": _list(_url, "http(s) URLs"),
        "allowed_domains": _list(_domain, "host names"),
        "max_depth": _int(0),
        "max_pages": _int(0),
        "max_pages_per_host": _int(0),
        "max_url_length": _int(16),
        "max_path_repeats": _int(1),
        "include": _list(_regex, "regular expressions"),
        "exclude": _list(_regex, "regular expressions"),
        "content_types": _list(_str, "media types"),
        "obey_robots": _bool,
        "sitemaps": _bool,
        "site": _site,
        "follow_nofollow": _bool,
    }),
    "fetch": (FetchSettings, {
        "engine": _engine,
        "concurrency": _int(1),
        "per_host_concurrency": _int(1),
        "timeout": _timeout,
        "user_agent": _str,
        "headers": _headers,
        "max_bytes": _int(1),
        "max_redirects": _int(0),
        "verify_tls": _bool,
        "proxy": _proxy,
    }),
    "retry": (RetrySettings, {
        "retries": _int(0),
        "backoff": _number,
        "max_backoff": _number,
        "statuses": _list(_status, "HTTP status codes"),
    }),
    "rate_limit": (RateLimitSettings, {"per_host": _rate}),
    "output": (OutputSettings, {
        "dir": lambda key, value: Path(_str(key, value)),
        "items": _items,
        "pages": _bool,
    }),
    "state": (StateSettings, {"frontier": _frontier}),
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
    if not config.crawl.start_urls:
        raise ConfigError(
            "crawl.start_urls", list(config.crawl.start_urls), "at least one http(s) URL"
        )
    return config
