"""Serving figures over HTTP while work runs: ``WebServer`` (an aiohttp app on
HOST:PORT, with a clear error when that cannot be listened on) and ``MetricsServer``,
a running crawl's ``/metrics`` and ``/status.json`` (``crawl CONFIG --serve``)."""

from __future__ import annotations

import os

from aiohttp import web

from crawler.crawl.metrics import CrawlMetrics
from crawler.models import AsyncResource

__all__ = ["METRICS_CONTENT_TYPE", "MetricsServer", "WebServer", "address_text"]

# What generate_latest writes: Prometheus's text format 0.0.4.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class WebServer(AsyncResource):
    """``async with`` serves ``routes()``; ``port=0`` picks a free port, read back
    from ``.port`` and ``.url`` once open. A port that cannot be listened on is an
    ``OSError`` naming the address and the bare reason."""

    def __init__(self, *, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._requested_port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{address_text(self.host, self.port)}/"

    def routes(self, app: web.Application) -> None:
        """Add the server's routes to ``app``."""

    async def open(self) -> None:
        if self._runner is not None:
            return
        app = web.Application()
        self.routes(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self._requested_port).start()
        except OSError as error:
            await runner.cleanup()
            # asyncio buries the reason in a long bind message; resolver errors (negative
            # errno) carry only theirs. The address rides as the filename, so str() names
            # it and strerror stays the bare reason.
            errno = error.errno or 0
            reason = os.strerror(errno) if errno > 0 else error.strerror
            raise OSError(errno, reason, address_text(self.host, self._requested_port)) from error
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def aclose(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


class MetricsServer(WebServer):
    """A running crawl's figures: ``/metrics`` (Prometheus) and ``/status.json``."""

    def __init__(self, metrics: CrawlMetrics, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self._metrics = metrics

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/metrics", self._prometheus)
        app.router.add_get("/status.json", self._status)

    async def _prometheus(self, request: web.Request) -> web.Response:
        body = (await self._metrics.render()).encode()
        return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(await self._metrics.status())


def address_text(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
