"""What one leased request produced, held until the next commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crawler.errors import ErrorRecord
from crawler.frontier import PageState, PageUpdate
from crawler.models import Request, Response

__all__ = ["Outcome"]


@dataclass(slots=True)
class Outcome:
    """Filled in by the request handler, written and counted by the committer."""

    request: Request
    status: int | None = None  # of the response, when one came back
    size: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)
    error: ErrorRecord | None = None
    problems: list[ErrorRecord] = field(default_factory=list)  # more records: rules' failures
    links: list[Request] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    release_at: float | None = None  # deferred: back to the frontier, ready at this time
    sent: bool = True  # False when policy dropped it before any request was made
    host: str | None = None  # counted against max_pages_per_host
    interrupted: bool = False  # cut short by stop(): released, not a deferred retry
    parsed: bool = False  # handed to the site's parser (which may have failed)
    rendered: bool = False  # the body is the DOM the headless browser rendered
    # A crawl in rounds: what an earlier round stored of the page, what this fetch
    # found (new, changed, unchanged, removed) and the page's state for the frontier.
    known: PageState | None = None
    change: str | None = None
    page: PageUpdate | None = None
    fetched_at: float = 0.0  # time.time() of the answer
    response: Response | None = None  # kept for the archive (output.warc) only
