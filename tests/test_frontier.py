"""One conformance suite for every frontier backend."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from crawler.errors import AlreadyRunning, FrontierError
from crawler.frontier import (
    Batch,
    LeaseLost,
    MemoryFrontier,
    SqliteFrontier,
    open_frontier,
)
from crawler.frontier._redis import RedisFrontier
from crawler.frontier._sqlite import SCHEMA_VERSION
from crawler.frontier.base import BaseFrontier
from crawler.models import Lineage, Request
from crawler.urls import fingerprint
from tests.redis_server import SKIP_REASON, RedisServer, redis_server_binary


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def frontier(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[BaseFrontier]:
    store: BaseFrontier
    if request.param == "memory":
        store = MemoryFrontier(clock=clock)
    elif request.param == "sqlite":
        store = SqliteFrontier(tmp_path / "f.sqlite3", clock=clock)
    else:
        url = request.getfixturevalue("redis_url")
        store = RedisFrontier(url, name="test", worker="w0", lease_timeout=60, clock=clock)
    async with store:
        yield store


def shared(frontier: BaseFrontier) -> bool:
    """Shared by many workers: leases live per worker, and a commit naming a
    request this worker does not hold raises LeaseLost instead of being ignored."""
    return isinstance(frontier, RedisFrontier)


def req(path: str, depth: int = 0) -> Request:
    return Request(f"http://a.test{path}", lineage=Lineage(depth=depth))


async def test_push_deduplicates_by_canonical_url(frontier: BaseFrontier) -> None:
    added = await frontier.push([
        req("/p?b=2&a=1"), req("/p?a=1&b=2#frag"), Request("HTTP://A.TEST:80/p?a=1&b=2"),
        req("/P?a=1&b=2"),
    ])  # fmt: skip
    assert added == [True, False, False, True]  # path case is kept
    assert (await frontier.stats()).seen == 2


async def test_lease_is_breadth_first_then_fifo(frontier: BaseFrontier) -> None:
    await frontier.push([req("/deep", 2), req("/a", 1), req("/root", 0), req("/b", 1)])
    lease = await frontier.lease(10)
    assert [r.url.rsplit("/", 1)[1] for r in lease.requests] == ["root", "a", "b", "deep"]
    assert lease.requests[0].lineage == Lineage(depth=0)


async def test_nothing_ready_is_not_finished(frontier: BaseFrontier) -> None:
    await frontier.push([req("/a")])
    first = await frontier.lease(10)
    again = await frontier.lease(10)
    assert (again.requests, again.finished) == ([], False)  # /a is still leased
    await frontier.complete(first.requests)
    done = await frontier.lease(10)
    assert (done.requests, done.finished) == ([], True)
    stats = await frontier.stats()
    assert (stats.seen, stats.pending, stats.leased, stats.done) == (1, 0, 0, 1)


async def test_empty_frontier_is_finished(frontier: BaseFrontier) -> None:
    assert (await frontier.lease(1)).finished


async def test_release_with_not_before(frontier: BaseFrontier, clock: Clock) -> None:
    await frontier.push([req("/a")])
    (request,) = (await frontier.lease(1)).requests
    await frontier.release(request.replace(lineage=Lineage(tries=1)), clock.now + 30)
    waiting = await frontier.lease(1)
    assert (waiting.requests, waiting.finished, waiting.next_at) == ([], False, clock.now + 30)
    clock.now += 30
    (again,) = (await frontier.lease(1)).requests
    assert again.lineage.tries == 1


async def test_expired_lease_is_handed_out_again(frontier: BaseFrontier, clock: Clock) -> None:
    # The redis fixture's lease_timeout is 60 s too: its leases end with its heartbeat.
    await frontier.push([req("/a"), req("/b")])
    first = await frontier.lease(2, seconds=60)
    clock.now += 30
    await frontier.extend(first.requests, 60)
    clock.now += 31  # past the first term, within the extension
    kept = await frontier.lease(10)
    assert (kept.requests, kept.finished) == ([], False)
    clock.now += 30  # past the extension
    if shared(frontier):  # handed to another worker: this one is dead and must restart
        assert isinstance(frontier, RedisFrontier)
        other = RedisFrontier(frontier.url, name=frontier.name, worker="w9", clock=clock)
        async with other:
            again = await other.lease(10)
    else:
        again = await frontier.lease(10)
    assert [r.url for r in again.requests] == [r.url for r in first.requests]


# A redis lease lasts as long as its worker's heartbeat, not a number of seconds.
@pytest.mark.parametrize("frontier", ["memory", "sqlite"], indirect=True)
async def test_leases_expire_one_by_one(frontier: BaseFrontier, clock: Clock) -> None:
    await frontier.push([req("/a"), req("/b")])
    first = await frontier.lease(2, seconds=60)
    await frontier.extend(first.requests[1:], 600)
    clock.now += 61
    again = await frontier.lease(10)
    assert [r.url for r in again.requests] == [first.requests[0].url]


async def test_commit_is_one_step(frontier: BaseFrontier) -> None:
    await frontier.push([req("/a")])
    (page,) = (await frontier.lease(1)).requests
    added = await frontier.commit(
        Batch(done=[page], links=[req("/a"), req("/b", 1)], checkpoint={"items": 120, "pages": 1})
    )
    assert added == [False, True]
    assert await frontier.checkpoint() == {"items": 120, "pages": 1}
    stats = await frontier.stats()
    assert (stats.done, stats.pending) == (1, 1)


async def test_completing_an_unleased_request_changes_nothing(frontier: BaseFrontier) -> None:
    await frontier.push([req("/a")])
    (leased,) = (await frontier.lease(1)).requests
    await frontier.push([req("/b")])
    # One process: a stray completion is ignored. Shared: it means this worker's
    # lease went to another, so the whole batch is refused.
    refused = pytest.raises(LeaseLost, match="lost 2 lease") if shared(frontier) else None
    with refused or contextlib.nullcontext():
        await frontier.commit(Batch(done=[req("/b"), req("/never-pushed")], links=[req("/c")]))
    stats = await frontier.stats()
    assert (stats.done, stats.leased) == (0, 1)
    assert stats.seen == (2 if shared(frontier) else 3)  # /c came with the refused batch
    await frontier.complete([leased])
    assert (await frontier.lease(5)).requests[0].url == "http://a.test/b"


async def test_counters_add_up_with_the_checkpoint(frontier: BaseFrontier) -> None:
    await frontier.commit(Batch(checkpoint={"offset": 10}, counters={"pages": 2, "bytes": 5}))
    await frontier.commit(Batch(checkpoint={"offset": 25}, counters={"pages": 1}))
    await frontier.commit(Batch(counters={"offset": 5}))  # one namespace: adds to the set value
    assert await frontier.checkpoint() == {"offset": 30, "pages": 3, "bytes": 5}


async def test_clear_forgets_everything(frontier: BaseFrontier) -> None:
    await frontier.commit(Batch(links=[req("/a")], checkpoint={"items": 5}))
    await frontier.clear()
    assert await frontier.push([req("/a")]) == [True]
    assert await frontier.checkpoint() == {}


async def test_sqlite_survives_reopen_and_frees_dead_leases(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "f.sqlite3"
    async with SqliteFrontier(path, clock=clock) as store:
        await store.push([req(f"/{i}") for i in range(5)])
        leased = await store.lease(3)
        await store.commit(Batch(done=leased.requests[:1], checkpoint={"items": 42}))
    async with SqliteFrontier(path, clock=clock) as store:  # the crashed process's leases are free
        stats = await store.stats()
        assert (stats.seen, stats.pending, stats.leased, stats.done) == (5, 4, 0, 1)
        assert await store.checkpoint() == {"items": 42}
        assert len((await store.lease(10)).requests) == 4
        assert await store.push([req("/0")]) == [False]


# Redis only: several workers on one crawl.

needs_redis_server = pytest.mark.skipif(redis_server_binary() is None, reason=SKIP_REASON)


@contextlib.asynccontextmanager
async def workers(
    url: str, clock: Clock, *names: str, crawl: str = "test"
) -> AsyncIterator[list[RedisFrontier]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                RedisFrontier(url, name=crawl, worker=name, lease_timeout=60, clock=clock)
            )
            for name in names
        ]


async def crash(store: RedisFrontier) -> None:
    """What a killed worker leaves behind: its heartbeat and its leases, no goodbye."""
    task, client = store._task, store._redis
    assert task is not None
    assert client is not None
    task.cancel()
    await asyncio.wait([task])
    await client.aclose()
    store._task = store._redis = None


async def test_two_workers_never_lease_the_same_request(redis_url: str, clock: Clock) -> None:
    async with workers(redis_url, clock, "w1", "w2") as (one, two):
        await one.push([req(f"/{i}", i % 3) for i in range(2000)])
        handed: dict[str, list[str]] = {"w1": [], "w2": []}

        async def drain(store: RedisFrontier) -> None:
            for _ in range(10_000):  # bounded: a broken lease fails here instead of hanging
                lease = await store.lease(7)
                if lease.finished:
                    return
                handed[store.worker] += [r.url for r in lease.requests]
                await store.complete(lease.requests)
            pytest.fail(f"{store.worker} never saw the crawl finish")

        await asyncio.gather(*[drain(store) for store in (one, two) for _ in range(4)])
        every = handed["w1"] + handed["w2"]
        assert len(every) == len(set(every)) == 2000
        assert handed["w1"]
        assert handed["w2"]
        stats = await two.stats()
        assert (stats.seen, stats.pending, stats.leased, stats.done) == (2000, 0, 0, 2000)


async def test_a_silent_workers_leases_go_to_the_others(redis_url: str, clock: Clock) -> None:
    async with workers(redis_url, clock, "dead", "live") as (dead, live):
        await live.push([req(f"/{i}") for i in range(10)])
        lost = (await dead.lease(4)).requests
        clock.now += 30
        assert await live.heartbeat()  # what live's heartbeat task does every 20 s
        clock.now += 31  # dead's heartbeat (60 s from its open) ran out
        taken = await live.lease(10)
        assert len(taken.requests) == 10
        assert {r.url for r in lost} <= {r.url for r in taken.requests}

        with pytest.raises(LeaseLost, match="'dead' lost 4 lease") as refused:
            await dead.commit(Batch(done=lost, links=[req("/new")], counters={"pages": 4}))
        assert refused.value.count == 4
        assert not await dead.heartbeat()  # a worker given up does not come back by beating
        await dead.aclose()  # holds nothing any more: gives nothing back
        stats = await live.stats()
        assert (stats.seen, stats.pending, stats.leased, stats.done) == (10, 0, 10, 0)
        assert await live.checkpoint() == {}
        await live.commit(Batch(done=taken.requests))
        assert (await live.lease(10)).finished


async def test_an_expired_worker_can_neither_commit_nor_lease_until_it_restarts(
    redis_url: str, clock: Clock
) -> None:
    async with workers(redis_url, clock, "w1") as (store,):
        await store.push([req("/a"), req("/b")])
        first = (await store.lease(1)).requests
        clock.now += 61  # stalled past its heartbeat: another worker may have taken /a
        with pytest.raises(LeaseLost, match="lost 1 lease"):
            await store.complete(first)
        with pytest.raises(LeaseLost):
            await store.extend(first, 60)
        with pytest.raises(LeaseLost):  # leasing /a again beside the copy it holds: no
            await store.lease(10)
        with pytest.raises(LeaseLost):  # nor naming one request twice
            await store.commit(Batch(done=[*first, *first]))
    async with workers(redis_url, clock, "w1") as (restarted,):
        again = await restarted.lease(10)
        assert [r.url for r in again.requests] == ["http://a.test/a", "http://a.test/b"]
        await restarted.complete(again.requests)
        assert (await restarted.stats()).done == 2


async def test_a_restarted_worker_gets_its_old_leases_back(redis_url: str, clock: Clock) -> None:
    async with workers(redis_url, clock, "host-0", "host-1") as (crashed, other):
        await crashed.push([req(f"/{i}") for i in range(5)])
        assert len((await crashed.lease(3)).requests) == 3
        await crash(crashed)
        assert (await other.stats()).leased == 3  # its heartbeat has not run out yet
        async with workers(redis_url, clock, "host-0") as (restarted,):
            stats = await restarted.stats()
            assert (stats.pending, stats.leased) == (5, 0)
            assert len((await restarted.lease(10)).requests) == 5


async def test_closing_a_worker_gives_its_leases_back(redis_url: str, clock: Clock) -> None:
    async with workers(redis_url, clock, "w1", "w2") as (one, two):
        await one.push([req(f"/{i}") for i in range(5)])
        assert len((await one.lease(3)).requests) == 3
        await one.aclose()
        stats = await two.stats()
        assert (stats.pending, stats.leased) == (5, 0)
        assert len((await two.lease(10)).requests) == 5


async def test_counters_add_up_across_workers(redis_url: str, clock: Clock) -> None:
    async with workers(redis_url, clock, "w1", "w2") as (one, two):

        async def count(store: RedisFrontier) -> None:
            for _ in range(50):
                await store.commit(
                    Batch(checkpoint={f"offset.{store.worker}": 7}, counters={"pages": 1})
                )

        await asyncio.gather(count(one), count(two), count(one), count(two))
        assert await one.checkpoint() == {"offset.w1": 7, "offset.w2": 7, "pages": 200}


async def test_crawls_on_one_redis_are_apart(redis_url: str, clock: Clock) -> None:
    raw = Redis.from_url(redis_url)
    try:
        await raw.set("unrelated", "1")
        async with (
            workers(redis_url, clock, "w", crawl="a") as (a,),
            workers(redis_url, clock, "w", crawl="ab") as (ab,),  # "crawl:a" is a prefix of it
        ):
            assert await a.push([req("/x")]) == [True]
            assert await ab.push([req("/x"), req("/y")]) == [True, True]
            assert len((await a.lease(10)).requests) == 1
            await ab.commit(Batch(checkpoint={"items": 3}))
            assert await a.checkpoint() == {}
            await a.clear()
            rejoined = [b"crawl:a:who", b"crawl:a:workers"]  # after the clear
            assert sorted(await raw.keys("crawl:a:*")) == rejoined
            stats = await ab.stats()
            assert (stats.seen, stats.pending) == (2, 2)
            assert await ab.checkpoint() == {"items": 3}
            assert await raw.get("unrelated") == b"1"
            assert await a.push([req("/x")]) == [True]
    finally:
        await raw.aclose()


async def test_heartbeat_task_keeps_the_lease_on_the_injected_clock(
    redis_url: str, clock: Clock
) -> None:
    raw = Redis.from_url(redis_url)
    try:
        store = RedisFrontier(redis_url, name="t", worker="w", lease_timeout=0.3, clock=clock)
        async with store:
            clock.now += 0.2
            deadline = asyncio.get_running_loop().time() + 5
            while await raw.zscore("crawl:t:workers", "w") != clock.now + 0.3:
                assert asyncio.get_running_loop().time() < deadline, "no heartbeat in 5 s"
                await asyncio.sleep(0.01)  # waiting for a beat every 0.1 s, not ordering steps
        assert await raw.zscore("crawl:t:workers", "w") is None  # left on close
    finally:
        await raw.aclose()


async def test_a_dead_server_is_a_frontier_error_naming_it(
    tmp_path: Path, closed_port: int
) -> None:
    url = f"redis://:s3cret@127.0.0.1:{closed_port}/0"
    store = open_frontier(url, tmp_path, name="c", worker="w")
    assert isinstance(store, RedisFrontier)
    with pytest.raises(
        FrontierError, match=f"redis://:\\*\\*\\*@127.0.0.1:{closed_port}/0"
    ) as info:
        async with store:
            pass
    assert "s3cret" not in str(info.value)


@needs_redis_server
async def test_losing_the_server_mid_crawl_is_a_frontier_error(clock: Clock) -> None:
    with RedisServer() as server:
        store = RedisFrontier(server.url, name="c", worker="w", clock=clock)
        await store.open()
        await store.push([req("/a")])
        server.stop()
        with pytest.raises(FrontierError, match=f"127.0.0.1:{server.port}"):
            await store.lease(1)
        with pytest.raises(FrontierError):
            await store.aclose()  # could not give its leases back, but let go of the client
        await store.aclose()


async def test_redis_keeps_method_headers_and_meta(redis_url: str, clock: Clock) -> None:
    async with workers(redis_url, clock, "w") as (store,):
        sent = Request("http://a.test/form", method="POST", headers={"X-Token": "t"},
                       meta={"depth": 1, "via": ["http://a.test/"], "tries": 2})  # fmt: skip
        await store.push([sent])
        (got,) = (await store.lease(1)).requests
        assert (got.url, got.method, dict(got.headers), got.meta) == (
            sent.url, "POST", {"X-Token": "t"}, sent.meta,
        )  # fmt: skip


# Lineage and meta: the crawl's bookkeeping in fields of their own, the user's data untouched.

LINEAGE = Lineage(
    depth=3, kind="sitemap", referrer="http://a.test/from", hops=2, tries=1, nesting=2
)
USER_META = {"depth": "mine", "tries": [1, 2], "kind": {"x": None}, "category": "books"}


async def test_lineage_and_meta_survive_push_lease_and_release(
    frontier: BaseFrontier, clock: Clock
) -> None:
    sent = Request("http://a.test/l", lineage=LINEAGE, meta=USER_META)
    await frontier.push([sent, req("/plain")])
    leased = {r.url: r for r in (await frontier.lease(10)).requests}
    got = leased["http://a.test/l"]
    assert (got.lineage, got.meta) == (LINEAGE, USER_META)
    assert (leased["http://a.test/plain"].lineage, leased["http://a.test/plain"].meta) == (
        Lineage(), {}
    )  # fmt: skip
    retried = got.replace(lineage=LINEAGE.replace(tries=2), meta={**USER_META, "n": 1})
    await frontier.release(retried, clock.now)
    (again,) = (await frontier.lease(1)).requests
    assert (again.lineage, again.meta) == (retried.lineage, retried.meta)


# The SQLite file's schema version: older files are migrated, newer ones refused.

VERSION_0 = """
CREATE TABLE requests (
    fp BLOB PRIMARY KEY, seq INTEGER NOT NULL, url TEXT NOT NULL, depth INTEGER NOT NULL,
    state INTEGER NOT NULL DEFAULT 0, not_before REAL NOT NULL DEFAULT 0,
    lease_until REAL NOT NULL DEFAULT 0, meta TEXT NOT NULL DEFAULT '{}'
) WITHOUT ROWID;
CREATE INDEX requests_ready ON requests (state, depth, seq);
CREATE TABLE checkpoint (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def write_version_0(path: Path) -> None:
    """A frontier as crawls wrote it before the lineage had columns: in meta."""
    db = sqlite3.connect(path)
    db.executescript(VERSION_0)
    rows = [
        (fingerprint("http://a.test/"), 1, "http://a.test/", 0, 2, json.dumps({"depth": 0})),
        (fingerprint("http://a.test/r"), 2, "http://a.test/r", 1, 0, json.dumps(
            {"depth": 1, "referrer": "http://a.test/", "hops": 1, "tries": 2}
        )),
        (fingerprint("http://a.test/s.xml"), 3, "http://a.test/s.xml", 0, 1, json.dumps(
            {"depth": 0, "kind": "sitemap", "nesting": 1}
        )),
    ]  # fmt: skip
    db.executemany(
        "INSERT INTO requests (fp, seq, url, depth, state, meta) VALUES (?, ?, ?, ?, ?, ?)", rows
    )
    db.execute("INSERT INTO checkpoint VALUES ('offset.items', 1234)")
    db.commit()
    db.close()


async def test_a_frontier_from_before_the_lineage_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "frontier.sqlite3"
    write_version_0(path)
    async with SqliteFrontier(path) as store:
        assert await store.checkpoint() == {"offset.items": 1234}
        stats = await store.stats()
        assert (stats.seen, stats.pending, stats.done) == (3, 2, 1)
        leased = {r.url: r for r in (await store.lease(10)).requests}
    assert leased["http://a.test/r"].lineage == Lineage(
        depth=1, referrer="http://a.test/", hops=1, tries=2
    )
    assert leased["http://a.test/s.xml"].lineage == Lineage(kind="sitemap", nesting=1)
    assert all(r.meta == {} for r in leased.values())
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


async def test_a_frontier_from_before_page_states_is_migrated(tmp_path: Path) -> None:
    """Version 1 (lineage columns, no page states): the pages table is added, rows kept."""
    path = tmp_path / "frontier.sqlite3"
    write_version_0(path)
    async with SqliteFrontier(path):
        pass
    db = sqlite3.connect(path)
    db.execute("DROP TABLE pages")
    db.execute("DROP INDEX requests_seq")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    async with SqliteFrontier(path) as store:
        assert (await store.stats()).seen == 3
        assert await store.due(0) == (0, None)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    assert db.execute("SELECT COUNT(*) FROM pages").fetchone()[0] == 0
    db.close()


async def test_page_states_make_pages_due_and_pend_their_outlinks(tmp_path: Path) -> None:
    from crawler.frontier import PageState, PageUpdate

    page, child, other = (Request(f"http://a.test/{name}", lineage=Lineage(depth=1))
                          for name in ("p", "c", "o"))  # fmt: skip
    async with SqliteFrontier(tmp_path / "f.sqlite3") as store:
        await store.push([page, child, other])
        await store.lease(10)
        state = PageState(200, '"e1"', None, b"d", fetched_at=100, interval=50, due_at=150, round=1)
        await store.commit(Batch(done=[page, child, other], pages=[
            PageUpdate(page, state, outlinks=[child, Request("http://a.test/unknown")]),
            PageUpdate(child, state),
        ]))  # fmt: skip
        assert await store.due(120) == (0, 150)
        assert await store.due(150) == (2, None)
        pending = await store.begin_round(150, every=False, checkpoint={"round": 2}, reset=[])
        assert pending == 3  # the two due pages, and the one without a state
        lease = await store.lease(10)
        assert {r.url for r in lease.requests} == {page.url, child.url, other.url}
        assert lease.known == {page.url: state, child.url: state}
        assert (await store.checkpoint())["round"] == 2
        # An unchanged page (outlinks None) pends its stored outlinks that are due and
        # were fetched in an earlier round: here the child, done but not yet this round.
        await store.commit(Batch(done=[child, other]))
        unchanged = PageState(200, '"e1"', None, b"d", fetched_at=160, interval=100,
                              due_at=260, round=2)  # fmt: skip
        await store.commit(Batch(done=[page], pages=[PageUpdate(page, unchanged)]))
        again = await store.lease(10)
        assert [r.url for r in again.requests] == [child.url]


@pytest.mark.parametrize(
    ("schema", "written_by"),
    [
        (f"PRAGMA user_version = {SCHEMA_VERSION + 1}", f"schema {SCHEMA_VERSION + 1}"),
        ("CREATE TABLE requests (id INTEGER, what TEXT)", "another program"),
    ],
)
async def test_a_frontier_it_cannot_read_is_refused_naming_fresh(
    tmp_path: Path, schema: str, written_by: str
) -> None:
    path = tmp_path / "frontier.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(schema)
    db.close()
    before = path.read_bytes()
    with pytest.raises(FrontierError, match=re.escape(written_by)) as refused:
        async with SqliteFrontier(path):
            pass
    assert "--fresh" in str(refused.value)
    assert str(path) in str(refused.value)
    assert path.read_bytes() == before, "a refused file is left as it was"


# Redis: one process per worker name, and no fresh start under running workers.


async def test_a_worker_name_held_by_a_live_process_is_refused(
    redis_url: str, clock: Clock
) -> None:
    async with workers(redis_url, clock, "w1") as (first,):
        second = RedisFrontier(redis_url, name="test", worker="w1", lease_timeout=60, clock=clock)
        second.process = f"{socket.gethostname()}-elsewhere 4242"  # another machine's process
        with pytest.raises(AlreadyRunning, match=r"worker 'w1' of crawl 'test' is running"):
            async with second:
                pass
        assert await first.heartbeat(), "the refused worker took nothing from the first"


@pytest.fixture
def exited_pid() -> int:
    """The process id of a process that has exited."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(gone.stdout)


async def test_a_worker_killed_on_this_host_is_taken_over_at_once(
    redis_url: str, clock: Clock, exited_pid: int
) -> None:
    dead = RedisFrontier(redis_url, name="test", worker="w1", lease_timeout=60, clock=clock)
    dead.process = f"{socket.gethostname()} {exited_pid}"
    await dead.open()
    await dead.push([req(f"/{i}") for i in range(3)])
    assert len((await dead.lease(3)).requests) == 3
    await crash(dead)  # its heartbeat is alive for another 60 s
    async with workers(redis_url, clock, "w1") as (restarted,):
        assert len((await restarted.lease(10)).requests) == 3


async def test_clearing_a_crawl_with_live_workers_is_refused(redis_url: str, clock: Clock) -> None:
    async with workers(redis_url, clock, "w1", "w2") as (one, _):
        await one.push([req("/a")])
        with pytest.raises(AlreadyRunning, match=r"has workers running \(w2\)"):
            await one.clear()
        assert (await one.stats()).seen == 1
