"""The embedded default: a SQLite file in WAL mode, one writer thread.

Every URL ever seen lives in one table keyed by its fingerprint, so the
seen-set and the queue cost disk, not memory, however large the crawl. All
statements run on one dedicated thread: SQLite calls never block the event
loop, and there is exactly one writer.

The file carries its schema version (``PRAGMA user_version``). A file written
before the request's lineage had columns of its own (version 0, the lineage
inside ``meta``) or before page states (version 1) is migrated when opened; a
file of a newer version, or not a frontier at all, is refused with
``FrontierError`` rather than misread. Page states for crawls in rounds are
``_pages.py``'s.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from crawler.errors import FrontierError
from crawler.frontier import _pages
from crawler.frontier.base import BaseFrontier, Batch, FrontierStats, Lease
from crawler.models import Lineage, Request
from crawler.urls import fingerprint

__all__ = ["SqliteFrontier"]

PENDING, LEASED, DONE = 0, 1, 2
T = TypeVar("T")

KNOWN_FINGERPRINTS = 32_768  # about 2.5 MB: enough to skip most repeats, bounded for any crawl

SCHEMA_VERSION = 2
# The lineage columns come last: a version-0 file gains them with ADD COLUMN and
# ends up with the very table a new file gets.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    fp BLOB PRIMARY KEY,
    seq INTEGER NOT NULL,
    url TEXT NOT NULL,
    depth INTEGER NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0,
    lease_until REAL NOT NULL DEFAULT 0,
    meta TEXT NOT NULL DEFAULT '{}',
    kind TEXT NOT NULL DEFAULT 'page',
    referrer TEXT,
    hops INTEGER NOT NULL DEFAULT 0,
    tries INTEGER NOT NULL DEFAULT 0,
    nesting INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS requests_ready ON requests (state, depth, seq);
CREATE TABLE IF NOT EXISTS checkpoint (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_VERSION_0 = {"fp", "seq", "url", "depth", "state", "not_before", "lease_until", "meta"}
_LINEAGE_COLUMNS = """
ALTER TABLE requests ADD COLUMN kind TEXT NOT NULL DEFAULT 'page';
ALTER TABLE requests ADD COLUMN referrer TEXT;
ALTER TABLE requests ADD COLUMN hops INTEGER NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN tries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN nesting INTEGER NOT NULL DEFAULT 0;
"""
_COLUMNS = "url, depth, kind, referrer, hops, tries, nesting, meta"
_LIFTED = (("kind", "page"), ("referrer", None), ("hops", 0), ("tries", 0), ("nesting", 0))


class SqliteFrontier(BaseFrontier):
    keeps_pages = True

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._db: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._counts = {PENDING: 0, LEASED: 0, DONE: 0}
        self._seq = 0
        # Fingerprints known to be stored: a bounded shortcut, the table stays the truth.
        self._known: set[bytes] = set()

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        if self._thread is None:
            raise RuntimeError("frontier is not open: use `async with frontier:`")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, func, *args)
        except sqlite3.Error as exc:
            raise FrontierError(f"frontier store {self.path}: {exc}") from exc

    async def open(self) -> None:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frontier")
            await self._run(self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._upgrade(db)
        except BaseException:
            db.close()
            raise
        # Whoever held these leases is gone: this store has one process at a time.
        db.execute("UPDATE requests SET state = ? WHERE state = ?", (PENDING, LEASED))
        self._db = db
        self._recount()

    def _upgrade(self, db: sqlite3.Connection) -> None:
        """Bring the file to ``SCHEMA_VERSION``: create it, migrate it, or refuse it
        (before anything is written to it: a refused file stays as it was)."""
        version = db.execute("PRAGMA user_version").fetchone()[0]
        columns = {row[1] for row in db.execute("PRAGMA table_info(requests)")}
        foreign = bool(columns) and not columns >= _VERSION_0  # a table of someone else's
        if version > SCHEMA_VERSION or (version < SCHEMA_VERSION and foreign):
            written = f"schema {version}" if version else "another program"
            raise FrontierError(
                f"frontier store {self.path} was written by {written}, which this crawler "
                f"(schema {SCHEMA_VERSION}) cannot read: run with --fresh to start over"
            )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        if version == SCHEMA_VERSION:
            return
        with _transaction(db):  # all of it or nothing: a crash midway leaves the old version
            script = _SCHEMA
            if columns:
                script = _LINEAGE_COLUMNS if version == 0 else ""
            for statement in filter(str.strip, (script + _pages.PAGES_SCHEMA).split(";")):
                db.execute(statement)
            if columns and version == 0:  # the lineage rode in meta
                _lift_lineage(db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _recount(self) -> None:
        """Read the counters back from the table (on open, after a rollback or a clear)."""
        db = self._conn()
        self._known.clear()  # a rolled-back INSERT may have put a fingerprint there
        self._counts = {PENDING: 0, LEASED: 0, DONE: 0}
        for state, count in db.execute("SELECT state, COUNT(*) FROM requests GROUP BY state"):
            self._counts[state] = count
        self._seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM requests").fetchone()[0]

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise FrontierError(f"frontier store {self.path} is closed")
        return self._db

    async def aclose(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            db, self._db = self._db, None
            if db is not None:
                await asyncio.get_running_loop().run_in_executor(thread, db.close)
            thread.shutdown(wait=True)

    async def clear(self) -> None:
        await self._run(self._clear)

    def _clear(self) -> None:
        db = self._conn()
        with _transaction(db):
            db.execute("DELETE FROM requests")
            db.execute("DELETE FROM checkpoint")
            db.execute("DELETE FROM pages")
        self._recount()

    async def commit(self, batch: Batch) -> list[bool]:
        return await self._run(self._commit, batch)

    def _commit(self, batch: Batch) -> list[bool]:
        db = self._conn()
        added: list[bool] = []
        try:
            self._apply(db, batch, added)
        except sqlite3.Error:
            self._recount()  # the transaction rolled back; so must the counters
            raise
        return added

    def _apply(self, db: sqlite3.Connection, batch: Batch, added: list[bool]) -> None:
        with _transaction(db):
            for request in batch.done:
                cursor = db.execute(
                    "UPDATE requests SET state = ? WHERE fp = ? AND state = ?",
                    (DONE, fingerprint(request.url), LEASED),
                )
                self._move(LEASED, DONE, cursor.rowcount)
            for request, not_before in batch.released:
                cursor = db.execute(
                    "UPDATE requests SET state = ?, not_before = ?, "
                    "url = ?, depth = ?, kind = ?, referrer = ?, hops = ?, tries = ?, nesting = ?, "
                    "meta = ? WHERE fp = ? AND state = ?",
                    (
                        PENDING,
                        max(not_before, 0.0),
                        *_row(request),
                        fingerprint(request.url),
                        LEASED,
                    ),
                )
                self._move(LEASED, PENDING, cursor.rowcount)
            for request in batch.links:
                fp = fingerprint(request.url)
                if fp in self._known:  # most links name pages already stored: skip the INSERT
                    added.append(False)
                    continue
                self._seq += 1
                cursor = db.execute(
                    f"INSERT OR IGNORE INTO requests (fp, seq, {_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (fp, self._seq, *_row(request)),
                )
                added.append(cursor.rowcount == 1)
                self._counts[PENDING] += cursor.rowcount
                if len(self._known) >= KNOWN_FINGERPRINTS:
                    self._known.clear()
                self._known.add(fp)
            if batch.round and batch.done:
                _pages.fetched_in(db, [fingerprint(r.url) for r in batch.done], batch.round)
            if batch.pages:
                self._move(DONE, PENDING, _pages.store(db, batch.pages, self._clock()))
            _set(db, batch.checkpoint)
            db.executemany(
                "INSERT INTO checkpoint (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = value + excluded.value",
                list(batch.counters.items()),
            )

    def _move(self, source: int, target: int, count: int) -> None:
        self._counts[source] -= count
        self._counts[target] += count

    async def lease(self, limit: int, *, seconds: float = 600.0) -> Lease:
        return await self._run(self._lease, limit, seconds)

    def _lease(self, limit: int, seconds: float) -> Lease:
        db = self._conn()
        now = self._clock()
        with _transaction(db):
            expired = db.execute(
                "UPDATE requests SET state = ? WHERE state = ? AND lease_until <= ?",
                (PENDING, LEASED, now),
            ).rowcount
            self._move(LEASED, PENDING, expired)
            rows = db.execute(
                f"SELECT fp, seq, {_COLUMNS} FROM requests WHERE state = ? AND not_before <= ? "
                "ORDER BY depth, seq LIMIT ?",
                (PENDING, now, limit),
            ).fetchall()
            db.executemany(
                "UPDATE requests SET state = ?, lease_until = ? WHERE fp = ?",
                [(LEASED, now + seconds, row[0]) for row in rows],
            )
            states = _pages.known(db, [row[1] for row in rows])
        self._move(PENDING, LEASED, len(rows))
        requests = [_request(*row[2:]) for row in rows]
        known = {row[2]: states[row[1]] for row in rows if row[1] in states}
        next_at = None
        if not requests and self._counts[PENDING]:
            next_at = db.execute(
                "SELECT MIN(not_before) FROM requests WHERE state = ?", (PENDING,)
            ).fetchone()[0]
        finished = not requests and not self._counts[PENDING] and not self._counts[LEASED]
        return Lease(requests, finished=finished, next_at=next_at, known=known)

    async def due(self, now: float) -> tuple[int, float | None]:
        return await self._run(_pages.due, self._conn(), now)

    async def begin_round(
        self, now: float, *, every: bool, checkpoint: Mapping[str, int], reset: Sequence[str]
    ) -> int:
        return await self._run(self._begin_round, now, every, checkpoint, reset)

    def _begin_round(
        self, now: float, every: bool, checkpoint: Mapping[str, int], reset: Sequence[str]
    ) -> int:
        db = self._conn()
        try:
            with _transaction(db):
                self._move(DONE, PENDING, _pages.begin_round(db, now, every))
                for prefix in reset:
                    db.execute("DELETE FROM checkpoint WHERE substr(key, 1, ?) = ?",
                               (len(prefix), prefix))  # fmt: skip
                _set(db, checkpoint)
        except sqlite3.Error:
            self._recount()
            raise
        return self._counts[PENDING]

    async def extend(self, requests: Sequence[Request], seconds: float) -> None:
        await self._run(self._extend, requests, seconds)

    def _extend(self, requests: Sequence[Request], seconds: float) -> None:
        db = self._conn()
        until = self._clock() + seconds
        with _transaction(db):
            db.executemany(
                "UPDATE requests SET lease_until = ? WHERE fp = ? AND state = ?",
                [(until, fingerprint(r.url), LEASED) for r in requests],
            )

    async def checkpoint(self, keys: Sequence[str] | None = None) -> Mapping[str, int]:
        values = await self._run(self._checkpoint)
        return values if keys is None else {k: values[k] for k in keys if k in values}

    def _checkpoint(self) -> dict[str, int]:
        return dict(self._conn().execute("SELECT key, value FROM checkpoint").fetchall())

    async def stats(self) -> FrontierStats:
        pending, leased, done = self._counts[PENDING], self._counts[LEASED], self._counts[DONE]
        return FrontierStats(
            seen=pending + leased + done, pending=pending, leased=leased, done=done
        )


def read_store(path: Path) -> tuple[dict[str, int], FrontierStats]:
    """The checkpoint and the counts of the store at ``path``, read without writing a
    byte (``mode=ro``): safe beside the crawl that has it open, which opening it as a
    frontier is not (that frees every lease)."""
    if not path.is_file():
        raise FrontierError(f"no crawl state in {path.parent} (no {path.name})")
    # No -wal file: no crawl has the store open, and immutable=1 reads it without
    # creating the -shm and -wal files a WAL reader would otherwise leave behind.
    wal = path.with_name(path.name + "-wal")
    options = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?{options}", uri=True)
        try:
            values = dict(db.execute("SELECT key, value FROM checkpoint").fetchall())
            counts = dict(db.execute("SELECT state, COUNT(*) FROM requests GROUP BY state"))
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise FrontierError(f"frontier store {path}: {exc}") from exc
    pending, leased, done = (counts.get(state, 0) for state in (PENDING, LEASED, DONE))
    return values, FrontierStats(pending + leased + done, pending, leased, done)


def _set(db: sqlite3.Connection, values: Mapping[str, int]) -> None:
    db.executemany(
        "INSERT INTO checkpoint (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        list(values.items()),
    )


def _row(request: Request) -> tuple[Any, ...]:
    """The request as the columns ``_COLUMNS`` name."""
    lineage = request.lineage
    meta = json.dumps(dict(request.meta), separators=(",", ":")) if request.meta else "{}"
    return (request.url, lineage.depth, lineage.kind, lineage.referrer, lineage.hops,
            lineage.tries, lineage.nesting, meta)  # fmt: skip


def _request(
    url: str, depth: int, kind: Any, referrer: str | None, hops: int, tries: int, nesting: int,
    meta: str,
) -> Request:  # fmt: skip
    lineage = Lineage(depth, kind, referrer, hops, tries, nesting)
    return Request(url, lineage=lineage, meta={} if meta == "{}" else json.loads(meta))


def _lift_lineage(db: sqlite3.Connection) -> None:
    """Version 0 to 1: the lineage moves out of ``meta`` into its columns."""
    rows = db.execute("SELECT fp, meta FROM requests WHERE meta != '{}'").fetchall()
    lifted = []
    for fp, text in rows:
        meta = json.loads(text)
        depth = meta.pop("depth", 0)
        lineage = [meta.pop(name, default) for name, default in _LIFTED]
        meta.pop("robots", None)
        rest = json.dumps(meta, separators=(",", ":")) if meta else "{}"
        lifted.append((depth if isinstance(depth, int) else 0, *lineage, rest, fp))
    db.executemany(
        "UPDATE requests SET depth = ?, kind = ?, referrer = ?, hops = ?, tries = ?, "
        "nesting = ?, meta = ? WHERE fp = ?",
        lifted,
    )


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
