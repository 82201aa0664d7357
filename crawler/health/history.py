"""Bounded memory of past checks for watch mode: per target the last ``size``
samples (for uptime and latency percentiles) plus lifetime counters, so a
monitor that runs for months holds a constant amount of state."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from crawler.health.result import HealthResult

__all__ = ["DEFAULT_HISTORY", "History", "TargetHistory"]

DEFAULT_HISTORY = 120  # samples kept per target: an hour at the default 30 s interval


@dataclass(slots=True)
class TargetHistory:
    """One target's recent checks, oldest first, and its counts since the start."""

    name: str
    url: str
    size: int = DEFAULT_HISTORY
    samples: deque[HealthResult] = field(init=False)
    runs: int = 0  # lifetime counters, for Prometheus counters
    failures: int = 0

    def __post_init__(self) -> None:
        self.samples = deque(maxlen=self.size)

    def add(self, result: HealthResult) -> None:
        self.samples.append(result)
        self.runs += 1
        self.failures += not result.ok

    @property
    def last(self) -> HealthResult | None:
        return self.samples[-1] if self.samples else None

    def uptime(self) -> float | None:
        """Share of the kept samples that passed; None before the first check."""
        if not self.samples:
            return None
        return sum(result.ok for result in self.samples) / len(self.samples)

    def latency_quantile(self, q: float) -> float | None:
        """Latency (seconds) at quantile ``q`` of the kept samples that got a
        response, nearest-rank; None when none did."""
        latencies = sorted(r.latency for r in self.samples if r.status is not None)
        if not latencies:
            return None
        rank = max(1, math.ceil(q * len(latencies)))
        return latencies[rank - 1]


class History:
    """Per-target histories in the order the targets were first seen."""

    def __init__(self, size: int = DEFAULT_HISTORY) -> None:
        if size < 1:
            raise ValueError("history size must be at least 1")
        self.size = size
        self._targets: dict[str, TargetHistory] = {}

    def expect(self, name: str, url: str) -> None:
        """List a target before its first result, so a status page shows it pending."""
        if name not in self._targets:
            self._targets[name] = TargetHistory(name, url, self.size)

    def record(self, results: Iterable[HealthResult]) -> None:
        for result in results:
            target = self._targets.get(result.name)
            if target is None or target.url != result.url:
                target = self._targets[result.name] = TargetHistory(
                    result.name, result.url, self.size
                )
            target.add(result)

    def targets(self) -> Sequence[TargetHistory]:
        return list(self._targets.values())

    @classmethod
    def of(cls, results: Iterable[HealthResult]) -> History:
        """A history of one run, so one-shot output and watch mode share renderers."""
        history = cls(size=1)
        history.record(results)
        return history
