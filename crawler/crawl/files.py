"""The files a crawl writes in its output folder, and which of them are whose.

A crawl in one process writes ``items.jsonl``, ``errors.jsonl``, ``stats.json``,
``pages/`` and, with the embedded frontier, ``frontier.sqlite3``. Items named
``.csv`` (``products.csv``) are kept as JSON Lines beside it (``products.jsonl``),
under the commit protocol like any items file, and rendered as that CSV at the
end of each run (``write_csv``): a CSV's header would have to change whenever a
record brings a new key, which no append at a committed offset can do.

With a Redis frontier many worker processes share the folder, and every worker
writes files of its own (``items-<worker>.jsonl``, ``errors-<worker>.jsonl``, the
``items-<worker>.csv`` rendered from its own JSONL) and records their committed
lengths under keys of its own, so no two processes ever append to one file and
each can be cut back to exactly what it committed. A worker restarted under the
same name does that for its own files when it opens them; once the crawl has
finished, the last worker out cuts the files of workers that died and never came
back, so every page is in the items exactly once across the files.

Each process holds a lock while it runs: ``.lock`` for a crawl of its own,
``.lock-<worker>`` for a worker (``lock.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crawler.config import Config
from crawler.crawl.checkpoint import Checkpoint, OutputFile, offset_key
from crawler.frontier import REDIS_SCHEMES, SQLITE_FILE
from crawler.sinks import csv_partial, render_csv, split_warc_name

__all__ = [
    "CHANGES_FILE",
    "ERRORS_FILE",
    "STATS_FILE",
    "CrawlFiles",
    "default_worker_name",
    "is_shared",
    "write_json",
]

ERRORS_FILE = "errors.jsonl"
CHANGES_FILE = "changes.jsonl"  # a crawl in rounds: one record per page that changed
STATS_FILE = "stats.json"
PAGES_DIR = "pages"
LOCK_FILE = ".lock"


def is_shared(config: Config) -> bool:
    """A crawl whose frontier is in Redis: one worker of many."""
    return config.state.frontier.startswith(REDIS_SCHEMES)


def default_worker_name(index: int | None = None) -> str:
    """``HOSTNAME-INDEX``, stable across restarts (``--workers N`` numbers its own);
    without an index, ``HOSTNAME-PID``: two workers started by hand never collide."""
    return f"{socket.gethostname()}-{os.getpid() if index is None else index}"


@dataclass(frozen=True, slots=True)
class CrawlFiles:
    """The files of one crawl process: the only one, or one worker of many."""

    out: Path
    items_name: str  # as configured: items.jsonl, or products.csv
    worker: str | None  # None: a crawl of one process
    columns: tuple[str, ...] = ()  # a CSV's first columns
    warc: str = ""  # output.warc: crawl.warc.gz names crawl-00000.warc.gz, ...

    @classmethod
    def of(cls, config: Config, worker: str | None = None) -> CrawlFiles:
        output = config.output
        worker = (worker or default_worker_name()) if is_shared(config) else None
        return cls(output.dir, output.items, worker, output.columns, output.warc)

    @property
    def shared(self) -> bool:
        return self.worker is not None

    @property
    def items(self) -> Path:
        """The JSON Lines file the items are committed to (a ``.csv``'s companion)."""
        return self._named(self._records_name)

    @property
    def csv(self) -> Path | None:
        """The CSV rendered from ``items`` at the end of each run, if the items are CSV."""
        return self._named(self.items_name) if self.items_name != self._records_name else None

    @property
    def _records_name(self) -> str:
        stem, _, suffix = self.items_name.rpartition(".")
        return f"{stem}.jsonl" if suffix == "csv" else self.items_name

    @property
    def errors(self) -> Path:
        return self._named(ERRORS_FILE)

    @property
    def changes(self) -> Path:
        return self.out / CHANGES_FILE

    @property
    def stats(self) -> Path:
        return self.out / STATS_FILE

    @property
    def pages(self) -> Path:
        return self.out / PAGES_DIR

    @property
    def lock(self) -> Path:
        return self.out / (LOCK_FILE + (f"-{self.worker}" if self.worker else ""))

    def offset(self, checkpoint: Checkpoint, file: OutputFile) -> int:
        return checkpoint.offset(file, self.worker)

    def offset_key(self, file: OutputFile) -> str:
        return offset_key(file, self.worker)

    def _named(self, name: str, worker: str | None = None) -> Path:
        worker = worker or self.worker
        if worker is None:
            return self.out / name
        stem, dot, suffix = name.rpartition(".")
        return self.out / f"{stem}-{worker}{dot}{suffix}"

    async def repair(self, checkpoint: Checkpoint, *, mine: bool = False) -> None:
        """Cut files in this folder back to what their worker committed (nothing, for
        a worker that never did): what lies past that was, or will be, fetched again
        by someone else. ``mine``: this worker's own files (it lost its leases, or
        finds the crawl finished without it). Otherwise every other worker's: only
        once the crawl has finished, when nothing is leased, so no live worker holds
        anything uncommitted (one that lost its leases cuts its own on the way out)."""
        await asyncio.to_thread(self._cut, checkpoint, mine)

    def _cut(self, checkpoint: Checkpoint, mine: bool) -> None:
        files: tuple[tuple[str, OutputFile], ...] = ((self._records_name, "items"),
                                                     (ERRORS_FILE, "errors"))  # fmt: skip
        for name, file in files:
            stem, _, suffix = name.rpartition(".")
            for path in self.out.glob(f"{stem}-*.{suffix}"):
                worker = path.name[len(stem) + 1 : -len(suffix) - 1]
                if (worker == self.worker) == mine:
                    _cut(path, checkpoint.offset(file, worker))
        for owner, index, path in self._warc_files():
            if owner is not None and (owner == self.worker) == mine:
                if index > checkpoint.warc_file(owner):
                    path.unlink(missing_ok=True)  # begun after the worker's last commit
                elif index == checkpoint.warc_file(owner):
                    _cut(path, checkpoint.offset("warc", owner))

    def _warc_files(self) -> list[tuple[str | None, int, Path]]:
        """Every WARC file the crawl's writers wrote here: (worker, index, path)."""
        if not self.warc:
            return []
        stem, suffix = split_warc_name(self.warc)
        name = re.compile(rf"{re.escape(stem)}-(?:(.+)-)?(\d{{5,}}){re.escape(suffix)}")
        return [(match[1], int(match[2]), path) for path in self.out.glob(f"{stem}-*{suffix}")
                if (match := name.fullmatch(path.name))]  # fmt: skip

    def discard(self) -> None:
        """``--fresh``: remove exactly what a crawl writes in this folder, every
        worker's files included, and nothing else."""
        names = dict.fromkeys((self.items_name, self._records_name, ERRORS_FILE, CHANGES_FILE))
        for name in (*names, STATS_FILE, SQLITE_FILE, SQLITE_FILE + "-wal", SQLITE_FILE + "-shm"):
            (self.out / name).unlink(missing_ok=True)
        for name in names:  # the workers' own files
            stem, _, suffix = name.rpartition(".")
            for path in self.out.glob(f"{stem}-*.{suffix}"):
                path.unlink(missing_ok=True)
        if self.csv is not None:  # a render cut short, the crawl's or a worker's
            stem = self.items_name.rpartition(".")[0]
            for name in (self.items_name, f"{stem}-*.csv"):
                for path in self.out.glob(csv_partial(Path(name)).name):
                    path.unlink(missing_ok=True)
        for _, _, path in self._warc_files():
            path.unlink(missing_ok=True)
        shutil.rmtree(self.pages, ignore_errors=True)

    async def write_csv(self) -> None:
        """Render the CSV from the items' JSONL, if the items are CSV: at the end of a
        run, under the folder's lock, once everything written is committed."""
        if self.csv is not None:
            await render_csv(self.items, self.csv, columns=self.columns)


def _cut(path: Path, offset: int) -> None:
    with contextlib.suppress(FileNotFoundError), open(path, "r+b") as handle:
        if os.fstat(handle.fileno()).st_size > offset:
            handle.truncate(offset)
            os.fsync(handle.fileno())


async def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Replace ``path`` atomically; each write has a temp of its own, so workers sharing
    the folder, in one process or many, never move each other's."""
    temporary = path.with_suffix(f".{os.getpid()}.{secrets.token_hex(4)}.tmp")

    def write() -> None:
        temporary.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)

    await asyncio.to_thread(write)
