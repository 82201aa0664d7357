"""Which links of a page are worth a request: those the run has not queued yet and
robots.txt is not known to disallow."""

from __future__ import annotations

from crawler.middleware import Robots

__all__ = ["PUSHED_MAX", "FreshLinks"]

PUSHED_MAX = 65536  # links remembered as given to the frontier; forgotten all at once


class FreshLinks:
    """The frontier would find most links of a site's pages duplicates (menus, footers,
    related items name pages already queued), after a Request, a fingerprint and a
    lookup each; a disallowed link would be queued, leased and only then dropped. This
    remembers what the run queued, as far as ``limit`` allows, and asks ``robots`` of
    the rest. Forgetting costs only that work: the frontier's dedup is exact."""

    def __init__(self, robots: Robots | None, limit: int = PUSHED_MAX) -> None:
        self._robots, self._limit = robots, limit
        self._pushed: set[str] = set()

    def __call__(self, urls: list[str]) -> tuple[list[str], int]:
        """The URLs to queue, in order, and how many robots.txt disallows (each counted
        once, at its first sight)."""
        pushed = self._pushed
        fresh = [url for url in urls if url not in pushed]
        if len(pushed) + len(fresh) > self._limit:
            pushed.clear()
        pushed.update(fresh)
        if self._robots is None:
            return fresh, 0
        verdict = self._robots.known_verdict
        allowed = [url for url in fresh if verdict(url) is not False]
        return allowed, len(fresh) - len(allowed)
