"""A frontier in Redis, shared by crawler workers on many machines.

Key layout, every key under ``crawl:<name>:`` so several crawls share one server::

    seen          SET   fingerprints (16 raw bytes) of every URL ever accepted
    data          HASH  fingerprint -> "<order score>\\n<request as JSON>", until done
    ready         ZSET  fingerprint, score depth * 2**32 + seq: breadth-first, then FIFO
    deferred      ZSET  fingerprint, score not_before (released to wait)
    owner         HASH  fingerprint -> worker, for every leased request
    leased:<w>    SET   fingerprints leased by worker <w>
    workers       ZSET  worker, score heartbeat expiry (clock() + lease_timeout)
    state         HASH  seq (last order number), done (count)
    checkpoint    HASH  checkpoint values (set) and counters (incremented)

Each request is in exactly one of ready, deferred, owner (leased) or none (done):
every transition is one Lua script, so no two workers can lease, complete or
release the same request. A lease lasts as long as its worker's heartbeat, not a
number of seconds: an open worker refreshes its expiry every ``lease_timeout / 3``.
``open`` gives back what an earlier run of the same worker still holds (that
process is gone); ``aclose`` gives back this run's leases and its heartbeat.
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
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError

from crawler.errors import FrontierError
from crawler.frontier.base import (
    CRAWL_NAME,
    BaseFrontier,
    Batch,
    FrontierStats,
    Lease,
    LeaseLost,
)
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
_KEYS = ("ready", "deferred", "data", "owner", "workers", "seen", "state", "checkpoint")

# KEYS: the _KEYS above, in order. ARGV: prefix, worker, now, expiry, then per script.
_COMMON = """
local function requeue(id)
  local value = redis.call('HGET', KEYS[3], id)
  if value then
    redis.call('ZADD', KEYS[1], string.sub(value, 1, string.find(value, '\\n', 1, true) - 1), id)
  end
end
local function give_back(worker)
  local key = ARGV[1] .. 'leased:' .. worker
  for _, id in ipairs(redis.call('SMEMBERS', key)) do
    requeue(id)
    redis.call('HDEL', KEYS[4], id)
  end
  redis.call('DEL', key)
end
"""

# open: a worker's earlier process is gone, so are its leases. close: give them back.
_JOIN = """
give_back(ARGV[2])
if ARGV[5] == 'leave' then redis.call('ZREM', KEYS[5], ARGV[2])
else redis.call('ZADD', KEYS[5], ARGV[4], ARGV[2]) end
return 0
"""

# Refresh only a live heartbeat: a worker declared dead must not come back (it must
# restart, which gives back what it held; see _LEASE too).
_HEARTBEAT = """
local score = redis.call('ZSCORE', KEYS[5], ARGV[2])
if score and tonumber(score) > tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[5], ARGV[4], ARGV[2])
  return 1
end
return 0
"""

# ARGV[5]: limit, ARGV[6]: DUE_PER_LEASE. Returns {finished, next_at or '', data...}.
_LEASE = """
for _, worker in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', ARGV[3])) do
  give_back(worker)
  redis.call('ZREM', KEYS[5], worker)
end
if not redis.call('ZSCORE', KEYS[5], ARGV[2]) then
  -- Declared dead (its leases given back) while it still holds their requests: it
  -- must stop, not lease them again beside the copies it has in flight.
  return redis.error_reply('LEASELOST 0')
end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3], 'LIMIT', 0, ARGV[6])
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[2], id)
  requeue(id)
end
local out = {0, ''}
local limit = tonumber(ARGV[5])
if limit > 0 then
  local mine = ARGV[1] .. 'leased:' .. ARGV[2]
  local popped = redis.call('ZPOPMIN', KEYS[1], limit)
  for i = 1, #popped, 2 do
    local value = redis.call('HGET', KEYS[3], popped[i])
    if value then
      redis.call('SADD', mine, popped[i])
      redis.call('HSET', KEYS[4], popped[i], ARGV[2])
      out[#out + 1] = value
    end
  end
end
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if first[2] then out[2] = first[2] end
if #out == 2 and not first[2] and redis.call('ZCARD', KEYS[1]) == 0
    and redis.call('HLEN', KEYS[4]) == 0 then
  out[1] = 1
end
return out
"""

# ARGV[5..9]: how many done ids, released (id, not_before, json), links (id, depth,
# json), checkpoint (key, value), counters (key, increment); then those items.
_COMMIT = """
local now = tonumber(ARGV[3])
local nd, nr, nl, nc, nk = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]),
  tonumber(ARGV[8]), tonumber(ARGV[9])
local mine = ARGV[1] .. 'leased:' .. ARGV[2]
local score = redis.call('ZSCORE', KEYS[5], ARGV[2])
local alive = score and tonumber(score) > now
local done, released, links = 10, 10 + nd, 10 + nd + 3 * nr
local lost, named = 0, {}
for i = 0, nd + nr - 1 do
  local id = i < nd and ARGV[done + i] or ARGV[released + 3 * (i - nd)]
  if not alive or named[id] or redis.call('SISMEMBER', mine, id) == 0 then lost = lost + 1 end
  named[id] = true
end
if lost > 0 or not alive then return redis.error_reply('LEASELOST ' .. lost) end
for i = done, released - 1 do
  if redis.call('SREM', mine, ARGV[i]) == 1 then
    redis.call('HDEL', KEYS[4], ARGV[i])
    redis.call('HDEL', KEYS[3], ARGV[i])
    redis.call('HINCRBY', KEYS[7], 'done', 1)
  end
end
for i = released, links - 1, 3 do
  local id = ARGV[i]
  if redis.call('SREM', mine, id) == 1 then
    redis.call('HDEL', KEYS[4], id)
    local value = redis.call('HGET', KEYS[3], id)
    local order = string.sub(value, 1, string.find(value, '\\n', 1, true) - 1)
    redis.call('HSET', KEYS[3], id, order .. '\\n' .. ARGV[i + 2])
    if tonumber(ARGV[i + 1]) > now then redis.call('ZADD', KEYS[2], ARGV[i + 1], id)
    else redis.call('ZADD', KEYS[1], order, id) end
  end
end
local added = {}
local pairs_at = links + 3 * nl
for i = links, pairs_at - 1, 3 do
  local new = redis.call('SADD', KEYS[6], ARGV[i])
  if new == 1 then
    local seq = redis.call('HINCRBY', KEYS[7], 'seq', 1)
    local order = string.format('%.0f', tonumber(ARGV[i + 1]) * 4294967296 + seq)
    redis.call('HSET', KEYS[3], ARGV[i], order .. '\\n' .. ARGV[i + 2])
    redis.call('ZADD', KEYS[1], order, ARGV[i])
  end
  added[#added + 1] = new
end
for i = pairs_at, pairs_at + 2 * nc - 1, 2 do redis.call('HSET', KEYS[8], ARGV[i], ARGV[i + 1]) end
local counters_at = pairs_at + 2 * nc
for i = counters_at, counters_at + 2 * nk - 1, 2 do
  redis.call('HINCRBY', KEYS[8], ARGV[i], ARGV[i + 1])
end
return added
"""


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
        self.lease_timeout = lease_timeout
        self._clock = clock
        self._where = redact_password(url)
        self._prefix = f"crawl:{name}:"
        self._keys = [self._prefix + key for key in _KEYS]
        self._redis: Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Translate redis-py's exceptions, once, into ours."""
        try:
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
        sources = {"join": _COMMON + _JOIN, "heartbeat": _HEARTBEAT}
        sources |= {"lease": _COMMON + _LEASE, "commit": _COMMIT}
        self._scripts = {key: client.register_script(lua) for key, lua in sources.items()}
        self._redis = client
        try:
            await self._run("join", "join")
        except BaseException:
            self._redis = None
            await client.aclose()
            raise
        self._task = asyncio.create_task(self._beat(), name=f"frontier heartbeat {self.worker}")

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
        """Delete every key of this crawl (not atomic: no worker should be running),
        then rejoin it."""
        client = self._client()
        with self._errors():
            keys: list[bytes] = []
            async for key in client.scan_iter(match=self._prefix + "*", count=1000):
                keys.append(key)
                if len(keys) >= 1000:
                    await client.unlink(*keys)
                    keys.clear()
            if keys:
                await client.unlink(*keys)
        await self._run("join", "join")

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
                found = await self._client().hmget(self._keys[7], list(keys))
                return {k: int(v) for k, v in zip(keys, found, strict=True) if v is not None}
            values = await self._client().hgetall(self._keys[7])
        return {_text(key): int(value) for key, value in values.items()}

    async def stats(self) -> FrontierStats:
        ready, deferred, _, owner, _, seen, state, _ = self._keys
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


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
