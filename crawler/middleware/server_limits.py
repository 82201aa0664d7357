"""What a server says of its own rate limit, from its response headers: the most it
allows on average, and how long to wait when its quota is spent.

Servers speak three dialects, all read here:

- the IETF httpapi draft's structured fields (RFC 9651): ``RateLimit-Policy:
  "burst";q=100;w=60`` (a quota ``q`` per window of ``w`` seconds, one item per
  policy) and ``RateLimit: "burst";r=50;t=30`` (``r`` left, reset in ``t`` s); its
  interim form ``RateLimit: limit=100, remaining=50, reset=30``, and its oldest
  ``RateLimit-Policy: 100;w=60``;
- the draft's first headers: ``RateLimit-Limit``, ``RateLimit-Remaining`` and
  ``RateLimit-Reset`` (seconds);
- the common ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
  ``X-RateLimit-Reset``, whose reset is seconds or, as GitHub sends it, a Unix time.

A header that does not parse is ignored: a server's mistake must not stop a crawl.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeGuard

from http_sf import parse

__all__ = ["ServerLimit", "read_server_limit"]

_UNIX_TIME = 1e9  # a reset past this many seconds is a point in time, not a delay
_UNIX_TIME_MS = 1e12  # ... and past this, one in milliseconds
_MAX_WAIT = 86400.0


@dataclass(frozen=True, slots=True)
class ServerLimit:
    """``rate``: requests per second the server allows from here on (its quota over
    its window, or what is left of it over the time to its reset); ``wait``: seconds
    until anything is allowed again, when nothing is left. None: not said."""

    rate: float | None = None
    wait: float | None = None


def read_server_limit(headers: Mapping[str, str], now: float) -> ServerLimit | None:
    """None when the response says nothing of a limit. ``headers`` must look names
    up without regard to case (``multidict.CIMultiDict`` does)."""
    rates: list[float] = []
    left: list[tuple[float, float]] = []  # (remaining, seconds to the reset)
    policy = headers.get("ratelimit-policy")
    if policy:
        rates += _policies(policy)
    current = headers.get("ratelimit")
    if current:
        left += _structured_remaining(current)
    for prefix in ("ratelimit-", "x-ratelimit-"):
        remaining = _number(headers.get(prefix + "remaining"))
        reset = _number(headers.get(prefix + "reset"))
        if remaining is not None and reset is not None:
            left.append((remaining, _delay(reset, now)))
    if not rates and not left:
        return None
    wait = None
    for remaining, reset in left:
        if remaining < 1:
            wait = max(wait or 0.0, min(reset, _MAX_WAIT))
        elif reset > 0:
            rates.append(remaining / reset)
    return ServerLimit(min(rates) if rates else None, wait)


def _policies(value: str) -> list[float]:
    """``q/w`` of each policy; an old-style bare number is the quota."""
    found = []
    for item, params in _list(value):
        quota = params.get("q", item)
        window = params.get("w")
        if _positive(quota) and _positive(window):
            found.append(float(quota) / float(window))
    return found


def _structured_remaining(value: str) -> list[tuple[float, float]]:
    found = []
    for _, params in _list(value):
        remaining, reset = params.get("r"), params.get("t")
        if _count(remaining) and _count(reset):
            found.append((float(remaining), float(reset)))
    if not found:  # the interim form: a dictionary
        table = _parse(value, "dictionary")
        if not isinstance(table, dict):
            return found
        remaining, reset = (_bare(table.get(key)) for key in ("remaining", "reset"))
        if _count(remaining) and _count(reset):
            found.append((float(remaining), float(reset)))
    return found


def _parse(value: str, kind: str) -> Any:
    """A structured field (RFC 9651) as ``http_sf`` gives it; None when malformed."""
    try:
        return parse(value.encode("latin-1"), tltype=kind)
    except (ValueError, UnicodeEncodeError):
        return None


def _list(value: str) -> list[tuple[Any, dict[str, Any]]]:
    members = _parse(value, "list")
    if not isinstance(members, list):
        return []
    return [m for m in members if isinstance(m, tuple) and isinstance(m[1], dict)]


def _bare(member: Any) -> Any:
    return member[0] if isinstance(member, tuple) else None


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _delay(reset: float, now: float) -> float:
    if reset > _UNIX_TIME_MS:  # milliseconds since 1970, as a few servers send
        reset /= 1000
    return max(0.0, reset - now) if reset > _UNIX_TIME else reset


def _count(value: Any) -> TypeGuard[float]:
    """A number of structured fields: an integer, or a ``Decimal`` such as ``w=0.5``."""
    numeric = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
    return numeric and math.isfinite(value) and value >= 0


def _positive(value: Any) -> TypeGuard[float]:
    return _count(value) and value > 0
