"""The page budgets: ``max_pages`` for the whole crawl and ``max_pages_per_host``.

A page counts once it is sent (a response or a failure); a page dropped unsent
(robots.txt, a host over its budget) or deferred to be retried later gives its
share back. The crawl leases no more pages than the budget has left, so the
budget holds across resumed runs and, with a shared frontier, across workers:
every worker adds what it spent to the same checkpoint keys and reads what the
others spent before it leases (``catch_up``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Literal

from crawler.config import CrawlSettings
from crawler.crawl.checkpoint import SPENT, Checkpoint, host_counters
from crawler.crawl.outcome import Outcome
from crawler.models import Request
from crawler.urls import host_key

__all__ = ["PageBudget", "is_page"]


def is_page(request: Request) -> bool:
    """Sitemaps are fetched too, but only pages count against the budgets."""
    return request.lineage.kind == "page"


class PageBudget:
    """What this run may still lease and send, kept in step with the checkpoint."""

    def __init__(self, settings: CrawlSettings, checkpoint: Checkpoint) -> None:
        self.max_pages = settings.max_pages
        self.per_host = settings.max_pages_per_host
        self._spent = checkpoint.spent  # as far as this worker knows
        self.left = self.max_pages - self._spent  # pages that may still be leased
        self._host_pages = checkpoint.host_pages()  # committed, per host
        self._host_active: Counter[str] = Counter()  # sent and not yet committed

    def lease_size(self, wanted: int) -> int:
        return min(max(wanted, 1), self.left)

    def leased(self, requests: Iterable[Request]) -> None:
        self.left -= sum(map(is_page, requests))

    def take_host(self, request: Request) -> str | Literal[False] | None:
        """Count a page against its host: the host (given back by ``release_host``
        or ``settle``), ``None`` when no host budget applies, ``False`` when the host
        has spent its budget, counting the pages in flight."""
        if not self.per_host or not is_page(request):
            return None
        host = host_key(request.url)
        if self._host_pages[host] + self._host_active[host] >= self.per_host:
            return False
        self._host_active[host] += 1
        return host

    def release_host(self, host: str) -> None:
        """A page of ``host`` was not sent after all."""
        self._host_active[host] -= 1

    def settle(self, outcomes: Sequence[Outcome]) -> tuple[dict[str, int], int]:
        """Count what a commit settles: the checkpoint increments (pages sent, pages
        per host) and how many leased pages it gives back (deferred or not sent),
        to ``refund`` once the commit is stored."""
        hosts: Counter[str] = Counter()
        refund = pages = 0
        for outcome in outcomes:
            page, back = is_page(outcome.request), outcome.release_at is not None
            pages += page
            refund += page and (back or not outcome.sent)
            if outcome.host is not None:  # no longer in flight: done, or back in the queue
                self._host_active[outcome.host] -= 1
                hosts[outcome.host] += not back
        self._host_pages.update(hosts)
        self._spent += pages - refund
        return {SPENT: pages - refund, **host_counters(+hosts)}, refund

    def refund(self, pages: int) -> None:
        self.left += pages

    def catch_up(self, checkpoint: Checkpoint, *, hosts: bool) -> None:
        """Other workers spend the budgets too: take their share into account.
        ``hosts``: the per-host counts too (read only at commits: every key)."""
        spent = checkpoint.spent
        self.left -= spent - self._spent
        self._spent = spent
        if hosts:
            for host, n in checkpoint.host_pages().items():
                self._host_pages[host] = n
