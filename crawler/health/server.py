"""The HTTP face of watch mode: the status page, its JSON, Prometheus metrics and a
liveness probe, served from the event loop that runs the checks.

Every request reads the History as it is at that moment, so the server needs no
locks or copies: the watch loop mutates it between requests in the same loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from crawler.crawl.serve import METRICS_CONTENT_TYPE, WebServer
from crawler.health.history import History
from crawler.health.page import CONTENT_SECURITY_POLICY, render_page, status_json
from crawler.health.store import HistoryStore
from crawler.health.uptime import Uptime

__all__ = ["METRICS_CONTENT_TYPE", "StatusServer"]


class StatusServer(WebServer):
    """``async with StatusServer(history, metrics=render):``; ``port=0`` picks a free
    port, read back from ``.port`` and ``.url`` once open."""

    def __init__(
        self,
        history: History,
        *,
        host: str = "127.0.0.1",
        port: int = 9108,
        metrics: Callable[[History], str],
        title: str = "crawl check",
        interval: float | None = None,
        store: HistoryStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(host=host, port=port)
        self._history = history
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._title = title
        self._interval = interval

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/", self._page)
        app.router.add_get("/status.json", self._status)
        app.router.add_get("/metrics", self._prometheus)
        app.router.add_get("/healthz", self._healthz)

    async def _page(self, request: web.Request) -> web.Response:
        page = render_page(self._history, title=self._title, interval=self._interval,
                           now=self._clock(), uptime=self._uptime())  # fmt: skip
        return web.Response(
            text=page,
            content_type="text/html",
            charset="utf-8",
            headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY},
        )

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(status_json(
            self._history, interval=self._interval, now=self._clock(), uptime=self._uptime()
        ))  # fmt: skip

    def _uptime(self) -> Uptime | None:
        """Read on the loop that writes, between runs: each query sees whole runs."""
        return None if self._store is None else Uptime(self._store.db)

    async def _prometheus(self, request: web.Request) -> web.Response:
        body = self._metrics(self._history).encode()
        return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")
