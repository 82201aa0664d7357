"""Checks for settings: each takes the key the user wrote (``fetch.timeout`` in a
TOML file, ``timeout`` as a keyword) and the raw value, and returns the value in
its normal form or raises ``ConfigError`` naming key, value and what was expected.
Shared by the fetch policy, the crawl config and the health-check file."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from crawler.errors import ConfigError
from crawler.models import Timeouts
from crawler.urls import parse_http_url

__all__ = [
    "Check",
    "boolean",
    "domain",
    "headers",
    "http_url",
    "integer",
    "list_of",
    "number",
    "one_of",
    "optional_size",
    "parse_rate",
    "pattern",
    "positive",
    "proxy",
    "rate",
    "regex",
    "status",
    "string",
    "timeout",
    "verify_tls",
]

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


def one_of(*choices: str) -> Check:
    """One of ``choices``, spelled exactly."""

    def check(key: str, value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ConfigError(key, value, "one of " + ", ".join(f'"{c}"' for c in choices))
        return value

    return check


def list_of(item: Check, expected: str) -> Check:
    """A list (a TOML array; as a keyword, any list, tuple or set) whose items pass ``item``."""

    def check(key: str, value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple | set | frozenset):
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


def timeout(key: str, value: Any) -> Timeouts:
    """Seconds for the whole attempt, a table of ``connect``, ``read`` and ``total``,
    or (as a keyword) a ``Timeouts``."""
    if isinstance(value, Timeouts):
        return value
    if isinstance(value, Mapping):
        known = {"connect", "read", "total"}
        for name in value:
            if name not in known:
                raise ConfigError(f"{key}.{name}", value[name], "connect, read or total")
        phases = {name: positive(f"{key}.{name}", v) for name, v in value.items()}
        return Timeouts(**phases)
    return Timeouts(total=positive(key, value))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_FORM = 'seconds, or a duration like "90s", "15m", "12h", "1d", "2w"'


def parse_duration(value: Any) -> float | None:
    """Seconds from a number or a string like ``"90s"``, ``"15m"``, ``"1d"``; None
    for anything else (negative, nan and inf included)."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            return None
        value = float(match.group(1)) * _DURATION_SECONDS[match.group(2)]
    if not _finite(value) or value < 0:
        return None
    return float(value)


def duration(key: str, value: Any) -> float:
    """Every duration key reads the same: a number of seconds, or ``"15m"`` and the like."""
    seconds = parse_duration(value)
    if seconds is None:
        raise ConfigError(key, value, f"a non-negative number of {_DURATION_FORM}")
    return seconds


def positive(key: str, value: Any) -> float:
    """A duration that is more than zero."""
    seconds = parse_duration(value)
    if seconds is None or seconds <= 0:
        raise ConfigError(key, value, f"a positive number of {_DURATION_FORM}")
    return seconds


def _finite(value: Any) -> bool:
    """A number that is not a bool, nan or inf (nan passes every < check)."""
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def headers(key: str, value: Any) -> tuple[tuple[str, str], ...]:
    """A table of names to strings (as a keyword, also a list of pairs); ``None``: none."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list | tuple) and all(
        isinstance(pair, tuple | list) and len(pair) == 2 for pair in value
    ):
        pairs = list(value)
    else:
        raise ConfigError(key, value, "a table of header names to strings")
    return tuple((str(name), string(f"{key}.{name}", v)) for name, v in pairs)


_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_UNIT_SECONDS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
                 "h": 3600, "hour": 3600}  # fmt: skip


def parse_rate(value: str | float | None) -> float | None:
    """Requests per second from ``"10/s"``, ``"30/m"``, ``"100/h"`` or a number; ``None``
    or ``""`` mean unlimited."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not value > 0 or not math.isfinite(value):
            raise ValueError(f"rate must be positive, got {value!r}")
        return float(value)
    match = _RATE.match(value) if isinstance(value, str) else None
    if not match or float(match[1]) <= 0:
        raise ValueError(f'rate must look like "10/s", "30/m" or "100/h", got {value!r}')
    return float(match[1]) / _UNIT_SECONDS[match[2]]


def rate(key: str, value: Any) -> float | None:
    """Requests per second, from ``"4/s"`` or a number; ``""`` or ``None``: no limit."""
    try:
        return parse_rate(value)
    except (ValueError, TypeError):
        raise ConfigError(key, value, 'a rate like "4/s" or "30/m", or ""') from None


def rate_or_auto(key: str, value: Any) -> float | str | None:
    """A rate, ``"auto"`` (learned per host), or ``""``/``None``: no limit."""
    if value == "auto":
        return "auto"
    try:
        return parse_rate(value)
    except (ValueError, TypeError):
        raise ConfigError(key, value, 'a rate like "4/s" or "30/m", "auto", or ""') from None


def positive_rate(key: str, value: Any) -> float:
    """A rate that must be given: ``"20/s"`` or a number per second."""
    try:
        per_second = parse_rate(value)
    except (ValueError, TypeError):
        per_second = None
    if per_second is None:
        raise ConfigError(key, value, 'a rate like "20/s" or "600/m"')
    return per_second


def host_rates(key: str, value: Any) -> tuple[tuple[str, float | str | None], ...]:
    """``{"example.org" = "2/s", "api.example.org" = "auto"}``: per host name, in
    pairs so a policy stays hashable; a name is matched whatever its case and port."""
    if isinstance(value, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        value = dict(value)
    if not isinstance(value, Mapping):
        raise ConfigError(key, value, "a table of host names to rates, "
                          'e.g. {"example.org" = "2/s"}')  # fmt: skip
    pairs = []
    for name, rate in value.items():
        if not isinstance(name, str) or not name or any(c in name for c in "/:@ "):
            raise ConfigError(f"{key}.{name}", rate, "a host name such as example.org")
        pairs.append((name.lower(), rate_or_auto(f"{key}.{name}", rate)))
    return tuple(sorted(pairs))


def proxy(key: str, value: Any) -> str | None:
    """An http(s) proxy URL; ``""`` or ``None``: no proxy."""
    if value is None or value == "":
        return None
    return http_url(key, value)


def verify_tls(key: str, value: Any) -> bool | str:
    if isinstance(value, bool) or (isinstance(value, str) and value):
        return value
    raise ConfigError(key, value, "true, false or the path of a PEM file of CAs to trust")


def optional_size(key: str, value: Any) -> int | None:
    """A number of bytes; ``0`` or ``None``: no limit."""
    if value is None or value == 0:
        return None
    return int(integer(1)(key, value))
