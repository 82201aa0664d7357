"""The monitor's lasting history: one SQLite file that a restart continues.

Three resolutions, each kept as long as it is useful: every check for ``RAW_KEPT``
(48 h: the page's recent strip, and the state a restart resumes), hourly roll-ups
for ``HOURLY_KEPT`` (30 d) and daily roll-ups for ``retain`` (400 d by default),
plus the incidents and each target's state. A roll-up holds counts, not ratios,
and a latency histogram, because percentiles cannot be averaged but buckets add.
Maintenance checks are counted apart, so uptime leaves them out.

The writer is the one process that holds the file's lock; readers (``--report``,
the status page) need none, as SQLite's WAL lets them read while it writes.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from crawler.crawl.lock import FolderLock
from crawler.crawl.metrics import Histogram
from crawler.errors import CrawlerError
from crawler.health.history import Change, History
from crawler.health.result import Failure, HealthResult

__all__ = [
    "DAY",
    "DEFAULT_RETAIN",
    "HOUR",
    "HOURLY_KEPT",
    "LATENCY_BOUNDS",
    "RAW_KEPT",
    "HistoryStore",
    "StoreError",
    "decode_latency",
    "open_readonly",
]

HOUR: Final = 3600
DAY: Final = 86400
RAW_KEPT: Final = 2 * DAY
HOURLY_KEPT: Final = 30 * DAY
DEFAULT_RETAIN: Final = 400 * DAY
UNSAVED_CHECKS: Final = 100_000  # checks kept in memory while writes fail
# 1 ms to 131 s, four buckets per doubling: a percentile read from them is at most
# 19% above the truth, and a roll-up stores only the buckets it uses.
LATENCY_BOUNDS: Final = tuple(round(0.001 * 2 ** (k / 4), 6) for k in range(69))
_SCHEMA_VERSION = 1
_TABLES = frozenset({"checks", "rollups", "incidents", "targets"})
_SCHEMA = """
CREATE TABLE IF NOT EXISTS checks (
    target TEXT NOT NULL, at REAL NOT NULL, ok INTEGER NOT NULL, quiet INTEGER NOT NULL,
    status INTEGER, latency REAL NOT NULL, size INTEGER, error TEXT, message TEXT,
    failures TEXT, PRIMARY KEY (target, at)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollups (
    target TEXT NOT NULL, span INTEGER NOT NULL, start INTEGER NOT NULL,
    checks INTEGER NOT NULL, failures INTEGER NOT NULL, quiet INTEGER NOT NULL,
    latency TEXT NOT NULL, PRIMARY KEY (target, span, start)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS incidents (
    target TEXT NOT NULL, started REAL NOT NULL, ended REAL, reason TEXT NOT NULL,
    PRIMARY KEY (target, started)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS targets (
    name TEXT PRIMARY KEY, url TEXT NOT NULL, state TEXT NOT NULL, since REAL,
    streak INTEGER NOT NULL, runs INTEGER NOT NULL, failures INTEGER NOT NULL,
    maintenance INTEGER NOT NULL) WITHOUT ROWID;
"""


class StoreError(CrawlerError):
    """The history file cannot be used: not ours, newer than us, or unreadable."""


@dataclass(slots=True)
class _Bucket:
    """One target's checks in one hour or day, as the ``rollups`` row holds them."""

    start: int
    checks: int = 0  # outside maintenance windows: what uptime counts
    failures: int = 0
    quiet: int = 0  # inside a window
    latency: Histogram = field(default_factory=lambda: Histogram(LATENCY_BOUNDS))

    def add(self, result: HealthResult, quiet: bool) -> None:
        if quiet:  # maintenance: neither uptime nor latency
            self.quiet += 1
            return
        self.checks += 1
        self.failures += not result.ok
        if result.status is not None:
            self.latency.observe(result.latency)


def encode_latency(histogram: Histogram) -> str:
    """``[sum, {"bucket index": count}]``: only the buckets in use."""
    used = {str(i): n for i, n in enumerate(histogram.counts) if n}
    return json.dumps([round(histogram.sum, 6), used], separators=(",", ":"))


def decode_latency(text: str) -> Histogram:
    histogram = Histogram(LATENCY_BOUNDS)
    total, used = json.loads(text)
    for index, count in used.items():
        histogram.counts[int(index)] = count
    histogram.sum, histogram.count = total, sum(used.values())
    return histogram


def open_readonly(path: Path) -> sqlite3.Connection:
    """A reader's connection, which never creates the file or takes its lock."""
    if not path.is_file():
        raise StoreError(f"no history at {path}: crawl check --watch writes it")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        _check_version(db, path, empty=False)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a history file ({exc})") from exc
    return db


def _check_version(db: sqlite3.Connection, path: Path, *, empty: bool = True) -> None:
    """``empty``: a file without tables is one to begin (the writer's case)."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if version > _SCHEMA_VERSION:
        raise StoreError(f"{path} was written by a newer crawler (history version {version})")
    if (tables or not empty) and (version == 0 or not tables >= _TABLES):
        raise StoreError(f"{path} is not a history file of crawl check --watch")


@dataclass(frozen=True, slots=True)
class _Incident:
    """A change of state as it was when it happened, kept until it is written."""

    target: str
    opens: bool  # became DOWN; else a DOWN target became UP
    at: float
    reason: str

    @classmethod
    def of(cls, change: Change) -> _Incident:
        target, last = change.target, change.target.last
        at = target.since if target.since is not None else 0.0
        return cls(target.name, change.after == "down", at, last.reason if last else "")

    def write(self, db: sqlite3.Connection) -> None:
        if self.opens:
            db.execute("INSERT OR REPLACE INTO incidents VALUES (?, ?, NULL, ?)",
                       (self.target, self.at, self.reason))  # fmt: skip
        else:
            db.execute("UPDATE incidents SET ended = ? WHERE target = ? AND ended IS NULL",
                       (self.at, self.target))  # fmt: skip


def _check_row(result: HealthResult, quiet: bool) -> tuple[object, ...]:
    failures = [[f.condition, f.expected, f.seen, f.phrase] for f in result.failures]
    return (result.name, result.checked_at, result.ok, quiet, result.status, result.latency,
            result.size, result.error, result.message or None,
            json.dumps(failures) if failures else None)  # fmt: skip


class HistoryStore:
    """``with HistoryStore(path) as store:`` holds the file for this monitor alone
    (a second monitor of the same file stops at once with ``AlreadyRunning``)."""

    def __init__(self, path: Path, *, retain: float = DEFAULT_RETAIN) -> None:
        self.path = path
        if retain < HOURLY_KEPT:
            raise ValueError(f"retain must be at least {HOURLY_KEPT // DAY} days, got {retain!r}")
        self.retain = retain
        self._lock = FolderLock(path.with_name(path.name + ".lock"), path, by="monitor")
        self._db: sqlite3.Connection | None = None
        self._buckets: dict[tuple[str, int], _Bucket] = {}  # current hour and day per target
        self._pruned_hour = -1
        self._failing = ""  # the last write error said, so a full disk is said once
        # Not yet written: kept across failed writes, so a full disk loses no count.
        self._checks: deque[tuple[object, ...]] = deque(maxlen=UNSAVED_CHECKS)
        self._unsaved: dict[tuple[str, int, int], _Bucket] = {}
        self._incidents: list[_Incident] = []
        self._names: set[str] = set()

    def __enter__(self) -> HistoryStore:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the history store is not open")
        return self._db

    def open(self) -> None:
        try:
            self._lock.acquire()
        except OSError as exc:  # no such folder, no permission
            raise StoreError(f"cannot keep the history in {self.path}: {exc.strerror}") from exc
        try:
            db = sqlite3.connect(self.path, isolation_level=None)
            try:
                _check_version(db, self.path)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(_SCHEMA)
                db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            except BaseException:
                db.close()
                raise
        except sqlite3.Error as exc:
            self._lock.release()
            raise StoreError(f"{self.path}: {exc}") from exc
        except BaseException:
            self._lock.release()
            raise
        self._db = db

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()
        self._lock.release()

    # -- restoring ------------------------------------------------------------------

    def restore(self, history: History) -> None:
        """Give each target ``history`` expects its state, counters and latest checks
        as the last run left them. A target the file does not know, or knew at
        another URL, starts afresh; the open incidents of targets that are gone from
        the file or changed their URL end at their last check, and a target that
        comes back later starts PENDING."""
        known = {row[0]: row[1:] for row in self.db.execute(
            "SELECT name, url, state, since, streak, runs, failures, maintenance FROM targets"
        )}  # fmt: skip
        resumed = set()
        for target in history.targets():
            row = known.get(target.name)
            if row is None or row[0] != target.url:
                continue
            resumed.add(target.name)
            target.state, target.since, target.streak, target.runs, target.failures = row[1:6]
            target.maintenance = bool(row[6])
            rows = self.db.execute(
                "SELECT at, ok, quiet, status, latency, size, error, message, failures"
                " FROM checks WHERE target = ? ORDER BY at DESC LIMIT ?",
                (target.name, target.size),
            ).fetchall()  # fmt: skip
            for at, ok, quiet, status, latency, size, error, message, failed in reversed(rows):
                target.samples.append(HealthResult(
                    target.name, target.url, bool(ok), at, latency, status=status, size=size,
                    error=error, message=message or "",
                    failures=tuple(Failure(*f) for f in json.loads(failed or "[]")),
                ))  # fmt: skip
                target.quiet.append(bool(quiet))
        with contextlib.suppress(sqlite3.Error), _transaction(self.db):  # a full disk: next start
            for name in set(known) - resumed:
                self.db.execute(
                    "UPDATE incidents SET ended = max(started, coalesce((SELECT max(at) FROM"
                    " checks WHERE target = ?1), started)) WHERE target = ?1 AND ended IS NULL",
                    (name,),
                )  # fmt: skip
                self.db.execute("UPDATE targets SET state = 'pending', since = NULL, streak = 0"
                                " WHERE name = ?", (name,))  # fmt: skip

    # -- writing --------------------------------------------------------------------

    def record(
        self,
        results: Sequence[HealthResult],
        changes: Iterable[Change],
        history: History,
        *,
        quiet: Callable[[str], bool],
        now: float,
    ) -> bool:
        """Keep one run: its checks, roll-ups, state changes and the targets' state.
        A write that fails (a full disk) is said on stderr once and leaves the
        monitor running; what it did not write waits in memory (the checks of the
        last ``UNSAVED_CHECKS`` only) for the next run's write. False when it failed."""
        self._incidents += [_Incident.of(change) for change in changes
                            if "down" in (change.before, change.after)]  # fmt: skip
        for result in results:  # this process is the file's only writer: memory is the truth
            silent = quiet(result.name)
            self._checks.append(_check_row(result, silent))
            self._names.add(result.name)
            for span in (HOUR, DAY):
                start = int(result.checked_at // span * span)
                bucket = self._bucket(result.name, span, start)
                bucket.add(result, silent)
                self._unsaved[(result.name, span, start)] = bucket
        try:
            with _transaction(self.db):
                self._write(history)
                if int(now // HOUR) != self._pruned_hour:
                    self._prune(now)
        except sqlite3.Error as exc:
            if str(exc) != self._failing:
                print(f"crawl: history not saved to {self.path}: {exc}", file=sys.stderr)
            self._failing = str(exc)
            return False
        self._checks.clear()
        self._unsaved.clear()
        self._incidents.clear()
        self._names.clear()
        if self._failing:
            print(f"crawl: history saved to {self.path} again", file=sys.stderr)
            self._failing = ""
        return True

    def _write(self, history: History) -> None:
        self.db.executemany("INSERT OR REPLACE INTO checks VALUES (?,?,?,?,?,?,?,?,?,?)",
                            self._checks)  # fmt: skip
        self.db.executemany(
            "INSERT OR REPLACE INTO rollups VALUES (?,?,?,?,?,?,?)",
            [(name, span, start, b.checks, b.failures, b.quiet, encode_latency(b.latency))
             for (name, span, start), b in self._unsaved.items()],
        )  # fmt: skip
        for incident in self._incidents:
            incident.write(self.db)
        self.db.executemany(
            "INSERT OR REPLACE INTO targets VALUES (?,?,?,?,?,?,?,?)",
            [(t.name, t.url, t.state, t.since, t.streak, t.runs, t.failures, t.maintenance)
             for t in history.targets() if t.name in self._names],
        )  # fmt: skip

    def _bucket(self, name: str, span: int, start: int) -> _Bucket:
        bucket = self._buckets.get((name, span))
        if bucket is not None and bucket.start == start:
            return bucket
        row = self.db.execute(
            "SELECT checks, failures, quiet, latency FROM rollups"
            " WHERE target = ? AND span = ? AND start = ?", (name, span, start),
        ).fetchone()  # fmt: skip
        bucket = _Bucket(start)
        if row is not None:  # a restart within the hour, or a failed write
            bucket.checks, bucket.failures, bucket.quiet = row[:3]
            bucket.latency = decode_latency(row[3])
        self._buckets[(name, span)] = bucket
        return bucket

    def _prune(self, now: float) -> None:
        """Per target, so each delete walks the primary key, not the whole table."""
        hour = int(now // HOUR)
        names = [row[0] for row in self.db.execute("SELECT name FROM targets")]
        for name in names:
            self.db.execute("DELETE FROM checks WHERE target = ? AND at < ?",
                            (name, now - RAW_KEPT))  # fmt: skip
            for span, kept in ((HOUR, HOURLY_KEPT), (DAY, self.retain)):
                self.db.execute(
                    "DELETE FROM rollups WHERE target = ? AND span = ? AND start < ?",
                    (name, span, math.floor((now - kept) / span) * span),
                )
        self.db.execute("DELETE FROM incidents WHERE ended < ?", (now - self.retain,))
        self._pruned_hour = hour


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` .. ``COMMIT``, rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
