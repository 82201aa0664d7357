"""What one request produced, and the pure helpers that turn fetch results into it.

Kept apart from the crawler's scheduling so each reads on its own: nothing here
awaits, leases or commits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from crawler.errors import (
    BlockedAddress,
    BodyTooLarge,
    ConnectError,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    InvalidURL,
    ParseError,
    TooManyRedirects,
)
from crawler.models import Request
from crawler.sinks._jsonl import to_json
from crawler.site import Item, Link, Page, Site
from crawler.urls import fingerprint

__all__ = [
    "Outcome",
    "absolute_location",
    "error_kind",
    "error_status",
    "is_page",
    "run_site",
    "same_page",
    "sitemap_request",
]


@dataclass(slots=True)
class Outcome:
    """What one request produced, held until the next commit."""

    request: Request
    status: int | None = None
    size: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    links: list[Request] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    release_at: float | None = None  # deferred: back to the frontier, ready at this time
    sent: bool = True  # False when policy dropped it before any request was made
    host: str | None = None  # counted against max_pages_per_host
    interrupted: bool = False  # cut short by stop(): released, not a deferred retry


def run_site(site: Site, page: Page) -> list[Item | Link]:
    """Run the site's parser in a worker thread; its failure is the page's, not the crawl's.

    Every result is checked here, off the loop: a link must be a ``Link`` and an item
    a mapping that JSON can hold, so nothing a site yields can break a commit later."""
    try:
        results: list[Item | Link] = []
        for result in site.parse(page):
            if isinstance(result, Link):
                results.append(result)
            elif isinstance(result, Mapping):
                item = Item(result)
                to_json(item)
                results.append(item)
            else:
                raise TypeError(f"a site yields Item or Link, not {type(result).__name__}")
        return results
    except Exception as exc:
        raise ParseError(
            f"{type(exc).__name__}: {exc}", url=page.url, site=type(site).__name__
        ) from exc


_KINDS: list[tuple[type[FetchError], Callable[[FetchError], str]]] = [
    (FetchTimeout, lambda exc: "timeout"),
    (ConnectError, lambda exc: getattr(exc, "kind", "connect")),
    (BodyTooLarge, lambda exc: "too_large"),
    (TooManyRedirects, lambda exc: "too_many_redirects"),
    (BlockedAddress, lambda exc: "blocked"),
    (InvalidURL, lambda exc: "invalid_url"),
    # A page's own 4xx/5xx is a response, not an error; this one is raised for another
    # request (robots.txt answered 5xx or 429) and reported as the page's error.
    (HTTPStatusError, lambda exc: "http_status"),
]


def error_kind(exc: FetchError) -> str:
    """The ``kind`` of an error record; ``protocol`` for anything else that went wrong."""
    for error_type, kind in _KINDS:
        if isinstance(exc, error_type):
            return kind(exc)
    return "protocol"


def error_status(exc: BaseException | None) -> int | None:
    """The ``status`` of an error record: the answer's status when the error carries one
    (``HTTPStatusError``), else ``None``, as for any error without a response."""
    return exc.response.status if isinstance(exc, HTTPStatusError) else None


def is_page(request: Request) -> bool:
    """Sitemaps are fetched too, but only pages count against ``max_pages``."""
    return request.meta.get("kind") != "sitemap"


def same_page(a: str, b: str) -> bool:
    try:
        return fingerprint(a) == fingerprint(b)
    except ValueError:
        return False


def sitemap_request(url: str, nesting: int = 0) -> Request:
    return Request(url, meta={"depth": 0, "kind": "sitemap", "nesting": nesting})


def absolute_location(base: str, location: str) -> str | None:
    try:
        target = urljoin(base, location.strip())
    except ValueError:
        return None
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return urlunsplit(parts._replace(fragment=""))
