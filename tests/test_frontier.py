"""One conformance suite for every frontier backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from crawler.frontier import Batch, MemoryFrontier, SqliteFrontier
from crawler.frontier.base import BaseFrontier
from crawler.models import Request


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sqlite"])
async def frontier(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[BaseFrontier]:
    store: BaseFrontier = (
        MemoryFrontier(clock=clock) if request.param == "memory"
        else SqliteFrontier(tmp_path / "f.sqlite3", clock=clock)
    )  # fmt: skip
    async with store:
        yield store


def req(path: str, depth: int = 0) -> Request:
    return Request(f"http://a.test{path}", meta={"depth": depth})


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
    assert lease.requests[0].meta == {"depth": 0}


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
    await frontier.release(request.replace(meta={"depth": 0, "tries": 1}), clock.now + 30)
    waiting = await frontier.lease(1)
    assert (waiting.requests, waiting.finished, waiting.next_at) == ([], False, clock.now + 30)
    clock.now += 30
    (again,) = (await frontier.lease(1)).requests
    assert again.meta["tries"] == 1


async def test_expired_lease_is_handed_out_again(frontier: BaseFrontier, clock: Clock) -> None:
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
    await frontier.complete([req("/a"), req("/never-pushed")])
    assert (await frontier.stats()).done == 0
    assert len((await frontier.lease(5)).requests) == 1


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
