"""A frontier in Redis, shared by crawler workers on many machines.

Key layout, every key under ``crawl:<name>:`` so several crawls share one server::

    seen          SET   fingerprints (16 raw bytes) of every URL ever accepted
    data          HASH  fingerprint -> "<order score>\\n<request as JSON>", until done
    ready         ZSET  fingerprint, score depth * 2**32 + seq: breadth-first, then FIFO
    deferred      ZSET  fingerprint, score not_before (released to wait)
    owner         HASH  fingerprint -> worker, for every leased request
    leased:<w>    SET   fingerprints leased by worker <w>
    workers       ZSET  worker, score heartbeat expiry (clock() + lease_timeout)
    who           HASH  worker -> "<host> <pid>" of the process holding that name
    state         HASH  seq (last order number), done (count)
    checkpoint    HASH  checkpoint values (set) and counters (incremented)

Each request is in exactly one of ready, deferred, owner (leased) or none (done):
every transition is one Lua script, so no two workers can lease, complete or
release the same request. A lease lasts as long as its worker's heartbeat, not a
number of seconds: an open worker refreshes its expiry every ``lease_timeout / 3``.
``open`` gives back what an earlier run of the same worker still holds (that
process is gone); ``aclose`` gives back this run's leases and its heartbeat. A
worker name is held by one process at a time: ``open`` refuses a name whose
heartbeat is alive in another process (``AlreadyRunning``), unless that process
was on this host and no longer exists.
Every ``lease`` first gives back the leases of every worker whose heartbeat ran
out (itself included) and deletes those heartbeats. A commit from a worker
whose heartbeat ran out, or naming a request it does not hold, applies nothing
and raises ``LeaseLost``: the items it wrote must not be committed twice.
Expiry times come from the workers' clocks, so they must agree (NTP) to well
within ``lease_timeout``. Keys are derived inside the scripts: no Redis Cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError

from crawler.errors import AlreadyRunning, FrontierError
from crawler.frontier._redis_scripts import COMMIT, COMMON, HEARTBEAT, JOIN, KEYS, LEASE
from crawler.frontier.base import (
    CRAWL_NAME,
    BaseFrontier,
    Batch,
    FrontierStats,
    Lease,
    LeaseLost,
)
from crawler.frontier.cancellation import keep_cancellation
from crawler.models import Lineage, Request, make_headers
from crawler.urls import fingerprint, redact_password

__all__ = ["RedisFrontier", "default_worker"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
SOCKET_TIMEOUT = 30.0
MAX_DEPTH = 2**20  # depth * 2**32 + seq must stay an exact double (< 2**53)
DUE_PER_LEASE = 10_000  # deferred requests moved to ready per lease: bounds script time
_LINEAGE_FIELDS = tuple(f.name for f in dataclasses.fields(Lineage))
_NO_LINEAGE = Lineage()


def default_worker() -> str:
    """Unique per process, but not stable across restarts: pass a stable name
    (``host-0``) so a restarted worker frees its old leases at once instead of
    after ``lease_timeout``."""
    return f"{socket.gethostname()}-{os.getpid()}"


class RedisFrontier(BaseFrontier):
    """One worker's handle on the crawl ``name``. Worker names must be unique
    among running workers, and stable across a worker's restarts."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        worker: str,
        lease_timeout: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for label, value in (("name", name), ("worker", worker)):
            if not CRAWL_NAME.fullmatch(value):
                raise ValueError(
                    f"redis frontier {label} must match {CRAWL_NAME.pattern}: {value!r}"
                )
        if not lease_timeout > 0:
            raise ValueError(f"lease_timeout must be positive, got {lease_timeout!r}")
        self.url, self.name, self.worker = url, name, worker
        self.process = f"{socket.gethostname()} {os.getpid()}"  # who holds the name
        self.lease_timeout = lease_timeout
        self._clock = clock
        self._where = redact_password(url)
        self._prefix = f"crawl:{name}:"
        self._keys = [self._prefix + key for key in KEYS]  # as the scripts' KEYS
        self._key = dict(zip(KEYS, self._keys, strict=True))
        self._redis: Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Translate redis-py's exceptions, once, into ours; a cancel redis-py lost
        is raised again (``keep_cancellation``)."""
        try:
            with keep_cancellation():
                yield
        except ResponseError as exc:
            kind, _, count = str(exc).partition(" ")
            if kind == "LEASELOST":
                raise LeaseLost(int(count), self.worker) from None
            raise FrontierError(f"redis frontier {self._where}: {exc}") from exc
        except RedisError as exc:
            raise FrontierError(f"redis frontier {self._where}: {exc}") from exc

    def _client(self) -> Redis:
        if self._redis is None:
            raise RuntimeError("frontier is not open: use `async with frontier:`")
        return self._redis

    async def _run(self, script: str, *args: Any) -> Any:
        client, now = self._client(), self._clock()
        head = [self._prefix, self.worker, repr(now), repr(now + self.lease_timeout)]
        with self._errors():
            return await self._scripts[script](keys=self._keys, args=[*head, *args], client=client)

    async def open(self) -> None:
        if self._redis is not None:
            return
        try:  # no automatic retries: a commit replayed after a lost reply would count twice
            client = Redis.from_url(
                self.url,
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=SOCKET_TIMEOUT,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as exc:
            raise FrontierError(f"bad redis frontier URL {self._where}: {exc}") from exc
        try:
            await client.ping()
        except RedisError as exc:
            await client.aclose()
            raise FrontierError(f"cannot use the redis frontier at {self._where}: {exc}") from exc
        sources = {"join": COMMON + JOIN, "heartbeat": HEARTBEAT}
        sources |= {"lease": COMMON + LEASE, "commit": COMMIT}
        self._scripts = {key: client.register_script(lua) for key, lua in sources.items()}
        self._redis = client
        try:
            await self._join()
        except BaseException:
            self._redis = None
            await client.aclose()
            raise
        self._task = asyncio.create_task(self._beat(), name=f"frontier heartbeat {self.worker}")

    async def _join(self) -> None:
        """Take this worker's name, unless another live process holds it. A holder on
        this host whose process is gone (killed) is taken over at once: a restart
        after ``kill -9`` must not wait for its heartbeat to run out."""
        holder = await self._run("join", "join", self.process)
        if holder:
            host, _, pid = _text(holder).partition(" ")
            if host != socket.gethostname() or not pid.isdigit() or _alive(int(pid)):
                raise AlreadyRunning(
                    f"worker {self.worker!r} of crawl {self.name!r} is running "
                    f"(pid {pid} on {host}, its heartbeat alive): give this worker another --id"
                )
            await self._run("join", "take", self.process)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.lease_timeout / 3)
            try:
                if not await self.heartbeat():
                    log.warning("worker %s: heartbeat ran out, leases lost", self.worker)
            except FrontierError as exc:  # a blip: two more beats before the lease expires
                log.warning("worker %s: heartbeat failed: %s", self.worker, exc)

    async def heartbeat(self) -> bool:
        """Push this worker's expiry to ``lease_timeout`` from now; false when it
        already ran out (its leases are, or are about to be, someone else's)."""
        return bool(await self._run("heartbeat"))

    async def aclose(self) -> None:
        """Give this worker's leases back and leave the crawl."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        client = self._redis
        if client is None:
            return
        try:
            await self._run("join", "leave")
        finally:
            self._redis = None
            await client.aclose()

    async def clear(self) -> None:
        """Delete every key of this crawl, then rejoin it; ``AlreadyRunning`` while
        another worker's heartbeat is alive (it would go on writing beside a fresh
        crawl)."""
        client = self._client()
        with self._errors():
            alive = cast(
                list[bytes],
                await client.zrangebyscore(self._key["workers"], f"({self._clock()!r}", "+inf"),
            )
            others = sorted(name for name in map(_text, alive) if name != self.worker)
            if others:
                raise AlreadyRunning(
                    f"crawl {self.name!r} has workers running ({', '.join(others)}): "
                    "stop them before starting it afresh"
                )
            keys: list[bytes] = []
            async for key in client.scan_iter(match=self._prefix + "*", count=1000):
                keys.append(key)
                if len(keys) >= 1000:
                    await client.unlink(*keys)
                    keys.clear()
            if keys:
                await client.unlink(*keys)
        await self._run("join", "join", self.process)

    async def commit(self, batch: Batch) -> list[bool]:
        args: list[Any] = [
            len(batch.done),
            len(batch.released),
            len(batch.links),
            len(batch.checkpoint),
            len(batch.counters),
        ]
        args += [fingerprint(r.url) for r in batch.done]
        for request, not_before in batch.released:
            args += [fingerprint(request.url), repr(max(float(not_before), 0.0)), _dump(request)]
        for request in batch.links:
            depth = min(max(request.lineage.depth, 0), MAX_DEPTH)
            args += [fingerprint(request.url), depth, _dump(request)]
        for values in (batch.checkpoint, batch.counters):
            for key, value in values.items():
                args += [key, int(value)]
        added = await self._run("commit", *args)
        return [bool(new) for new in added]

    async def lease(self, limit: int, *, seconds: float = 600.0) -> Lease:
        """``seconds`` is ignored: a lease lasts while this worker's heartbeat does."""
        finished, next_at, *values = await self._run("lease", max(limit, 0), DUE_PER_LEASE)
        return Lease(
            [_load(value) for value in values],
            finished=bool(finished),
            next_at=float(next_at) if next_at else None,
        )

    async def extend(self, requests: Sequence[Request], seconds: float) -> None:
        """Refresh the heartbeat that keeps all of this worker's leases alive."""
        if not await self.heartbeat() and requests:
            raise LeaseLost(len(requests), self.worker)

    async def checkpoint(self, keys: Sequence[str] | None = None) -> Mapping[str, int]:
        with self._errors():
            if keys is not None:
                found = await self._client().hmget(self._key["checkpoint"], list(keys))
                return {k: int(v) for k, v in zip(keys, found, strict=True) if v is not None}
            values = await self._client().hgetall(self._key["checkpoint"])
        return {_text(key): int(value) for key, value in values.items()}

    async def stats(self) -> FrontierStats:
        key = self._key
        ready, deferred, owner, seen, state = (
            key["ready"], key["deferred"], key["owner"], key["seen"], key["state"]
        )  # fmt: skip
        with self._errors():
            async with self._client().pipeline(transaction=True) as pipe:
                pipe.scard(seen)
                pipe.zcard(ready)
                pipe.zcard(deferred)
                pipe.hlen(owner)
                pipe.hget(state, "done")
                n_seen, n_ready, n_deferred, n_leased, n_done = await pipe.execute()
        return FrontierStats(
            seen=n_seen, pending=n_ready + n_deferred, leased=n_leased, done=int(n_done or 0)
        )


def _dump(request: Request) -> str:
    """URL, lineage (the fields that differ from the default) and meta, as the SQLite
    store keeps them; method and headers when set."""
    data: dict[str, Any] = {"url": request.url, "meta": dict(request.meta)}
    data["lineage"] = {
        name: value
        for name in _LINEAGE_FIELDS
        if (value := getattr(request.lineage, name)) != getattr(_NO_LINEAGE, name)
    }
    if request.method != "GET":
        data["method"] = request.method
    if request.headers:
        data["headers"] = list(request.headers.items())
    return json.dumps(data, separators=(",", ":"))


def _load(value: bytes) -> Request:
    data = json.loads(value.partition(b"\n")[2])
    meta = data["meta"]
    if "lineage" in data:
        lineage = data["lineage"]
    else:  # written before the lineage had fields of its own: it rode in meta
        lineage = {name: meta.pop(name) for name in _LINEAGE_FIELDS if name in meta}
        meta.pop("robots", None)
    return Request(
        data["url"],
        method=data.get("method", "GET"),
        headers=make_headers([(k, v) for k, v in data.get("headers", ())]),
        lineage=Lineage(**lineage),
        meta=meta,
    )


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists here (another user's counts: signal 0 is refused)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
