"""What a crawl counts; kept across resumes in the frontier's checkpoint (``checkpoint.py``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CrawlStats"]


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
    # This run found the crawl finished by an earlier one and did nothing.
    already_finished: bool = False

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.duration if self.duration > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

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
