"""The crawler's exceptions, one tree.

```
CrawlerError
├── ConfigError(ValueError)        .key .value .expected
├── FetchError                     .request; the library's error as __cause__
│   ├── FetchTimeout(TimeoutError) .phase: connect | read | total
│   ├── ConnectError(ConnectionError) .kind: refused | connect | dns | tls
│   ├── ProtocolError              malformed response, bad encoding
│   │   └── BodyTooLarge           .received: decompressed bytes read before it stopped
│   ├── InvalidURL(ValueError)     not an absolute http(s) URL, or a redirect to one
│   ├── TooManyRedirects
│   ├── BlockedAddress             the address guard refused the target
│   └── HTTPStatusError            .response
├── RequestDropped                 .reason: robots | offsite | depth | trap | content-type
├── RetryLater                     .not_before; the caller re-queues instead of sleeping
├── ParseError                     .url .site
├── SinkError(OSError)             .path; writing the crawl's output failed
├── FrontierError                  the frontier's store failed
└── AlreadyRunning                 another process runs this crawl (folder, worker id)
```

Foreign exceptions (aiohttp's, requests') are translated once, at the engine
boundary, with the original kept as ``__cause__``. ``ErrorRecord`` is what a
failure becomes in a crawl's ``errors.jsonl`` and in a health check's report,
built from the exception in one place.
"""

from __future__ import annotations

import json
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pathlib import Path

    from crawler.models import Request, Response

__all__ = [
    "AlreadyRunning",
    "BlockedAddress",
    "BodyTooLarge",
    "ConfigError",
    "ConnectError",
    "CrawlerError",
    "ErrorRecord",
    "FetchError",
    "FetchTimeout",
    "FrontierError",
    "HTTPStatusError",
    "InvalidURL",
    "ParseError",
    "ProtocolError",
    "RequestDropped",
    "RetryLater",
    "SinkError",
    "TooManyRedirects",
]


class CrawlerError(Exception):
    """Base of every exception the crawler raises on purpose."""


class ConfigError(CrawlerError, ValueError):
    """A setting has a value the crawler cannot use.

    The message reads ``key: expected <expected>, got <value>``, or ``key: <problem>``
    when the value has the right form but names something that is not there."""

    def __init__(self, key: str, value: Any, expected: str, *, problem: str | None = None) -> None:
        self.key = key
        self.value = value
        self.expected = expected
        super().__init__(
            f"{key}: {problem}" if problem else f"{key}: expected {expected}, got {_show(value)}"
        )


def _show(value: Any) -> str:
    """Values as the user wrote them in TOML: strings in double quotes. Whatever
    the value, this returns text: an error message must not raise an error."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        pass
    if isinstance(value, int):  # Python refuses to print ints of over 4300 digits
        return f"an integer of {value.bit_length()} bits"
    try:
        return reprlib.repr(value)
    except ValueError:
        return f"a {type(value).__name__}"


class FetchError(CrawlerError):
    """Fetching one request failed; ``request`` is the request that failed."""

    def __init__(self, message: str, *, request: Request | None = None) -> None:
        self.request = request
        super().__init__(message)


Phase = Literal["connect", "read", "total"]


class FetchTimeout(FetchError, TimeoutError):
    """A timeout expired: ``phase`` says which one."""

    def __init__(self, message: str, *, phase: Phase, request: Request | None = None) -> None:
        self.phase: Phase = phase
        super().__init__(message, request=request)


ConnectKind = Literal["connect", "refused", "dns", "tls"]


class ConnectError(FetchError, ConnectionError):
    """No connection could be made or kept; ``kind`` tells a refused connection,
    DNS and TLS failures from the rest (reset, unreachable, proxy)."""

    def __init__(
        self, message: str, *, request: Request | None = None, kind: ConnectKind = "connect"
    ) -> None:
        self.kind: ConnectKind = kind
        super().__init__(message, request=request)


class ProtocolError(FetchError):
    """The server's answer is unusable: malformed, truncated, too large, badly encoded."""


class BodyTooLarge(ProtocolError):
    """The body, decompressed, is larger than the request's ``max_bytes``.

    ``received`` is how much of it, decompressed, the engine had read when it
    stopped: 0 when the declared length alone was too much. A bomb shows here that
    it was cut off, not inflated whole."""

    def __init__(self, message: str, *, request: Request | None = None, received: int = 0) -> None:
        self.received = received
        super().__init__(message, request=request)


class InvalidURL(FetchError, ValueError):
    """The URL is not an absolute http or https URL (also for redirect targets)."""


class TooManyRedirects(FetchError):
    """More redirects than allowed, or a redirect loop."""


class BlockedAddress(FetchError):
    """The address guard refused to connect to the target's address."""


class HTTPStatusError(FetchError):
    """Raised by ``Response.raise_for_status()`` for 4xx and 5xx answers."""

    def __init__(self, message: str, *, response: Response) -> None:
        self.response = response
        super().__init__(message, request=response.request)


class ParseError(CrawlerError):
    """A site's parser failed on a page; the crawl records it and goes on.

    ``details`` is the traceback of the site's exception as text: it survives the
    trip from a parse process, where the exception object's own traceback does not.
    """

    def __init__(self, message: str, *, url: str, site: str, details: str = "") -> None:
        self.url = url
        self.site = site
        self.details = details
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_parse_error, (str(self), self.url, self.site, self.details))


def _parse_error(message: str, url: str, site: str, details: str) -> ParseError:
    return ParseError(message, url=url, site=site, details=details)


class SinkError(CrawlerError, OSError):
    """Writing the crawl's output failed (disk full, permission, a file in the way),
    or an output file is not in the state a resume expects; ``path`` is the file.

    An ``OSError`` so that code which already handles I/O failures keeps working;
    the original error, when there is one, is the ``__cause__`` and its ``errno``
    is copied.
    """

    def __init__(self, message: str, *, path: Path | str, errno: int | None = None) -> None:
        self.path = path
        super().__init__(message)
        if errno is not None:
            self.errno = errno


class FrontierError(CrawlerError):
    """The frontier's store failed (disk full, unreachable server): fatal to a crawl."""


class AlreadyRunning(CrawlerError):
    """Another process holds what this crawl needs for itself: the output folder
    (two crawls writing one folder would tear each other's files), or, with a
    Redis frontier, the worker name (``--id``) whose heartbeat is still alive."""


class RequestDropped(CrawlerError):
    """Policy decided not to fetch a request (robots, scope, depth, trap, content type)."""

    def __init__(self, reason: str, *, request: Request | None = None) -> None:
        self.reason = reason
        self.request = request
        super().__init__(reason)


class RetryLater(CrawlerError):
    """The request should be tried again at ``not_before`` (a ``time.time()`` value).

    Raised by the retry policy instead of sleeping when the caller asked for it,
    so a crawler can put the request back in its frontier and free the worker.
    """

    def __init__(
        self,
        not_before: float,
        *,
        request: Request | None = None,
        response: Response | None = None,
        reason: str = "",
    ) -> None:
        self.not_before = not_before
        self.request = request
        self.response = response
        super().__init__(reason or f"retry at {not_before:.3f}")


# A failure as a record ----------------------------------------------------------------------

# Most specific first: BodyTooLarge is a ProtocolError, InvalidURL a ValueError.
_KINDS: list[tuple[type[BaseException], str]] = [
    (FetchTimeout, "timeout"),
    (BodyTooLarge, "too_large"),
    (TooManyRedirects, "too_many_redirects"),
    (BlockedAddress, "blocked"),
    (InvalidURL, "invalid_url"),
    # A page's own 4xx/5xx is a response; this error says the answer was one (the
    # page's in a crawl, or robots.txt's 5xx or 429 for the pages waiting on it).
    (HTTPStatusError, "http_status"),
    (ParseError, "parse"),
    (SinkError, "write"),
    (RetryLater, "timeout"),  # deferred, and out of tries before the server came back
]


def error_kind(exc: BaseException) -> str:
    """The ``kind`` of a failure: ``timeout``, ``refused``, ``connect``, ``dns``, ``tls``,
    ``too_large``, ``too_many_redirects``, ``blocked``, ``invalid_url``,
    ``http_status``, ``parse``, ``write``; ``protocol`` for anything else."""
    if isinstance(exc, ConnectError):
        return exc.kind
    for error_type, kind in _KINDS:
        if isinstance(exc, error_type):
            return kind
    return "protocol"


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """One URL that failed: a line of ``errors.jsonl``, a failed check's reason.

    ``status`` is the answer's status when the failure carries one (an
    ``HTTPStatusError``), else ``None``; ``referrer`` the page that led to the URL."""

    url: str
    kind: str
    status: int | None
    message: str
    referrer: str | None = None

    @classmethod
    def of(
        cls,
        exc: BaseException,
        *,
        url: str,
        referrer: str | None = None,
        status: int | None = None,
    ) -> ErrorRecord:
        """The record of ``exc``; ``status``: the answer that came with it, if any."""
        if isinstance(exc, HTTPStatusError):
            status = exc.response.status
        return cls(url, error_kind(exc), status, str(exc), referrer)

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "kind": self.kind, "status": self.status,
                "message": self.message, "referrer": self.referrer}  # fmt: skip

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> ErrorRecord | None:
        """The record a line of ``errors.jsonl`` holds; None for one that is not."""
        url, kind, status = record.get("url"), record.get("kind"), record.get("status")
        referrer = record.get("referrer")
        if not (isinstance(url, str) and isinstance(kind, str)):
            return None
        return cls(
            url, kind, status if isinstance(status, int) else None,
            str(record.get("message", "")), referrer if isinstance(referrer, str) else None,
        )  # fmt: skip
