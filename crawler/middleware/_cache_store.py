"""The HTTP cache's file: one SQLite table, one connection, one thread.

Every statement runs on the store's own thread, so SQLite never blocks the event
loop, and a statement a cancelled request started still finishes there. Each open
store has its own connection: several Fetchers (a SyncFetcher's loop thread
included) and several processes may share a file, WAL letting readers go on while
one of them writes.

The file is marked as a cache (``PRAGMA application_id``): a file of another program
(a crawl's frontier, say) or not SQLite at all is refused with a ``ConfigError``
naming it, before anything is written to it. Once open, a failing statement (a full
disk, a lock held too long) is logged and skipped: the fetch goes on without the
cache, its response as right as ever.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from crawler.errors import ConfigError

__all__ = ["CacheStore", "Entry", "Stored"]

log = logging.getLogger(__name__)
T = TypeVar("T")

APPLICATION_ID = 0x63724843  # "crHC": this file is a crawler HTTP cache
SCHEMA_VERSION = 1
BUSY_TIMEOUT = 10.0  # seconds a statement waits for another connection's write
_SCHEMA = """
CREATE TABLE responses (
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    vary TEXT NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (method, url)
)
"""
_ENTRY = "etag IS ? AND last_modified IS ?"  # the very entry a lookup found


@dataclass(frozen=True, slots=True)
class Entry:
    """What deciding on a revalidation takes: the validators, the request headers the
    response varies on (as they were sent), and the size of the stored body."""

    etag: str | None
    last_modified: str | None
    vary: tuple[tuple[str, str | None], ...] = ()
    size: int = field(default=0, compare=False)  # equal entries: the same representation


@dataclass(frozen=True, slots=True)
class Stored:
    """The stored response, as the server first sent it."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


class CacheStore:
    """Open with ``await store.open()``; close with ``await store.aclose()``; opens again."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None

    @property
    def is_open(self) -> bool:
        return self._thread is not None

    async def open(self) -> None:
        if self._thread is None:
            thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="http-cache")
            try:
                self._db = await asyncio.get_running_loop().run_in_executor(thread, self._connect)
            except BaseException:
                thread.shutdown(wait=False)
                raise
            self._thread = thread

    async def aclose(self) -> None:
        thread, db, self._thread, self._db = self._thread, self._db, None, None
        if thread is not None:
            try:
                if db is not None:  # after the statements already queued: one thread
                    await asyncio.get_running_loop().run_in_executor(thread, db.close)
            finally:
                thread.shutdown(wait=False)

    # the statements ------------------------------------------------------------------

    async def find(self, method: str, url: str) -> Entry | None:
        return await self._run(self._find, method, url)

    def _find(self, db: sqlite3.Connection, method: str, url: str) -> Entry | None:
        row = db.execute(
            "SELECT etag, last_modified, vary, length(body) FROM responses "
            "WHERE method = ? AND url = ?",
            (method, url),
        ).fetchone()
        if row is None:
            return None
        etag, last_modified, vary, size = row
        return Entry(etag, last_modified, tuple(map(tuple, json.loads(vary))), size)

    async def load(self, method: str, url: str, entry: Entry) -> Stored | None:
        """The stored response, if it is still the one ``entry`` describes."""
        return await self._run(self._load, method, url, entry)

    def _load(self, db: sqlite3.Connection, method: str, url: str, entry: Entry) -> Stored | None:
        row = db.execute(
            "SELECT status, reason, headers, body FROM responses "
            f"WHERE method = ? AND url = ? AND {_ENTRY}",
            (method, url, entry.etag, entry.last_modified),
        ).fetchone()
        if row is None:
            return None
        status, reason, headers, body = row
        return Stored(status, reason, [(k, v) for k, v in json.loads(headers)], body)

    async def put(self, method: str, url: str, entry: Entry, stored: Stored) -> None:
        await self._run(self._put, method, url, entry, stored)

    def _put(
        self, db: sqlite3.Connection, method: str, url: str, entry: Entry, stored: Stored
    ) -> None:
        db.execute(
            "INSERT OR REPLACE INTO responses (method, url, etag, last_modified, vary, "
            "status, reason, headers, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (method, url, entry.etag, entry.last_modified, json.dumps(entry.vary),
             stored.status, stored.reason, json.dumps(stored.headers), stored.body),
        )  # fmt: skip

    async def refresh(
        self, method: str, url: str, entry: Entry, fresh: Entry, headers: list[tuple[str, str]]
    ) -> None:
        """Give the stored response ``entry`` describes the validators and headers a 304
        brought (the body stays)."""
        await self._run(self._refresh, method, url, entry, fresh, headers)

    def _refresh(
        self,
        db: sqlite3.Connection,
        method: str,
        url: str,
        entry: Entry,
        fresh: Entry,
        headers: list[tuple[str, str]],
    ) -> None:
        db.execute(
            "UPDATE responses SET etag = ?, last_modified = ?, headers = ? "
            f"WHERE method = ? AND url = ? AND {_ENTRY}",
            (fresh.etag, fresh.last_modified, json.dumps(headers), method, url,
             entry.etag, entry.last_modified),
        )  # fmt: skip

    async def drop(self, method: str, url: str) -> None:
        await self._run(self._drop, method, url)

    def _drop(self, db: sqlite3.Connection, method: str, url: str) -> None:
        db.execute("DELETE FROM responses WHERE method = ? AND url = ?", (method, url))

    async def _run(self, func: Callable[..., T | None], *args: Any) -> T | None:
        """``func(db, *args)`` on the store's thread, after what is queued there; None
        when the store failed (logged) or is closed (a request still in flight when
        its Fetcher closed)."""
        thread, db = self._thread, self._db
        if thread is None or db is None:
            return None
        try:
            return await asyncio.get_running_loop().run_in_executor(thread, func, db, *args)
        except (sqlite3.Error, ValueError) as exc:  # ValueError: a row that is not JSON
            log.warning("HTTP cache %s: %s; this fetch goes on without it", self.path, exc)
            return None

    # opening -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        path = Path(self.path)
        if path.is_dir():
            raise self._refused("is a directory, not a file")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise self._refused(f"cannot be opened ({exc})") from exc
        try:
            self._prepare(db)
        except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed", ...
            db.close()
            raise self._refused(f"is not an SQLite file the cache can use ({exc})") from exc
        except BaseException:
            db.close()
            raise
        return db

    def _prepare(self, db: sqlite3.Connection) -> None:
        """Make a new file a cache, or check an old one is one; a refused file is left
        exactly as it was."""
        db.execute("BEGIN IMMEDIATE")  # two Fetchers creating one file: one creates it
        try:
            application = db.execute("PRAGMA application_id").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if application == 0 and not db.execute("SELECT 1 FROM sqlite_master").fetchone():
                db.execute(_SCHEMA)
                db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif application != APPLICATION_ID:
                raise self._refused("is an SQLite file of another program, not an HTTP cache")
            elif version != SCHEMA_VERSION:
                raise self._refused(
                    f"is an HTTP cache of schema {version}; this crawler reads {SCHEMA_VERSION}"
                )
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")  # a crash may lose the last writes, not the file

    def _refused(self, problem: str) -> ConfigError:
        return ConfigError(
            "cache", self.path, "an SQLite file the HTTP cache can use",
            problem=f"{self.path} {problem}",
        )  # fmt: skip
