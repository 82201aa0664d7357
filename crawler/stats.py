"""What a crawl counts, kept across resumes inside the frontier's checkpoint."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CrawlStats"]

_PREFIX = "stats."


@dataclass(slots=True)
class CrawlStats:
    pages: int = 0  # responses received, any status
    items: int = 0
    bytes: int = 0
    deferred: int = 0  # retries put back in the frontier to wait
    duration: float = 0.0  # seconds of crawling, summed over resumed runs
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.duration if self.duration > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def to_checkpoint(self) -> dict[str, int]:
        """Flat integer counters, stored atomically with each frontier commit."""
        values = {
            "pages": self.pages, "items": self.items, "bytes": self.bytes,
            "deferred": self.deferred, "duration_ms": round(self.duration * 1000),
        }  # fmt: skip
        values.update({f"status.{k}": v for k, v in self.statuses.items()})
        values.update({f"errors.{k}": v for k, v in self.errors.items()})
        values.update({f"dropped.{k}": v for k, v in self.dropped.items()})
        return {_PREFIX + k: v for k, v in values.items()}

    @classmethod
    def from_checkpoint(cls, checkpoint: Mapping[str, int]) -> CrawlStats:
        stats = cls()
        for key, value in checkpoint.items():
            if not key.startswith(_PREFIX):
                continue
            name = key[len(_PREFIX) :]
            group, _, sub = name.partition(".")
            if group == "status" and sub.isdigit():
                stats.statuses[int(sub)] = value
            elif group in ("errors", "dropped") and sub:
                getattr(stats, group)[sub] = value
            elif name == "duration_ms":
                stats.duration = value / 1000
            elif name in ("pages", "items", "bytes", "deferred"):
                setattr(stats, name, value)
        return stats

    def to_json(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "items": self.items,
            "bytes": self.bytes,
            "status_codes": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(sorted(self.errors.items())),
            "dropped": dict(sorted(self.dropped.items())),
            "deferred_retries": self.deferred,
            "duration_s": round(self.duration, 3),
            "pages_per_s": round(self.pages_per_second, 2),
        }
