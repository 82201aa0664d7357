"""Bounded memory of past checks for watch mode: per target the last ``size``
samples (for uptime and latency percentiles), lifetime counters and its state, so
a monitor that runs for months holds a constant amount of state.

A target's state is one thing, the same on the page, in ``/metrics`` and in the
JSON: ``pending`` until it is decided, ``up``, or ``down`` after ``failures``
failed checks in a row; from ``down``, ``up`` again after ``successes`` passes in a
row. A target that flaps within those thresholds keeps its state. During a
maintenance window its checks are kept but change nothing: it shows
``maintenance``, keeps its state for afterwards, and its uptime leaves them out."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from crawler.health.result import HealthResult

__all__ = ["DEFAULT_HISTORY", "Change", "History", "State", "TargetHistory"]

State = Literal["pending", "up", "down"]
Shown = Literal["pending", "up", "down", "maintenance"]


class Change(NamedTuple):
    """A target's state changed with its latest check."""

    target: TargetHistory
    before: State
    after: State


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
    down_after: int = 1  # failed checks in a row that make the target down
    up_after: int = 1  # passed checks in a row that make a down target up again
    state: State = "pending"
    since: float | None = None  # when the state began (the deciding check's start)
    streak: int = 0  # checks in a row that disagree with the state
    maintenance: bool = False  # the last check was inside a maintenance window
    quiet: deque[bool] = field(init=False)  # per sample: taken inside a window

    def __post_init__(self) -> None:
        self.samples = deque(maxlen=self.size)
        self.quiet = deque(maxlen=self.size)

    @property
    def shown(self) -> Shown:
        """The state as the page, ``/metrics`` and the JSON show it."""
        return "maintenance" if self.maintenance else self.state

    def add(self, result: HealthResult, *, maintenance: bool = False) -> State | None:
        """Record ``result``; the new state when it changed the target's, else None
        (always None inside a maintenance window)."""
        self.samples.append(result)
        self.quiet.append(maintenance)
        self.runs += 1
        self.failures += not result.ok
        self.maintenance = maintenance
        if maintenance:
            self.streak = 0  # afterwards, thresholds count afresh
            return None
        disagrees = self.state == "pending" or result.ok != (self.state == "up")
        self.streak = self.streak + 1 if disagrees else 0
        if self.state == "pending" and result.ok:
            needed = 1  # up from the start: nothing was down
        elif self.state == "up" or (self.state == "pending" and not result.ok):
            needed = self.down_after
        else:
            needed = self.up_after
        if not disagrees or self.streak < needed:
            return None
        self.state, self.since, self.streak = ("up" if result.ok else "down"), result.checked_at, 0
        return self.state

    @property
    def last(self) -> HealthResult | None:
        return self.samples[-1] if self.samples else None

    def uptime(self) -> float | None:
        """Share of the kept samples that passed, those of maintenance windows left
        out; None before the first check that counts."""
        counted = [r.ok for r, quiet in zip(self.samples, self.quiet, strict=True) if not quiet]
        return sum(counted) / len(counted) if counted else None

    def latency_quantile(self, q: float) -> float | None:
        """Latency (seconds) at quantile ``q`` of the kept samples that got a
        response, nearest-rank; None when none did."""
        latencies = sorted(r.latency for r in self.samples if r.status is not None)
        if not latencies:
            return None
        rank = max(1, math.ceil(q * len(latencies)))
        return latencies[rank - 1]


def _never(name: str) -> bool:
    return False


class History:
    """Per-target histories in the order the targets were first seen."""

    def __init__(self, size: int = DEFAULT_HISTORY) -> None:
        if size < 1:
            raise ValueError("history size must be at least 1")
        self.size = size
        self._targets: dict[str, TargetHistory] = {}

    def expect(self, name: str, url: str, *, failures: int = 1, successes: int = 1) -> None:
        """List a target before its first result, so a status page shows it pending,
        with the thresholds of its state."""
        if name not in self._targets:
            self._targets[name] = TargetHistory(name, url, self.size, down_after=failures,
                                                up_after=successes)  # fmt: skip

    def record(
        self, results: Iterable[HealthResult], maintenance: Callable[[str], bool] = _never
    ) -> list[Change]:
        """Add each result (``maintenance(name)``: inside a window); the changes of
        state they made."""
        changed = []
        for result in results:
            target = self._targets.get(result.name)
            if target is None or target.url != result.url:
                thresholds = (target.down_after, target.up_after) if target else (1, 1)
                target = self._targets[result.name] = TargetHistory(
                    result.name, result.url, self.size, down_after=thresholds[0],
                    up_after=thresholds[1],
                )  # fmt: skip
            before = target.state
            if (state := target.add(result, maintenance=maintenance(result.name))) is not None:
                changed.append(Change(target, before, state))
        return changed

    def targets(self) -> Sequence[TargetHistory]:
        return list(self._targets.values())

    @classmethod
    def of(cls, results: Iterable[HealthResult]) -> History:
        """A history of one run, so one-shot output and watch mode share renderers."""
        history = cls(size=1)
        history.record(results)
        return history
