"""The crawl config: a frozen tree of settings with named defaults.

``[crawl]``, ``[output]``, ``[state]`` and ``[recrawl]`` are the crawl's own;
``[fetch]``, ``[retry]`` and ``[rate_limit]`` are the fetch policy's settings
(``crawler.policy``), read over the crawl's defaults (``CRAWL``). Unknown keys
are errors: a typo must not silently fall back to a default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from crawler.config.extract import parse_rules
from crawler.config.toml import ca_file, read_toml
from crawler.errors import ConfigError
from crawler.frontier import REDIS_SCHEMES
from crawler.frontier.base import CRAWL_NAME
from crawler.parse.rules import Rule
from crawler.policy import CRAWL, FetchPolicy, toml_sections
from crawler.policy.checks import (
    Check,
    boolean,
    domain,
    duration,
    http_url,
    integer,
    list_of,
    positive,
    regex,
    string,
)

__all__ = [
    "SCHEMA",
    "Config",
    "CrawlSettings",
    "OutputSettings",
    "RecrawlSettings",
    "StateSettings",
    "load_config",
    "parse_config",
]


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
    # "auto": processes under `crawl` on 2+ cores (see auto_parse_workers), else threads;
    # 1: threads of the crawl's process; more: that many processes
    parse_workers: int | Literal["auto"] = "auto"


@dataclass(frozen=True, slots=True)
class OutputSettings:
    dir: Path = Path("out/example")
    items: str = "items.jsonl"  # or "x.csv": kept as x.jsonl while crawling, a CSV at each end
    pages: bool = False
    columns: tuple[str, ...] = ()  # a CSV's first columns, in order; every other key follows
    warc: str = ""  # "crawl.warc.gz": every fetch archived in crawl-00000.warc.gz, ...; "": none
    warc_max_bytes: int = 1_000_000_000  # a WARC file's size before the next one starts


@dataclass(frozen=True, slots=True)
class StateSettings:
    frontier: str = "sqlite"  # memory | sqlite | a redis:// URL shared by many workers
    name: str = "crawl"  # the crawl's key prefix in Redis; load_config: the file's name
    lease_timeout: float = 60.0  # seconds of silence before a worker's leases go to others


@dataclass(frozen=True, slots=True)
class RecrawlSettings:
    """A crawl in rounds: each run of a finished crawl fetches again what is due."""

    after: float = 86400.0  # seconds from a page's fetch until it is due again
    adaptive: bool = True  # unchanged: twice as long next time; changed: half as long
    max_after: float = 30 * 86400.0  # the longest an adaptive wait grows


@dataclass(frozen=True, slots=True)
class Config:
    crawl: CrawlSettings = field(default_factory=CrawlSettings)
    fetch: FetchPolicy = CRAWL
    output: OutputSettings = field(default_factory=OutputSettings)
    state: StateSettings = field(default_factory=StateSettings)
    recrawl: RecrawlSettings | None = None  # None: no [recrawl], a finished crawl stays done
    extract: tuple[Rule, ...] = ()  # [[extract]] rules
    site_named: bool = False  # crawl.site was written (with rules: its items are kept too)
    # The config file's folder, where a site module named by crawl.site is looked
    # for first; None for a config built in code.
    folder: Path | None = None

    def replace(self, **sections: Any) -> Config:
        return replace(self, **sections)


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file. ``state.name`` defaults to the file's
    name, so two crawls of two files on one Redis keep apart; a CA bundle named
    by ``fetch.verify_tls`` is found beside the file."""
    path = Path(path)
    data = read_toml(path)
    state = data.get("state")
    if isinstance(state, Mapping) and "name" not in state:
        data["state"] = {**state, "name": _default_name(path)}
    elif state is None:
        data["state"] = {"name": _default_name(path)}
    config = parse_config(data).replace(folder=path.parent.resolve())
    if isinstance(config.fetch.verify_tls, str):
        bundle = ca_file("fetch.verify_tls", path.parent / config.fetch.verify_tls)
        config = config.replace(fetch=config.fetch.replace(verify_tls=bundle))
    return config


def _default_name(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-.") or "crawl"


def _items(key: str, value: Any) -> str:
    text = string(key, value)
    if not text.endswith((".jsonl", ".csv")) or "/" in text or "\\" in text or text.startswith("."):
        raise ConfigError(key, value, "a file name ending in .jsonl or .csv")
    if text.rpartition(".")[0] == "errors":  # a CSV's items are kept in NAME.jsonl
        raise ConfigError(key, value, "a name not taken by the errors file, errors.jsonl")
    return text


def _parse_workers(key: str, value: Any) -> int | Literal["auto"]:
    if value == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(key, value, '"auto" or an integer >= 1')
    return value


def _warc(key: str, value: Any) -> str:
    text = string(key, value)
    if text and (not text.endswith((".warc.gz", ".warc")) or not _FILE_STEM.fullmatch(text)):
        raise ConfigError(key, value, 'a file name ending in .warc.gz or .warc, or ""')
    return text


_FILE_STEM = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def _check_recrawl(config: Config, table: Mapping[str, Any]) -> Config:
    recrawl = config.recrawl
    if recrawl is None:
        return config
    if "max_after" not in table and recrawl.max_after < recrawl.after:  # a long after, alone
        recrawl = replace(recrawl, max_after=recrawl.after)
    if config.state.frontier != "sqlite":
        raise ConfigError(
            "state.frontier", config.state.frontier,
            '"sqlite" with [recrawl]: the page states between rounds live there '
            "(the memory frontier keeps nothing; Redis keeps no page states yet)",
        )  # fmt: skip
    if recrawl.max_after < recrawl.after:
        raise ConfigError("recrawl.max_after", table["max_after"],
                          f"at least recrawl.after ({recrawl.after:g} s)")  # fmt: skip
    return config.replace(recrawl=recrawl)


def _columns(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(key, value, "a non-empty list of column names")
    if not all(isinstance(name, str) and name for name in value):
        raise ConfigError(key, value, "column names that are non-empty strings")
    twice = [name for index, name in enumerate(value) if name in value[:index]]
    if twice:
        raise ConfigError(key, value, f"each column named once, not {twice[0]!r} twice")
    return tuple(value)


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
        raise ConfigError(key, value, 'a site name like "shop" or "module:Class"')
    return text


_SECTIONS: dict[str, tuple[type[Any], dict[str, Check]]] = {
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
        "parse_workers": _parse_workers,
    }),
    "output": (OutputSettings, {
        "dir": lambda key, value: Path(string(key, value)),
        "items": _items,
        "pages": boolean,
        "columns": _columns,
        "warc": _warc,
        "warc_max_bytes": integer(1),
    }),
    "state": (StateSettings, {
        "frontier": _frontier,
        "name": _name,
        "lease_timeout": positive,
    }),
    "recrawl": (RecrawlSettings, {
        "after": duration,
        "adaptive": boolean,
        "max_after": duration,
    }),
}  # fmt: skip

_POLICY = {
    section: {key: setting.check for key, setting in keys.items()}
    for section, keys in toml_sections().items()
}
SCHEMA: dict[str, dict[str, Check]] = {
    "crawl": _SECTIONS["crawl"][1], **_POLICY,
    "output": _SECTIONS["output"][1], "state": _SECTIONS["state"][1],
    "recrawl": _SECTIONS["recrawl"][1],
}  # fmt: skip
"""Every section of a crawl config, its keys and the check of each."""


def parse_config(data: Mapping[str, Any]) -> Config:
    """Validate a parsed TOML document (or any mapping of the same shape)."""
    sections: dict[str, Any] = {}
    for name, value in data.items():
        if name == "extract":
            sections["extract"] = parse_rules(value)
            continue
        if name not in SCHEMA:
            raise ConfigError(name, value, "a section named " + ", ".join([*SCHEMA, "extract"]))
        if not isinstance(value, Mapping):
            raise ConfigError(name, value, f"a [{name}] table")
        if name not in _SECTIONS:
            continue  # the fetch policy's: read below, all together
        settings_class, checks = _SECTIONS[name]
        values = {}
        for key, raw in value.items():
            if key not in checks:
                raise ConfigError(
                    f"{name}.{key}", raw, "a key of [" + name + "]: " + ", ".join(checks)
                )
            values[key] = checks[key](f"{name}.{key}", raw)
        sections[name] = settings_class(**values)
    sections["fetch"] = CRAWL.from_toml(data)
    crawl = data.get("crawl")
    config = Config(**sections, site_named=isinstance(crawl, Mapping) and "site" in crawl)
    if not config.crawl.start_urls:
        raise ConfigError(
            "crawl.start_urls", list(config.crawl.start_urls), "at least one http(s) URL"
        )
    config = _check_recrawl(config, data.get("recrawl", {}))
    if config.output.columns and not config.output.items.endswith(".csv"):
        raise ConfigError("output.columns", list(config.output.columns),
                          "no columns, unless output.items names a .csv file")  # fmt: skip
    return config
