"""Frontiers: the crawl's queue, seen-set and progress, in memory, on disk or in Redis."""

from __future__ import annotations

from pathlib import Path

from crawler.frontier._memory import MemoryFrontier
from crawler.frontier._sqlite import SqliteFrontier, read_store
from crawler.frontier.base import (
    BaseFrontier,
    Batch,
    Frontier,
    FrontierStats,
    Lease,
    LeaseLost,
    PageState,
    PageUpdate,
)

__all__ = [
    "REDIS_SCHEMES",
    "SQLITE_FILE",
    "BaseFrontier",
    "Batch",
    "Frontier",
    "FrontierStats",
    "Lease",
    "LeaseLost",
    "MemoryFrontier",
    "PageState",
    "PageUpdate",
    "SqliteFrontier",
    "open_frontier",
    "read_store",
]

SQLITE_FILE = "frontier.sqlite3"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def open_frontier(
    spec: str,
    state_dir: Path,
    *,
    name: str = "crawl",
    worker: str | None = None,
    lease_timeout: float = 60.0,
) -> BaseFrontier:
    """``memory``, ``sqlite`` (a file in ``state_dir``), or a Redis URL shared by
    many workers. ``name`` (the crawl), ``worker`` (this process; default
    ``host-pid``) and ``lease_timeout`` (seconds of silence before a worker's
    leases go to others) apply to Redis only."""
    if spec == "memory":
        return MemoryFrontier()
    if spec == "sqlite":
        return SqliteFrontier(state_dir / SQLITE_FILE)
    if spec.startswith(REDIS_SCHEMES):
        # Imported here: redis-py is only loaded by crawls that use it.
        from crawler.frontier._redis import RedisFrontier, default_worker

        return RedisFrontier(
            spec,
            name=name,
            worker=worker if worker is not None else default_worker(),
            lease_timeout=lease_timeout,
        )
    raise ValueError(f"unsupported frontier {spec!r}: expected memory, sqlite or a redis:// URL")
