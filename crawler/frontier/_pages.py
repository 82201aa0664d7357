"""Page states of a crawl in rounds, kept in the SQLite frontier's file.

A page's outlinks are stored as references to their rows in ``requests`` (the
row's ``seq``), sorted, delta-coded as 32-bit integers and zlib-compressed: a
page of 100 links costs a few hundred bytes, not the 100 URLs. These functions
run on the frontier's thread, inside its transactions.
"""

from __future__ import annotations

import sqlite3
import zlib
from array import array
from collections.abc import Iterable, Iterator, Sequence

from crawler.frontier.base import PageState, PageUpdate
from crawler.urls import fingerprint

__all__ = [
    "PAGES_SCHEMA",
    "begin_round",
    "due",
    "fetched_in",
    "known",
    "store",
]

PENDING, DONE = 0, 2  # the frontier's states of a request

PAGES_SCHEMA = """
CREATE TABLE IF NOT EXISTS pages (
    seq INTEGER PRIMARY KEY,
    status INTEGER NOT NULL,
    etag TEXT,
    last_modified TEXT,
    digest BLOB NOT NULL,
    fetched_at REAL NOT NULL,
    interval REAL NOT NULL,
    due_at REAL NOT NULL,
    archived TEXT,
    round INTEGER NOT NULL,
    outlinks BLOB
);
CREATE INDEX IF NOT EXISTS pages_due ON pages (due_at);
CREATE UNIQUE INDEX IF NOT EXISTS requests_seq ON requests (seq);
"""

_CHUNK = 500  # host parameters per statement, well under SQLite's limit
_STATE = "status, etag, last_modified, digest, fetched_at, interval, due_at, archived, round"


def encode_outlinks(seqs: Iterable[int]) -> bytes:
    ordered = sorted(set(seqs))
    deltas = array("I", (b - a for a, b in zip([0, *ordered], ordered, strict=False)))
    return zlib.compress(deltas.tobytes())


def decode_outlinks(blob: bytes | None) -> list[int]:
    if not blob:
        return []
    deltas = array("I")
    deltas.frombytes(zlib.decompress(blob))
    seqs, total = [], 0
    for delta in deltas:
        total += delta
        seqs.append(total)
    return seqs


def _chunks(items: Sequence[object]) -> Iterator[Sequence[object]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _seqs(db: sqlite3.Connection, fps: Sequence[bytes]) -> dict[bytes, int]:
    found: dict[bytes, int] = {}
    for chunk in _chunks(fps):
        marks = ",".join("?" * len(chunk))
        found.update(db.execute(f"SELECT fp, seq FROM requests WHERE fp IN ({marks})", chunk))
    return found


def store(db: sqlite3.Connection, updates: Sequence[PageUpdate], now: float) -> int:
    """Write the pages' new states; return how many stored outlinks of unchanged pages
    went from done back to pending (they were due)."""
    page_fps = [fingerprint(update.request.url) for update in updates]
    link_fps = {
        fingerprint(link.url)
        for update in updates
        if update.outlinks is not None
        for link in update.outlinks
    }
    seqs = _seqs(db, [*page_fps, *link_fps])
    unchanged: list[int] = []
    for fp, update in zip(page_fps, updates, strict=True):
        seq = seqs.get(fp)
        if seq is None:  # not a row of this frontier: nothing to keep it under
            continue
        state = update.state
        values = (state.status, state.etag, state.last_modified, state.digest,
                  state.fetched_at, state.interval, state.due_at, state.archived,
                  state.round)  # fmt: skip
        if update.outlinks is None:
            db.execute(
                "INSERT INTO pages (seq, " + _STATE + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (seq) DO UPDATE SET status = excluded.status, "
                "etag = excluded.etag, last_modified = excluded.last_modified, "
                "digest = excluded.digest, fetched_at = excluded.fetched_at, "
                "interval = excluded.interval, due_at = excluded.due_at, "
                "archived = excluded.archived, round = excluded.round",
                (seq, *values),
            )
            unchanged.append(seq)
            continue
        links = [seqs[f] for f in (fingerprint(link.url) for link in update.outlinks) if f in seqs]
        db.execute(
            "INSERT OR REPLACE INTO pages (seq, " + _STATE + ", outlinks) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, *values, encode_outlinks(links)),
        )
    # Once every page of the batch has its new state: a page fetched in this very
    # batch is not due again.
    outlinks = {link for seq in unchanged for link in decode_outlinks(_outlinks_of(db, seq))}
    return _pend(db, sorted(outlinks), now, updates[0].state.round) if outlinks else 0


def fetched_in(db: sqlite3.Connection, fps: Sequence[bytes], round: int) -> None:
    """Mark the pages of these rows as fetched in ``round``, whatever became of them."""
    for chunk in _chunks(fps):
        marks = ",".join("?" * len(chunk))
        db.execute(
            f"UPDATE pages SET round = ? WHERE seq IN "
            f"(SELECT seq FROM requests WHERE fp IN ({marks}))",
            (round, *chunk),
        )


def _outlinks_of(db: sqlite3.Connection, seq: int) -> bytes | None:
    row = db.execute("SELECT outlinks FROM pages WHERE seq = ?", (seq,)).fetchone()
    return None if row is None else row[0]


def _pend(db: sqlite3.Connection, seqs: Sequence[int], now: float, round: int) -> int:
    """Done requests among ``seqs`` whose page is due and was last fetched in an
    earlier round: pending again, for this one."""
    moved = 0
    for chunk in _chunks(seqs):
        marks = ",".join("?" * len(chunk))
        moved += db.execute(
            f"UPDATE requests SET state = ?, tries = 0, not_before = 0 WHERE state = ? "
            f"AND seq IN ({marks}) AND EXISTS (SELECT 1 FROM pages WHERE "
            "pages.seq = requests.seq AND due_at <= ? AND round < ?)",
            (PENDING, DONE, *chunk, now, round),
        ).rowcount
    return moved


def known(db: sqlite3.Connection, seqs: Sequence[int]) -> dict[int, PageState]:
    """The stored states of these rows, for the ones that have one."""
    states: dict[int, PageState] = {}
    for chunk in _chunks(seqs):
        marks = ",".join("?" * len(chunk))
        for seq, *values in db.execute(
            f"SELECT seq, {_STATE} FROM pages WHERE seq IN ({marks})", chunk
        ):
            states[seq] = PageState(*values)
    return states


def due(db: sqlite3.Connection, now: float) -> tuple[int, float | None]:
    count = db.execute(
        "SELECT COUNT(*) FROM pages JOIN requests USING (seq) "
        "WHERE requests.state = ? AND pages.due_at <= ?",
        (DONE, now),
    ).fetchone()[0]
    upcoming = db.execute("SELECT MIN(due_at) FROM pages WHERE due_at > ?", (now,)).fetchone()[0]
    return count, upcoming


def begin_round(db: sqlite3.Connection, now: float, every: bool) -> int:
    """Done requests due this round back to pending; how many moved."""
    return db.execute(
        "UPDATE requests SET state = ?, tries = 0, not_before = 0 WHERE state = ? "
        "AND (? OR depth = 0 OR kind = 'sitemap' "
        "OR NOT EXISTS (SELECT 1 FROM pages WHERE pages.seq = requests.seq) "
        "OR EXISTS (SELECT 1 FROM pages WHERE pages.seq = requests.seq AND due_at <= ?))",
        (PENDING, DONE, every, now),
    ).rowcount
