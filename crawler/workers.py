"""One crawl, many worker processes: what each worker owns, and what ties them.

With a Redis frontier every worker writes its own files (``items-<worker>.jsonl``,
``errors-<worker>.jsonl``) and records their committed lengths under keys of its
own, so no two processes ever append to one file and each can be cut back to
exactly what it committed. A worker restarted under the same name does that for
its own files when it opens them; once the crawl has finished, the last worker
out cuts the files of workers that died and never came back, so every page is in
the items exactly once across the files. A single-process crawl keeps the plain
names (``items.jsonl``) and keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from crawler.config import Config
from crawler.frontier import REDIS_SCHEMES

if TYPE_CHECKING:
    from crawler.cluster import SharedPoliteness

__all__ = ["ERRORS_FILE", "WorkerFiles", "default_worker_name", "is_shared", "shared_politeness"]

ERRORS_FILE = "errors.jsonl"


def is_shared(config: Config) -> bool:
    """A crawl whose frontier is in Redis: one worker of many."""
    return config.state.frontier.startswith(REDIS_SCHEMES)


def default_worker_name(index: int | None = None) -> str:
    """``HOSTNAME-INDEX``, stable across restarts (``--workers N`` numbers its own);
    without an index, ``HOSTNAME-PID``: two workers started by hand never collide."""
    return f"{socket.gethostname()}-{os.getpid() if index is None else index}"


@dataclass(frozen=True, slots=True)
class WorkerFiles:
    """The files and checkpoint keys of one worker (or of the only process)."""

    out: Path
    items_name: str
    worker: str | None  # None: a single-process crawl
    redis_url: str | None

    @classmethod
    def of(cls, config: Config, worker: str | None) -> WorkerFiles:
        if not is_shared(config):
            return cls(config.output.dir, config.output.items, None, None)
        name = worker or default_worker_name()
        return cls(config.output.dir, config.output.items, name, config.state.frontier)

    @property
    def shared(self) -> bool:
        return self.worker is not None

    def _named(self, name: str, worker: str | None = None) -> Path:
        worker = worker or self.worker
        if worker is None:
            return self.out / name
        stem, dot, suffix = name.rpartition(".")
        return self.out / f"{stem}-{worker}{dot}{suffix}"

    @property
    def items(self) -> Path:
        return self._named(self.items_name)

    @property
    def errors(self) -> Path:
        return self._named(ERRORS_FILE)

    @property
    def items_key(self) -> str:
        return "offset.items" + (f".{self.worker}" if self.worker else "")

    @property
    def errors_key(self) -> str:
        return "offset.errors" + (f".{self.worker}" if self.worker else "")

    async def repair(self, checkpoint: Mapping[str, int], *, mine: bool = False) -> None:
        """Cut files in this folder back to what their worker committed (nothing, for
        a worker that never did): what lies past that was, or will be, fetched again
        by someone else. ``mine``: this worker's own files (it lost its leases, or
        finds the crawl finished without it). Otherwise every other worker's: only
        once the crawl has finished, when nothing is leased, so no live worker holds
        anything uncommitted (one that lost its leases cuts its own on the way out)."""
        await asyncio.to_thread(self._cut, dict(checkpoint), mine)

    def _cut(self, checkpoint: dict[str, int], mine: bool) -> None:
        for name, key in ((self.items_name, "offset.items"), (ERRORS_FILE, "offset.errors")):
            stem, _, suffix = name.rpartition(".")
            for path in self.out.glob(f"{stem}-*.{suffix}"):
                worker = path.name[len(stem) + 1 : -len(suffix) - 1]
                if (worker == self.worker) == mine:
                    _cut(path, checkpoint.get(f"{key}.{worker}", 0))


def _cut(path: Path, offset: int) -> None:
    with contextlib.suppress(FileNotFoundError), open(path, "r+b") as handle:
        if os.fstat(handle.fileno()).st_size > offset:
            handle.truncate(offset)
            os.fsync(handle.fileno())


@contextlib.asynccontextmanager
async def shared_politeness(
    config: Config, files: WorkerFiles
) -> AsyncIterator[SharedPoliteness | None]:
    """Rate limits, concurrency and robots.txt shared by every worker (Redis), or None."""
    if files.redis_url is None:
        yield None
        return
    from crawler.cluster import SharedPoliteness  # redis is imported only by shared crawls

    async with SharedPoliteness.from_url(
        files.redis_url, name=config.state.name, lease_timeout=config.state.lease_timeout
    ) as shared:
        yield shared
