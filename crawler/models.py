"""The values that travel through the crawler: requests, responses, timeouts.

All are frozen: middleware derives a changed request with ``request.replace(...)``
instead of mutating one that an outer layer still holds.
"""

from __future__ import annotations

import dataclasses
import json as jsonlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

from crawler.encoding import decode_html
from crawler.errors import HTTPStatusError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "Headers",
    "HeadersLike",
    "Request",
    "Response",
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


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request. ``timeouts=None`` takes the fetcher's default."""

    url: str
    method: str = "GET"
    headers: Headers = field(default_factory=make_headers)
    body: bytes | None = None
    timeouts: Timeouts | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
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


@dataclass(frozen=True, slots=True)
class Response:
    """One HTTP response, body fully read (and capped at the request's ``max_bytes``).

    ``url`` is the final URL; ``request_url`` the one the caller asked for, which
    differs when redirects were followed (their responses are in ``history``).
    """

    request: Request
    status: int
    headers: Headers
    body: bytes = b""
    reason: str = ""
    url: str = ""
    elapsed: float = 0.0
    history: tuple[Response, ...] = ()
    # Keeps the body's share of the engine's body memory taken while any copy of
    # this response lives (see engines/_slots.py); None for small bodies.
    hold: object = field(default=None, repr=False, compare=False)
    _decoded: list[tuple[str, str]] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not self.url:
            object.__setattr__(self, "url", self.request.url)
        object.__setattr__(self, "headers", make_headers(self.headers))

    @property
    def request_url(self) -> str:
        return self.history[0].request.url if self.history else self.request.url

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def is_redirect(self) -> bool:
        return self.status in (301, 302, 303, 307, 308) and "location" in self.headers

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased (``""`` when absent)."""
        return self.headers.get("content-type", "").partition(";")[0].strip().lower()

    def _decode(self) -> tuple[str, str]:
        if not self._decoded:
            self._decoded.append(decode_html(self.body, self.headers.get("content-type")))
        return self._decoded[0]

    @property
    def encoding(self) -> str:
        """The encoding ``text`` was decoded with: header charset, BOM, ``<meta>``, detection."""
        return self._decode()[0]

    @property
    def text(self) -> str:
        return self._decode()[1]

    def json(self) -> Any:
        return jsonlib.loads(self.body)

    def raise_for_status(self) -> Response:
        """Return the response, or raise ``HTTPStatusError`` for a 4xx or 5xx status."""
        if self.status >= 400:
            kind = "client error" if self.status < 500 else "server error"
            raise HTTPStatusError(
                f"{self.status} {self.reason} ({kind}) for {self.url}".replace("  ", " "),
                response=self,
            )
        return self

    def replace(self, **changes: Any) -> Response:
        return dataclasses.replace(self, **changes)
