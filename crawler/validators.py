"""Validators for TOML settings: each takes the dotted key and the raw value and
returns the checked value or raises ``ConfigError`` naming key, value and what
was expected. Shared by the crawl config and the health-check file."""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from crawler.errors import ConfigError
from crawler.middleware.ratelimit import parse_rate
from crawler.models import Timeouts
from crawler.urls import parse_http_url

__all__ = [
    "ENGINE_NAMES",
    "Check",
    "boolean",
    "domain",
    "engine",
    "headers",
    "http_url",
    "integer",
    "list_of",
    "number",
    "pattern",
    "positive",
    "proxy",
    "rate",
    "read_toml",
    "regex",
    "status",
    "string",
    "timeout",
]

ENGINE_NAMES = ("aiohttp", "futures", "threads")


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; a missing, unreadable or malformed file is a ConfigError."""
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
    except RecursionError:  # tomllib recurses once per nested array or table
        raise ConfigError("config", str(path), "valid TOML (nested too deeply)") from None
    return data


Check = Callable[[str, Any], Any]
P = TypeVar("P")


def integer(minimum: int) -> Check:
    expected = "a non-negative integer" if minimum == 0 else f"an integer >= {minimum}"

    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(key, value, expected)
        return value

    return check


def number(key: str, value: Any) -> float:
    if not _finite(value) or value < 0:
        raise ConfigError(key, value, "a non-negative number")
    return float(value)


def boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, value, "true or false")
    return value


def string(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, value, "a string")
    return value


def list_of(item: Check, expected: str) -> Check:
    def check(key: str, value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise ConfigError(key, value, f"a list of {expected}")
        return tuple(item(f"{key}[{i}]", v) for i, v in enumerate(value))

    return check


def http_url(key: str, value: Any) -> str:
    try:
        parse_http_url(string(key, value))
    except ValueError:
        raise ConfigError(key, value, "an absolute http:// or https:// URL") from None
    return str(value)


def domain(key: str, value: Any) -> str:
    text = string(key, value).strip().lower().rstrip(".")
    if not text or "/" in text or ":" in text or " " in text:
        raise ConfigError(key, value, "a host name such as example.org")
    return text


def pattern(compile: Callable[[str], P], error: type[Exception]) -> Callable[[str, Any], P]:
    """A check that compiles a regular expression with ``compile`` (``re``'s, or
    another engine's with the same API) and turns its ``error`` into a ConfigError."""

    def check(key: str, value: Any) -> P:
        try:
            return compile(string(key, value))
        except (error, OverflowError, RecursionError) as exc:  # a{4294967296}, (((((…
            raise ConfigError(key, value, f"a valid regular expression ({exc})") from None

    return check


regex = pattern(re.compile, re.error)


def status(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise ConfigError(key, value, "an HTTP status code (100-599)")
    return value


def engine(key: str, value: Any) -> str:
    if value not in ENGINE_NAMES:
        raise ConfigError(key, value, "one of " + ", ".join(ENGINE_NAMES))
    return str(value)


def timeout(key: str, value: Any) -> Timeouts:
    if isinstance(value, Mapping):
        known = {"connect", "read", "total"}
        for name in value:
            if name not in known:
                raise ConfigError(f"{key}.{name}", value[name], "connect, read or total")
        phases = {name: positive(f"{key}.{name}", v) for name, v in value.items()}
        return Timeouts(**phases)
    return Timeouts(total=positive(key, value))


def positive(key: str, value: Any) -> float:
    if not _finite(value) or value <= 0:
        raise ConfigError(key, value, "a positive number of seconds")
    return float(value)


def _finite(value: Any) -> bool:
    """A TOML number that is not a bool, nan or inf (nan passes every < check)."""
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def headers(key: str, value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        raise ConfigError(key, value, "a table of header names to strings")
    return tuple((str(name), string(f"{key}.{name}", v)) for name, v in value.items())


def rate(key: str, value: Any) -> str:
    try:
        parse_rate(string(key, value))
    except ValueError:
        raise ConfigError(key, value, 'a rate like "4/s" or "30/m", or ""') from None
    return str(value)


def proxy(key: str, value: Any) -> str:
    text = string(key, value)
    return http_url(key, text) if text else ""
