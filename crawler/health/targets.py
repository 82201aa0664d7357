"""The health-check file: ``[defaults]`` and ``[[target]]`` tables, validated into
frozen ``Target`` values. Every target key may also sit in ``[defaults]``; a
bad value raises ``ConfigError`` naming the key (``target[2].status``), the
value and what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex as bounded_re

from crawler.config import ca_file, read_toml
from crawler.errors import ConfigError
from crawler.health.alerts import Alert, parse_alerts
from crawler.health.maintenance import Window, parse_maintenance
from crawler.policy import HEALTH, FetchPolicy
from crawler.policy.checks import (
    Check,
    boolean,
    headers,
    http_url,
    integer,
    number,
    pattern,
    positive,
    string,
    verify_tls,
)

__all__ = [
    "HealthConfig",
    "StatusRule",
    "Target",
    "load_health_config",
    "parse_health_config",
]

DEFAULT_TIMEOUT = HEALTH.timeouts.total
METHODS = ("GET", "HEAD", "POST")


@dataclass(frozen=True, slots=True)
class StatusRule:
    """Accepted statuses: exact codes and classes such as ``2xx``."""

    codes: frozenset[int] = frozenset()
    classes: frozenset[int] = frozenset()  # 2 for "2xx"

    def accepts(self, status: int) -> bool:
        return status in self.codes or status // 100 in self.classes

    def __str__(self) -> str:
        parts = [f"{c}xx" for c in sorted(self.classes)] + [str(c) for c in sorted(self.codes)]
        return " or ".join(parts)


HEALTHY = StatusRule(classes=frozenset({2, 3}))  # no status condition: anything below 400


@dataclass(frozen=True, slots=True)
class Target:
    """One URL and the conditions its response must meet."""

    name: str
    url: str
    method: str = "GET"
    request_headers: tuple[tuple[str, str], ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    retries: int = 0
    follow_redirects: bool = True
    verify_tls: bool | str = True  # a str: PEM file of the CAs to trust
    # conditions
    status: StatusRule = HEALTHY
    max_latency_ms: float | None = None
    body_contains: tuple[str, ...] = ()
    body_regex: bounded_re.Pattern[str] | None = None  # `regex`: its search takes a timeout
    headers: tuple[tuple[str, str], ...] = ()  # response headers: name, expected substring
    json: tuple[tuple[str, Any], ...] = ()  # dotted path, expected value
    cert_min_days: float | None = None
    # its state (watch mode): down after this many failed checks in a row, up again
    # after this many passes in a row
    failures: int = 1
    successes: int = 1
    slo: float | None = None  # uptime objective in percent, for --report

    def policy(self, *, engine: str, concurrency: int) -> FetchPolicy:
        """How to fetch this target: the health checks' defaults with its own settings.
        No rate limit: a check must see the server as users do, all at once."""
        return HEALTH.replace(
            engine=engine, concurrency=concurrency, per_host_concurrency=concurrency,
            timeout=self.timeout, retries=self.retries, follow_redirects=self.follow_redirects,
            verify_tls=self.verify_tls,
            max_backoff=self.timeout,  # a Retry-After of an hour must not stall it
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """A whole health-check file: its targets in file order, and the status page's title."""

    targets: tuple[Target, ...]
    title: str = "crawl check"
    alerts: tuple[Alert, ...] = ()
    maintenance: tuple[Window, ...] = ()


def load_health_config(path: str | Path) -> HealthConfig:
    """Read and validate a health-check TOML file; relative CA paths are taken
    from the file's folder."""
    return parse_health_config(read_toml(path), base=Path(path).parent)


def parse_health_config(data: Mapping[str, Any], *, base: Path = Path()) -> HealthConfig:
    """Validate a parsed health-check document; ``base`` anchors relative CA paths.
    Unknown keys are reported first, anywhere in the file: a misspelt key is the
    mistake, not the value its absence leaves missing."""
    _known_keys("", data, ("title", "defaults", "target", "alert", "maintenance"),
                listed="title, [defaults], [[target]], [[alert]], [[maintenance]]")  # fmt: skip
    defaults = data.get("defaults", {})
    if not isinstance(defaults, Mapping):
        raise ConfigError("defaults", defaults, "a [defaults] table")
    tables = data.get("target")
    if tables is None:
        raise _KeyProblem("target", "required (at least one [[target]] table)")
    if not isinstance(tables, list) or not tables:
        raise ConfigError("target", tables, "at least one [[target]] table")
    for index, table in enumerate(tables):
        if not isinstance(table, Mapping):
            raise ConfigError(f"target[{index}]", table, "a [[target]] table")
    _known_keys("defaults.", defaults, _SHARED, elsewhere=_PER_TARGET)
    for index, table in enumerate(tables):
        _known_keys(f"target[{index}].", table, _CHECKS)
    title = string("title", data.get("title", "crawl check"))
    shared = _options("defaults", defaults, base, allowed=_SHARED)
    targets: list[Target] = []
    names: set[str] = set()
    for index, table in enumerate(tables):
        key = f"target[{index}]"
        if "url" not in table:
            raise _KeyProblem(f"{key}.url", "required (the http:// or https:// URL to check)")
        options = {**shared, **_options(key, table, base, allowed=_CHECKS)}
        options.setdefault("name", options["url"])
        if options["name"] in names:
            raise ConfigError(f"{key}.name", options["name"], "a name no other target has")
        names.add(options["name"])
        target = Target(**options)
        if target.cert_min_days is not None and not target.url.lower().startswith("https:"):
            raise ConfigError(f"{key}.cert_min_days", target.cert_min_days, "an https:// url")
        targets.append(target)
    alerts = parse_alerts(data.get("alert"), names)
    windows = parse_maintenance(data.get("maintenance"), names)
    return HealthConfig(tuple(targets), title, alerts, windows)


class _KeyProblem(ConfigError):
    """A key that is missing or unknown, said in words of its own rather than as
    ``expected X, got Y``: ``target[0].urll: unknown key (expected one of: ...)``."""

    def __init__(self, key: str, problem: str, value: Any = None) -> None:
        super().__init__(key, value, problem)

    def __str__(self) -> str:
        return f"{self.key}: {self.expected}"


def _known_keys(
    prefix: str, table: Mapping[str, Any], allowed: Collection[str], *,
    listed: str | None = None, elsewhere: Mapping[str, str] | None = None,
) -> None:  # fmt: skip
    """Refuse the first key of ``table`` not in ``allowed``, listing those that are
    (``listed`` spells them as the file does) and, for a key that belongs in another
    table, saying where (``elsewhere``)."""
    for key, value in table.items():
        if key not in allowed:
            why = f"{elsewhere[key]}; " if elsewhere and key in elsewhere else ""
            listed = listed or ", ".join(allowed)
            problem = f"unknown key ({why}expected one of: {listed})"
            raise _KeyProblem(f"{prefix}{key}", problem, value)


def _options(
    section: str, table: Mapping[str, Any], base: Path, *, allowed: Mapping[str, Check]
) -> dict[str, Any]:
    """The validated values of ``table``, whose keys ``_known_keys`` has checked."""
    options: dict[str, Any] = {}
    for key, value in table.items():
        options[key] = allowed[key](f"{section}.{key}", value)
    if isinstance(options.get("verify_tls"), str):
        options["verify_tls"] = ca_file(f"{section}.verify_tls", base / options["verify_tls"])
    return options


# validators ------------------------------------------------------------------------------


def _status(key: str, value: Any) -> StatusRule:
    codes: set[int] = set()
    classes: set[int] = set()
    for index, item in enumerate(value if isinstance(value, list) else [value]):
        where = f"{key}[{index}]" if isinstance(value, list) else key
        if isinstance(item, int) and not isinstance(item, bool) and 100 <= item <= 599:
            codes.add(item)
        elif isinstance(item, str) and re.fullmatch(r"[1-5]xx", item.lower()):
            classes.add(int(item[0]))
        else:
            raise ConfigError(where, item, 'a status code (100-599) or a class such as "2xx"')
    if not codes and not classes:
        raise ConfigError(key, value, "at least one status")
    return StatusRule(frozenset(codes), frozenset(classes))


def _method(key: str, value: Any) -> str:
    text = string(key, value).upper()
    if text not in METHODS:
        raise ConfigError(key, value, "one of " + ", ".join(METHODS))
    return text


def _days(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(key, value, "a number of days")
    return float(value)


def _slo(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 100:
        raise ConfigError(key, value, "an uptime objective in percent, above 0 and below 100, "
                          "such as 99.9")  # fmt: skip
    return float(value)


def _strings(key: str, value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) and item for item in items):
        raise ConfigError(key, value, "a non-empty string or a list of them")
    return tuple(items)


def _json(key: str, value: Any) -> tuple[tuple[str, Any], ...]:
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(key, value, 'a table of dotted paths to values, e.g. {"status" = "ok"}')
    paths = _flatten(value)
    for path, expected in paths:
        if any(not part for part in path.split(".")):
            raise ConfigError(f"{key}.{path}", expected, "a dotted path such as db.connected")
    return paths


def _flatten(table: Mapping[str, Any], prefix: str = "") -> tuple[tuple[str, Any], ...]:
    """``{db.connected = true}`` (unquoted: a nested table in TOML) and
    ``{"db.connected" = true}`` mean the same path."""
    paths: list[tuple[str, Any]] = []
    for name, value in table.items():
        path = f"{prefix}{name}"
        if isinstance(value, Mapping) and value:
            paths += _flatten(value, path + ".")
        else:
            paths.append((path, value))
    return tuple(paths)


def _name(key: str, value: Any) -> str:
    text = string(key, value)
    if not text.strip():
        raise ConfigError(key, value, "a non-empty name")
    return text


_SHARED: dict[str, Check] = {
    "method": _method,
    "request_headers": headers,
    "timeout": positive,
    "retries": integer(0),
    "follow_redirects": boolean,
    "verify_tls": verify_tls,
    "status": _status,
    "max_latency_ms": number,
    "body_contains": _strings,
    "body_regex": pattern(bounded_re.compile, bounded_re.error),
    "headers": headers,
    "json": _json,
    "cert_min_days": _days,
    "failures": integer(1),
    "successes": integer(1),
    "slo": _slo,
}
_CHECKS: dict[str, Check] = {"name": _name, "url": http_url, **_SHARED}
_PER_TARGET = {key: f"each [[target]] has its own {key}" for key in ("name", "url")}
