"""A frontier in process memory: for tests and short crawls; nothing survives exit."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from crawler.frontier.base import BaseFrontier, Batch, FrontierStats, Lease
from crawler.models import Request
from crawler.urls import fingerprint

__all__ = ["MemoryFrontier"]

PENDING, LEASED, DONE = 0, 1, 2


@dataclass(slots=True)
class _Entry:
    request: Request
    seq: int
    state: int = PENDING
    not_before: float = 0.0
    lease_until: float = 0.0


class MemoryFrontier(BaseFrontier):
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._reset()

    def _reset(self) -> None:
        self._entries: dict[bytes, _Entry] = {}
        self._ready: list[tuple[int, int, bytes]] = []  # (depth, seq, fp)
        self._deferred: list[tuple[float, int, bytes]] = []  # (not_before, seq, fp)
        self._leased: dict[bytes, _Entry] = {}
        self._checkpoint: dict[str, int] = {}
        self._seq = 0
        self._done = 0

    async def aclose(self) -> None:
        return None

    async def clear(self) -> None:
        self._reset()

    async def commit(self, batch: Batch) -> list[bool]:
        for request in batch.done:
            entry = self._leased.pop(fingerprint(request.url), None)
            if entry is not None:
                entry.state = DONE
                self._done += 1
        for request, not_before in batch.released:
            fp = fingerprint(request.url)
            entry = self._leased.pop(fp, None)
            if entry is not None:
                entry.request = request
                self._schedule(fp, entry, not_before)
        added = [self._add(request) for request in batch.links]
        self._checkpoint.update(batch.checkpoint)
        for key, increment in batch.counters.items():
            self._checkpoint[key] = self._checkpoint.get(key, 0) + increment
        return added

    def _add(self, request: Request) -> bool:
        fp = fingerprint(request.url)
        if fp in self._entries:
            return False
        self._seq += 1
        entry = self._entries[fp] = _Entry(request, self._seq)
        self._schedule(fp, entry, 0.0)
        return True

    def _schedule(self, fp: bytes, entry: _Entry, not_before: float) -> None:
        entry.state, entry.not_before = PENDING, not_before
        if not_before > self._clock():
            heapq.heappush(self._deferred, (not_before, entry.seq, fp))
        else:
            heapq.heappush(self._ready, (entry.request.lineage.depth, entry.seq, fp))

    async def lease(self, limit: int, *, seconds: float = 600.0) -> Lease:
        now = self._clock()
        while self._deferred and self._deferred[0][0] <= now:
            _, seq, fp = heapq.heappop(self._deferred)
            entry = self._entries[fp]
            heapq.heappush(self._ready, (entry.request.lineage.depth, seq, fp))
        for fp, entry in [(fp, e) for fp, e in self._leased.items() if e.lease_until <= now]:
            del self._leased[fp]
            self._schedule(fp, entry, 0.0)
        handed: list[Request] = []
        while self._ready and len(handed) < limit:
            _, _, fp = heapq.heappop(self._ready)
            entry = self._entries[fp]
            if entry.state != PENDING:
                continue
            entry.state, entry.lease_until = LEASED, now + seconds
            self._leased[fp] = entry
            handed.append(entry.request)
        finished = not handed and not self._ready and not self._deferred and not self._leased
        next_at = self._deferred[0][0] if self._deferred else None
        return Lease(handed, finished=finished, next_at=next_at)

    async def extend(self, requests: Sequence[Request], seconds: float) -> None:
        until = self._clock() + seconds
        for request in requests:
            entry = self._leased.get(fingerprint(request.url))
            if entry is not None:
                entry.lease_until = until

    async def checkpoint(self, keys: Sequence[str] | None = None) -> Mapping[str, int]:
        if keys is None:
            return dict(self._checkpoint)
        return {k: self._checkpoint[k] for k in keys if k in self._checkpoint}

    async def stats(self) -> FrontierStats:
        leased = len(self._leased)
        seen = len(self._entries)
        return FrontierStats(
            seen=seen, pending=seen - leased - self._done, leased=leased, done=self._done
        )
