"""Test doubles and synchronisation shared by the middleware suites."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

import crawler.middleware.chain as chain_module
from crawler.middleware import RateLimit, Retry
from tests.guards import WAIT


class FakeTime:
    """A clock that only moves when something sleeps on it, and a sleep that
    returns at once, noting what it was asked for. ``still``: the clock never
    moves, so that requests sleeping side by side each see the same now."""

    def __init__(self, now: float = 1_000.0, *, still: bool = False) -> None:
        self.now = now
        self.still = still
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if not self.still:
            self.now += seconds


def fetcher_time(monkeypatch: pytest.MonkeyPatch, fake: FakeTime) -> None:
    """The Retry and RateLimit every Fetcher builds (in ``crawler.middleware.chain``)
    read ``fake`` and sleep on it: the Fetcher has no way to pass a clock in."""
    clock, sleep = fake.clock, fake.sleep
    limits = functools.partial(RateLimit, clock=clock, wall_clock=clock, sleep=sleep)
    monkeypatch.setattr(chain_module, "RateLimit", limits)
    monkeypatch.setattr(chain_module, "Retry", functools.partial(Retry, clock=clock, sleep=sleep))


T = TypeVar("T")


async def start_waiting(*calls: Callable[[], Awaitable[T]]) -> list[asyncio.Task[T]]:
    """A task per call, returned once every task has run into its call up to its
    first wait: each task's first step counts itself in and goes straight on into
    the call, and the event set by the last one wakes this only after that step."""
    pending = len(calls)
    entered = asyncio.Event()

    async def enter(call: Callable[[], Awaitable[T]]) -> T:
        nonlocal pending
        pending -= 1
        if pending == 0:
            entered.set()
        return await call()

    tasks = [asyncio.create_task(enter(call)) for call in calls]
    async with asyncio.timeout(WAIT):
        await entered.wait()
    return tasks
