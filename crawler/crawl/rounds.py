"""A crawl in rounds: what changed since a page's last fetch, and when to fetch it again.

A page fetched in an earlier round is asked for with the validators it sent then
(``If-None-Match``, ``If-Modified-Since``). A 304, or a 200 whose body has the
digest stored, is *unchanged*: no item, and the page's stored outlinks stand in
for its links. A 200 with another body is *changed*; a page never fetched before
is *new*; a page that was there and now answers 404 or 410 is *removed*. Each
page then waits ``after`` seconds for its next round, or, ``adaptive``, twice as
long as last time when it did not change and half as long when it did.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Literal

from crawler.config import RecrawlSettings
from crawler.crawl.outcome import Outcome
from crawler.frontier import PageState
from crawler.middleware.cache import conditions
from crawler.models import Response

__all__ = [
    "GONE",
    "Change",
    "change_record",
    "classify",
    "conditional_headers",
    "digest",
    "next_state",
]

Change = Literal["new", "changed", "unchanged", "removed"]
GONE = frozenset({404, 410})  # a page that answers these was removed


def digest(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=16).digest()


def conditional_headers(known: PageState | None) -> list[tuple[str, str]]:
    """The validators a page's last full answer gave, to ask whether it changed."""
    if known is None or known.status in GONE:
        return []
    return conditions(known.etag, known.last_modified)


def classify(known: PageState | None, status: int, body_digest: bytes) -> Change | None:
    """What this answer means for the page; None when it says nothing of it (an error
    the page keeps its old state through, or a page gone that was gone already)."""
    if status == 304:
        return "unchanged" if known is not None else None
    if status in GONE:
        return "removed" if known is not None and known.status not in GONE else None
    if status >= 300:
        return None
    if known is None or known.status in GONE:
        return "new"
    return "unchanged" if body_digest == known.digest else "changed"


def next_state(
    known: PageState | None,
    response: Response,
    change: Change,
    body_digest: bytes,
    now: float,
    settings: RecrawlSettings,
    round: int,
) -> PageState:
    """The page's state after this answer: validators and digest of its current
    body (a 304 keeps the stored ones, updated by any it sent), and its next due time."""
    headers = response.headers
    if change == "unchanged" and known is not None:
        interval = _longer(known.interval, settings)
        status, etag, modified = known.status, known.etag, known.last_modified
        body_digest = known.digest
        if response.status == 304:  # RFC 9111 4.3.4: a 304 may update the validators
            etag = headers.get("etag", etag)
            modified = headers.get("last-modified", modified)
        else:
            etag, modified = headers.get("etag"), headers.get("last-modified")
    else:
        interval = settings.after
        if change == "changed" and known is not None and settings.adaptive:
            interval = max(settings.after, known.interval / 2)
        status, etag, modified = response.status, headers.get("etag"), headers.get("last-modified")
    archived = known.archived if known is not None else None
    return PageState(status, etag, modified, body_digest, now, interval, now + interval, archived,
                     round)  # fmt: skip


def _longer(interval: float, settings: RecrawlSettings) -> float:
    if not settings.adaptive:
        return settings.after
    return min(settings.max_after, max(settings.after, interval * 2))


def change_record(outcome: Outcome, round: int) -> dict[str, Any]:
    """The line ``changes.jsonl`` gets for a page that is new, changed or removed."""
    fetched_at = datetime.fromtimestamp(outcome.fetched_at, UTC).isoformat(timespec="seconds")
    return {"url": outcome.request.url, "round": round, "change": outcome.change,
            "status": outcome.status, "fetched_at": fetched_at}  # fmt: skip
