"""The frontier seam: what to fetch next, what was seen, what is done.

A frontier owns deduplication (by the fingerprint of the canonical URL), order
(breadth-first: lowest depth first, then first pushed), leases and persistence.
Every frontier keeps a request's URL, method and headers, its lineage (depth,
kind, referrer, hops, tries, nesting: the crawl's bookkeeping) and its ``meta``
(the user's own) as they were pushed or released.
The crawler talks to it in batches: one ``commit`` marks fetched requests done,
pushes the links they produced, releases deferred requests, and records the
byte offsets of the output files that hold their items, all atomically. That
last part is what makes resume exact: after a crash the outputs are cut back to
the recorded offsets and every request not committed is leased again, so each
item is written exactly once.

For a crawl that runs in rounds (recrawl) a frontier also keeps what it learnt
of each fetched page (``PageState``: validators, digest, schedule, outlinks as
references to their rows), makes the due pages pending again when a round
begins, and hands the state back with each lease so a page can be revalidated.
Only the SQLite frontier keeps page states (``keeps_pages``).

A frontier shared by several workers (``redis``) adds one rule: a worker whose
leases were handed to another worker must not commit them, or their items would
be written twice. Its commit raises ``LeaseLost`` and changes nothing.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from crawler.errors import FrontierError
from crawler.models import AsyncResource, Request, Resource

__all__ = [
    "CRAWL_NAME",
    "BaseFrontier",
    "Batch",
    "Frontier",
    "FrontierStats",
    "Lease",
    "LeaseLost",
    "PageState",
    "PageUpdate",
]


# Crawl and worker names: no ':' (so key prefixes stay disjoint), no glob characters.
CRAWL_NAME = re.compile(r"[A-Za-z0-9._-]+")


class LeaseLost(FrontierError):
    """This worker no longer holds ``count`` of the leases it tried to commit:
    its heartbeat ran out and they went back to the queue, maybe to another
    worker. Nothing was applied. The worker must stop, since the items it
    already wrote for them would otherwise be written twice; on restart its
    outputs are cut back to its last checkpoint."""

    def __init__(self, count: int, worker: str) -> None:
        super().__init__(
            f"worker {worker!r} lost {count} lease(s): its heartbeat ran out and the "
            "requests were given back; stop this worker and restart it"
        )
        self.count = count
        self.worker = worker


@dataclass(frozen=True, slots=True)
class PageState:
    """What a crawl in rounds keeps of a page between its fetches."""

    status: int
    etag: str | None = None
    last_modified: str | None = None
    digest: bytes = b""  # of the body, to tell a changed 200 from the same one
    fetched_at: float = 0.0  # time.time()
    interval: float = 0.0  # seconds from one fetch to the next (adaptive)
    due_at: float = 0.0  # fetched_at + interval
    archived: str | None = None  # the WARC reference of its last full response
    round: int = 0  # the round of this fetch


@dataclass(frozen=True, slots=True)
class PageUpdate:
    """A fetched page's new state. ``outlinks`` None keeps the stored ones (the page
    did not change) and makes those of them that are due pending again."""

    request: Request
    state: PageState
    outlinks: Sequence[Request] | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    """What ``lease`` handed out. ``requests`` empty and ``finished`` false means
    "nothing ready yet": others are in flight, or deferred until ``next_at``.
    ``known`` holds the stored state of leased pages fetched in an earlier round."""

    requests: list[Request]
    finished: bool = False
    next_at: float | None = None  # time.time() when a deferred request becomes ready
    known: Mapping[str, PageState] = field(default_factory=dict)  # by request URL


@dataclass(frozen=True, slots=True)
class FrontierStats:
    seen: int = 0  # every URL ever accepted
    pending: int = 0  # waiting to be leased (deferred ones included)
    leased: int = 0  # handed out, not yet completed
    done: int = 0


@dataclass(slots=True)
class Batch:
    """One atomic step of a crawl; see the module docstring."""

    done: list[Request] = field(default_factory=list)
    links: list[Request] = field(default_factory=list)
    released: list[tuple[Request, float]] = field(default_factory=list)
    checkpoint: dict[str, int] = field(default_factory=dict)  # values to set
    # Values to add, so that many workers can count into one key. Applied after
    # ``checkpoint``; both share one namespace of keys.
    counters: dict[str, int] = field(default_factory=dict)
    pages: list[PageUpdate] = field(default_factory=list)  # applied after ``links``
    # A crawl in rounds: the round ``done`` was fetched in. A page done in this round
    # (even one that failed, or redirected, and so kept its old state) is not pended
    # again by an unchanged page's outlinks.
    round: int = 0


@runtime_checkable
class Frontier(Resource, Protocol):
    async def open(self) -> None:
        """Open the store. A store used by one process releases every lease it
        finds, since the process that held them is gone; a shared store releases
        those of this worker's earlier run."""

    async def commit(self, batch: Batch) -> list[bool]:
        """Apply ``batch`` atomically; return, per link, whether it was new.
        A shared store raises ``LeaseLost`` (applying nothing) when this worker
        does not hold every request in ``done`` and ``released``."""
        ...

    async def lease(self, limit: int, *, seconds: float = 600.0) -> Lease:
        """Hand out up to ``limit`` ready requests, each for ``seconds``; a lease
        not completed in time is handed out again. (A shared store ties leases
        to its worker's heartbeat instead of ``seconds``.)"""
        ...

    async def push(self, requests: Sequence[Request]) -> list[bool]:
        """Add requests not seen before; per request, whether it was new."""
        ...

    async def complete(self, requests: Sequence[Request]) -> None: ...

    async def release(self, request: Request, not_before: float = 0.0) -> None:
        """Give a leased request back, ready again at ``not_before`` (time.time())."""
        ...

    async def extend(self, requests: Sequence[Request], seconds: float) -> None:
        """Keep leases alive for ``seconds`` more (a long download or parse)."""
        ...

    async def checkpoint(self, keys: Sequence[str] | None = None) -> Mapping[str, int]:
        """The values recorded so far: the last ``checkpoint`` value of each key,
        plus every ``counters`` increment, in one mapping; only ``keys``, if given
        (a worker asking often for one counter need not read them all)."""
        ...

    async def stats(self) -> FrontierStats: ...

    async def clear(self) -> None:
        """Forget everything: a fresh start."""
        ...


class BaseFrontier(AsyncResource):
    """The single-request operations, expressed as one-item batches, so a
    backend implements the batch once and gets the rest right for free."""

    @abstractmethod
    async def commit(self, batch: Batch) -> list[bool]: ...

    @abstractmethod
    async def lease(self, limit: int, *, seconds: float = 600.0) -> Lease: ...

    @abstractmethod
    async def extend(self, requests: Sequence[Request], seconds: float) -> None: ...

    @abstractmethod
    async def checkpoint(self, keys: Sequence[str] | None = None) -> Mapping[str, int]: ...

    @abstractmethod
    async def stats(self) -> FrontierStats: ...

    @abstractmethod
    async def clear(self) -> None: ...

    keeps_pages: bool = False  # True: page states and rounds (see the module docstring)

    async def due(self, now: float) -> tuple[int, float | None]:
        """Pages fetched before whose time has come, and when the next one is due."""
        raise FrontierError(f"{type(self).__name__} keeps no page states")

    async def begin_round(
        self, now: float, *, every: bool, checkpoint: Mapping[str, int], reset: Sequence[str]
    ) -> int:
        """Make pending again every done request that is due (all with ``every``;
        start URLs, sitemaps and requests without a page state always), delete the
        checkpoint keys starting with a ``reset`` prefix and set ``checkpoint``, all
        at once; return how many requests are pending now."""
        raise FrontierError(f"{type(self).__name__} keeps no page states")

    async def push(self, requests: Sequence[Request]) -> list[bool]:
        return await self.commit(Batch(links=list(requests)))

    async def complete(self, requests: Sequence[Request]) -> None:
        await self.commit(Batch(done=list(requests)))

    async def release(self, request: Request, not_before: float = 0.0) -> None:
        await self.commit(Batch(released=[(request, not_before)]))
