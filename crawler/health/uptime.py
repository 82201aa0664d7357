"""Reading the history back: uptime over the page's windows, a state per day, the
incidents, and the totals an SLA report needs, from a store that a running
monitor may be writing at the same moment."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from crawler.crawl.metrics import Histogram
from crawler.health.store import (
    DAY,
    HOUR,
    HOURLY_KEPT,
    LATENCY_BOUNDS,
    RAW_KEPT,
    decode_latency,
)

__all__ = ["WINDOWS", "Day", "DayState", "Incident", "Totals", "Uptime"]

# The page's uptime columns: name and length.
WINDOWS: Final = (("24h", DAY), ("7d", 7 * DAY), ("30d", 30 * DAY), ("90d", 90 * DAY))
DayState = Literal["none", "up", "degraded", "down", "maintenance"]


@dataclass(frozen=True, slots=True)
class Incident:
    """A period a target was DOWN: from the check that made it so to the one that
    made it UP again (``ended`` None while it lasts)."""

    target: str
    started: float
    ended: float | None
    reason: str

    def duration(self, now: float) -> float:
        return (now if self.ended is None else self.ended) - self.started

    def overlap(self, start: float, end: float) -> float:
        """Seconds of this incident between ``start`` and ``end``."""
        stop = end if self.ended is None else min(self.ended, end)
        return max(0.0, stop - max(self.started, start))


@dataclass(frozen=True, slots=True)
class Day:
    """One UTC day of a target: ``down`` when an incident touched it, ``degraded``
    when checks failed without one, ``maintenance`` when every check was inside a
    window, ``none`` without checks."""

    start: int
    checks: int
    failures: int
    quiet: int
    down: bool

    @property
    def state(self) -> DayState:
        if self.down:
            return "down"
        if self.failures:
            return "degraded"
        if self.checks:
            return "up"
        return "maintenance" if self.quiet else "none"

    @property
    def uptime(self) -> float | None:
        return 1 - self.failures / self.checks if self.checks else None


@dataclass(slots=True)
class Totals:
    """A target's checks over a period, and their latency."""

    checks: int = 0
    failures: int = 0
    latency: Histogram | None = None

    def observed(self) -> Histogram:
        if self.latency is None:
            self.latency = Histogram(LATENCY_BOUNDS)
        return self.latency

    @property
    def uptime(self) -> float | None:
        return 1 - self.failures / self.checks if self.checks else None


def _first(now: float, count: int) -> int:
    """The start of the first of the last ``count`` UTC days, today included."""
    return int(now // DAY * DAY) - (count - 1) * DAY


def _marks(names: Sequence[str]) -> str:
    """The placeholders of ``target IN (...)`` for ``names``."""
    return ",".join("?" * len(names))


def _span_for(length: float, *, exact: bool) -> int:
    """The resolution to count a period of ``length`` in: each check (0) when
    ``exact`` and the file keeps them, else the finest roll-up kept that long."""
    if exact and length <= RAW_KEPT:
        return 0
    return HOUR if length <= HOURLY_KEPT else DAY


class Uptime:
    """Queries over one connection to the history file; each looks targets up by
    the primary key, never scanning the whole file."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def windows(self, names: Sequence[str], now: float) -> dict[str, dict[str, float | None]]:
        """Per target, the share of counted checks that passed in each of ``WINDOWS``."""
        found: dict[str, dict[str, float | None]] = {
            name: {label: None for label, _ in WINDOWS} for name in names
        }
        for label, length in WINDOWS:  # by the hour: a page refresh reads no single check
            _, totals = self.totals(names, now, length, latency=False, exact=False)
            for name, total in totals.items():
                found[name][label] = total.uptime
        return found

    def totals(
        self,
        names: Sequence[str],
        now: float,
        length: float,
        *,
        latency: bool = True,
        exact: bool = True,
    ) -> tuple[float, dict[str, Totals]]:
        """Per target, the checks since ``now - length`` and their latency: exactly,
        from each check, up to 48 h; beyond (or not ``exact``), from the whole hours
        (up to 30 d) or days that cover the period. Also the time they cover from."""
        span = _span_for(length, exact=exact)
        marks = _marks(names)
        if span == 0:
            since: float = now - length
            rows = self._db.execute(
                f"SELECT target, latency, ok, status FROM checks WHERE target IN ({marks})"
                " AND at > ? AND quiet = 0", (*names, since),
            )  # fmt: skip
            return since, _from_checks(rows, latency=latency)
        since = float((now - length) // span * span)  # the bucket that holds now - length
        rows = self._db.execute(
            f"SELECT target, checks, failures{', latency' if latency else ''} FROM rollups"
            f" WHERE target IN ({marks}) AND span = ? AND start >= ?", (*names, span, since),
        )  # fmt: skip
        found: dict[str, Totals] = {}
        for row in rows:
            totals = found.setdefault(row[0], Totals())
            totals.checks += row[1]
            totals.failures += row[2]
            if latency:
                totals.observed().add(decode_latency(row[3]))
        return since, found

    def days(self, names: Sequence[str], now: float, count: int = 90) -> dict[str, list[Day]]:
        """Per target, its last ``count`` UTC days, oldest first, today included."""
        first = _first(now, count)
        kept: dict[tuple[str, int], tuple[int, int, int]] = {
            (row[0], row[1]): row[2:]
            for row in self._db.execute(
                "SELECT target, start, checks, failures, quiet FROM rollups"
                f" WHERE target IN ({_marks(names)}) AND span = ? AND start >= ?",
                (*names, DAY, first),
            )
        }  # fmt: skip
        last = first + count * DAY
        down: set[tuple[str, int]] = set()  # the days each incident touched
        for incident in self.incidents(names, since=first):
            stop = last if incident.ended is None else min(incident.ended, last)
            day = max(first, int(incident.started // DAY * DAY))
            while day < stop:
                down.add((incident.target, day))
                day += DAY
        return {
            name: [Day(start, *kept.get((name, start), (0, 0, 0)), (name, start) in down)
                   for start in range(first, last, DAY)]
            for name in names
        }  # fmt: skip

    def incidents(
        self, names: Sequence[str], *, since: float, limit: int | None = None
    ) -> list[Incident]:
        """The incidents of ``names`` that lasted past ``since``, latest first."""
        rows = self._db.execute(
            "SELECT target, started, ended, reason FROM incidents"
            f" WHERE target IN ({_marks(names)}) AND (ended IS NULL OR ended > ?)"
            " ORDER BY started DESC LIMIT ?",
            (*names, since, -1 if limit is None else limit),
        )  # fmt: skip
        return [Incident(*row) for row in rows]


def _from_checks(
    rows: Iterable[tuple[str, float, int, int | None]], *, latency: bool
) -> dict[str, Totals]:
    found: dict[str, Totals] = {}
    for name, seconds, ok, status in rows:
        totals = found.setdefault(name, Totals())
        totals.checks += 1
        totals.failures += not ok
        if latency and status is not None:
            totals.observed().observe(seconds)
    return found
