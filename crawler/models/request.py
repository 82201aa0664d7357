"""Requests and what they carry: headers, timeouts, limits.

Frozen: middleware derives a changed request with ``request.replace(...)``
instead of mutating one that an outer layer still holds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from multidict import CIMultiDict, CIMultiDictProxy

__all__ = [
    "DEFAULT_MAX_BYTES",
    "Headers",
    "HeadersLike",
    "Kind",
    "Lineage",
    "Request",
    "Timeouts",
    "make_headers",
]

Headers = CIMultiDictProxy[str]
HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]]

DEFAULT_MAX_BYTES = 10_000_000


def make_headers(headers: HeadersLike | None = None) -> Headers:
    """Case-insensitive, multi-valued, read-only headers."""
    if isinstance(headers, CIMultiDictProxy):
        return headers
    if not headers:
        return _NO_HEADERS  # read-only, so one serves every request that has none
    return CIMultiDictProxy(CIMultiDict(headers))


_NO_HEADERS: Headers = CIMultiDictProxy(CIMultiDict())


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds allowed for each phase of one attempt; ``None`` means bounded only by ``total``.

    ``connect`` covers DNS, TCP and TLS; ``read`` is the longest silence while waiting
    for headers or body bytes; ``total`` is the wall-clock budget of the whole attempt,
    body included, so a server dripping one byte a second cannot hold a request open.
    """

    connect: float | None = None
    read: float | None = None
    total: float = 30.0

    def __post_init__(self) -> None:
        for name in ("connect", "read", "total"):
            value = getattr(self, name)
            if value is None and name != "total":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"Timeouts.{name} must be a positive number, got {value!r}")

    @classmethod
    def of(cls, value: Timeouts | float) -> Timeouts:
        """Accept a ``Timeouts`` or a number of seconds for the total."""
        return value if isinstance(value, Timeouts) else cls(total=float(value))

    @property
    def effective_connect(self) -> float:
        return min(self.connect or self.total, self.total)

    @property
    def effective_read(self) -> float:
        return min(self.read or self.total, self.total)


Kind = Literal["page", "sitemap", "robots"]


@dataclass(frozen=True, slots=True)
class Lineage:
    """Where a request stands in a crawl: the crawl's own bookkeeping, kept by every
    frontier beside the request. Outside a crawl a request has the default lineage.

    ``depth`` counts links followed from a start URL (start URLs and sitemaps: 0);
    ``kind`` says what the body is for; ``referrer`` is the page, redirect or sitemap
    that led here; ``hops`` the redirects followed to reach this URL; ``tries`` the
    times it went back to the frontier to be retried later; ``nesting``, for a
    sitemap, the index levels above it.
    """

    depth: int = 0
    kind: Kind = "page"
    referrer: str | None = None
    hops: int = 0
    tries: int = 0
    nesting: int = 0

    def replace(self, **changes: Any) -> Lineage:
        return dataclasses.replace(self, **changes)


NO_LINEAGE = Lineage()


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request. ``timeouts=None`` takes the fetcher's default.

    ``lineage`` is the crawl's record of where the request comes from; ``meta`` is
    yours: anything JSON can hold, kept unchanged through every frontier.
    """

    url: str
    method: str = "GET"
    headers: Headers = field(default_factory=make_headers)
    body: bytes | None = None
    timeouts: Timeouts | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    lineage: Lineage = NO_LINEAGE
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", self.method.upper())
        object.__setattr__(self, "headers", make_headers(self.headers))
        if isinstance(self.body, str):
            object.__setattr__(self, "body", self.body.encode())
        if self.max_bytes <= 0:
            raise ValueError(f"Request.max_bytes must be positive, got {self.max_bytes!r}")

    def replace(self, **changes: Any) -> Request:
        return dataclasses.replace(self, **changes)
