"""Frontiers: the crawl's queue, seen-set and progress, in memory or on disk."""

from __future__ import annotations

from pathlib import Path

from crawler.frontier._memory import MemoryFrontier
from crawler.frontier._sqlite import SqliteFrontier
from crawler.frontier.base import BaseFrontier, Batch, Frontier, FrontierStats, Lease

__all__ = [
    "SQLITE_FILE",
    "BaseFrontier",
    "Batch",
    "Frontier",
    "FrontierStats",
    "Lease",
    "MemoryFrontier",
    "SqliteFrontier",
    "open_frontier",
]

SQLITE_FILE = "frontier.sqlite3"


def open_frontier(spec: str, state_dir: Path) -> BaseFrontier:
    """``memory``, or ``sqlite`` (a file in ``state_dir``)."""
    if spec == "memory":
        return MemoryFrontier()
    if spec == "sqlite":
        return SqliteFrontier(state_dir / SQLITE_FILE)
    raise ValueError(f"unsupported frontier {spec!r}: expected memory or sqlite")
