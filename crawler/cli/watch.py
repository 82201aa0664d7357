"""Watch mode from the command line: check on an interval until SIGINT or SIGTERM,
print each run, and serve the status page and ``/metrics`` while it lasts."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Sequence

from crawler.health.alerts import Alert, Alerter
from crawler.health.history import History
from crawler.health.maintenance import Window
from crawler.health.report import render_json, render_prometheus
from crawler.health.result import HealthResult
from crawler.health.server import StatusServer
from crawler.health.store import HistoryStore
from crawler.health.targets import Target
from crawler.health.watch import watch

__all__ = ["Address", "ServeError", "monitor"]

Address = tuple[str, int]


class ServeError(Exception):
    """The status page cannot listen on the address it was given."""


async def monitor(
    targets: Sequence[Target],
    *,
    interval: float,
    serve: Address | None,
    title: str,
    history: int,
    json: bool,
    engine: str,
    concurrency: int,
    alerts: Sequence[Alert] = (),
    maintenance: Sequence[Window] = (),
    store: HistoryStore | None = None,
) -> int:
    """Returns 0 once stopped by a signal or a closed stdout; raises ``ServeError``
    when ``serve`` cannot be listened on. ``store``, open, continues its history."""
    kept = History(history)
    for target in targets:
        kept.expect(target.name, target.url, failures=target.failures,
                    successes=target.successes)  # fmt: skip
    alerter = Alerter(alerts)
    if store is not None:
        store.restore(kept)
        alerter.resume(kept.targets(), time.time())
    stop = asyncio.Event()
    show = _print_json if json else _print_summary

    def printer(results: list[HealthResult]) -> None:
        try:
            show(results)
        except BrokenPipeError:  # `crawl check --watch ... | head`: the reader is gone
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
            stop.set()

    server = None
    if serve is not None:
        host, port = serve
        server = StatusServer(kept, host=host, port=port, title=title, interval=interval,
                              store=store,
                              metrics=lambda history: render_prometheus(
                                  history, notifications=alerter.counts()))  # fmt: skip
        try:
            await server.open()
        except OSError as exc:
            raise ServeError(f"--serve {host}:{port}: {exc.strerror or exc}") from exc
        print(f"crawl: serving the status page on {server.url}", file=sys.stderr, flush=True)
        alerter.page = server.url
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await watch(targets, interval=interval, history=kept, stop=stop, on_run=printer,
                    engine=engine, concurrency=concurrency, alerter=alerter,
                    maintenance=maintenance, store=store)  # fmt: skip
    finally:
        await alerter.aclose()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if server is not None:
            await server.aclose()
    return 0


def _print_summary(results: list[HealthResult]) -> None:
    down = [result for result in results if not result.ok]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    line = f"{stamp} {len(results) - len(down)} up, {len(down)} down"
    details = "".join(f"\n  DOWN {result.name}: {result.reason}" for result in down)
    print(line + details, flush=True)


def _print_json(results: list[HealthResult]) -> None:
    render_json(results, sys.stdout)
    sys.stdout.flush()
