"""Watch mode: run the checks on an interval, never two runs at once, and keep
a bounded history for the status page and ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Sequence

from crawler.health.alerts import Alerter
from crawler.health.history import History
from crawler.health.maintenance import Window, in_maintenance
from crawler.health.probe import DEFAULT_CONCURRENCY, check_targets
from crawler.health.result import HealthResult
from crawler.health.store import HistoryStore
from crawler.health.targets import Target

__all__ = ["watch"]


async def watch(
    targets: Sequence[Target],
    *,
    interval: float,
    history: History,
    stop: asyncio.Event,
    engine: str = "aiohttp",
    concurrency: int = DEFAULT_CONCURRENCY,
    on_run: Callable[[list[HealthResult]], None] = lambda results: None,
    alerter: Alerter | None = None,
    maintenance: Sequence[Window] = (),
    clock: Callable[[], float] = time.time,
    store: HistoryStore | None = None,
) -> int:
    """Check every ``interval`` seconds until ``stop`` is set; returns the number
    of runs. A run that takes longer than the interval delays the next one
    instead of overlapping it; ``stop`` ends the wait at once and a run in
    progress is abandoned. After each run, ``alerter`` hears of the changes of
    state and may remind of targets still down, except those inside a
    ``maintenance`` window; ``store`` keeps each run for a restart and the reports."""
    loop = asyncio.get_running_loop()
    runs = 0
    while not stop.is_set():
        started = loop.time()
        run = asyncio.ensure_future(check_targets(targets, engine=engine, concurrency=concurrency))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({run, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (run, stopping):
                task.cancel()
            await asyncio.gather(run, stopping, return_exceptions=True)
        if run.cancelled():
            break
        results = run.result()
        now = clock()
        quiet = functools.partial(in_maintenance, maintenance, now=now)
        changes = history.record(results, quiet)
        if alerter is not None:  # before the store, which a restart resumes from
            alerter.changed(changes, now)
            alerter.remind(now, quiet)
        if store is not None:
            store.record(results, changes, history, quiet=quiet, now=now)
        runs += 1
        on_run(results)
        remaining = started + interval - loop.time()
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), remaining)
    return runs
