"""Every request a rendered page makes, answered through the guarded HTTP engine.

The browser itself opens no connection: the document is the one the crawl
fetched, and each subresource, XHR and fetch goes through an engine with the
crawl's address guard, timeouts and ``max_bytes``, at most ``per_host`` at a
time to one ``host:port``. Those requests are the page's, not the crawl's: they
carry the browser's headers, never the crawl's credentials, and they are not
pages (no robots.txt, no rate, nothing written).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from crawler.engines.base import Engine
from crawler.errors import (
    BlockedAddress,
    ConnectError,
    FetchError,
    FetchTimeout,
    InvalidURL,
    TooManyRedirects,
)
from crawler.models import Request, Response, Timeouts, make_headers
from crawler.urls import host_key, is_http_url, origin

if TYPE_CHECKING:
    from playwright.async_api import Route, WebSocketRoute

__all__ = ["CREDENTIALS", "PageRequests", "RequestsOfOnePage", "refuse_websocket", "to_browser"]

log = logging.getLogger(__name__)

CREDENTIALS = frozenset({"authorization", "cookie", "proxy-authorization"})
MAX_REDIRECTS = 10
# Hop-by-hop or describing a body the engine has already decoded.
_NOT_FORWARDED = frozenset({"content-encoding", "content-length", "transfer-encoding",
                            "connection", "keep-alive"})  # fmt: skip


def to_browser(response: Response) -> dict[str, str]:
    """The headers to hand the browser with a decoded body (repeated ones joined,
    ``Set-Cookie`` by newlines as Playwright expects)."""
    headers: dict[str, str] = {}
    for name, value in response.headers.items():
        key = name.lower()
        if key in _NOT_FORWARDED:
            continue
        joiner = "\n" if key == "set-cookie" else ", "
        headers[key] = f"{headers[key]}{joiner}{value}" if key in headers else value
    return headers


async def refuse_websocket(socket: WebSocketRoute) -> None:
    """WebSockets are not HTTP the guard can see: none is opened."""
    with contextlib.suppress(Exception):
        await socket.close(code=1008, reason="the crawler opens no WebSocket")


class PageRequests:
    """The engine and per-host slots every rendered page's requests share."""

    def __init__(self, engine: Engine, *, per_host: int) -> None:
        self._engine = engine
        self._per_host = per_host
        self._hosts: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}

    async def fetch(self, request: Request) -> Response:
        """``request`` sent, its redirects followed, each hop in its host's slot."""
        for _ in range(MAX_REDIRECTS + 1):
            async with self._slot(request.url):
                response = await self._engine.send(request)
            if not response.is_redirect:
                return response
            target = urljoin(response.url, response.headers["location"].strip())
            if not is_http_url(target):
                raise InvalidURL("redirect to an unusable URL", request=request)
            see_other = response.status == 303 or (
                response.status in (301, 302) and request.method == "POST"
            )
            url = target.partition("#")[0]
            if see_other:
                request = request.replace(url=url, method="GET", body=None)
            else:
                request = request.replace(url=url)
        raise TooManyRedirects(f"more than {MAX_REDIRECTS} redirects", request=request)

    @contextlib.asynccontextmanager
    async def _slot(self, url: str) -> AsyncIterator[None]:
        key = host_key(url)
        slots, users = self._hosts.setdefault(key, (asyncio.Semaphore(self._per_host), [0]))
        users[0] += 1
        try:
            async with slots:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._hosts[key]  # kept only while in use: no growth with hosts seen


class RequestsOfOnePage:
    """The route handler of one page: the document from the crawl's own fetch, every
    other request through ``PageRequests``, each within the page's deadline, with the
    browser's headers, and to the document's origin ``headers`` too (the crawl's,
    without credentials: an ``X-Api-Key`` is not for every host a page loads from)."""

    def __init__(self, shared: PageRequests, document: Response, *, block: frozenset[str],
                 headers: dict[str, str], remaining: Callable[[], float]) -> None:  # fmt: skip
        self._shared, self._document, self._block = shared, document, block
        self._headers = list(headers.items())  # the crawl's, to the document's origin only
        self._origin = origin(document.url)
        self._stopped = False
        self._remaining = remaining
        self._served = False
        self._fetches: set[asyncio.Future[Response]] = set()

    async def route(self, route: Route) -> None:
        try:
            await self._answer(route)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a closed page, a status Chromium refuses, ...
            log.debug("a rendered page's request ended: %r", exc)
            # Unanswered, the request would hang the page (and its handler) for good.
            with contextlib.suppress(Exception):
                await route.abort("failed")

    async def stop(self) -> None:
        """Cut short the page's requests still in flight, and refuse any new one: the
        render is over."""
        self._stopped = True
        fetches = list(self._fetches)
        for fetch in fetches:
            fetch.cancel()
        await asyncio.gather(*fetches, return_exceptions=True)

    async def _answer(self, route: Route) -> None:
        asked = route.request
        if self._stopped:
            await route.abort("aborted")
            return
        if asked.is_navigation_request() and asked.frame.parent_frame is None:
            if self._served:  # the page navigating away: the rendered DOM stays this one's
                await route.abort("blockedbyclient")
                return
            self._served = True
            document = self._document
            headers = to_browser(document)
            # Decoded as every engine decodes it (header, BOM, <meta>, detection), not as
            # a browser guesses an undeclared page (windows-1252), and handed over in
            # UTF-8: Chromium knows the WHATWG labels, not Python's codec names.
            headers["content-type"] = f"{document.content_type}; charset=utf-8"
            body = document.text.encode("utf-8", "replace")
            await route.fulfill(status=document.status, headers=headers, body=body)
            return
        if asked.resource_type in self._block or not is_http_url(asked.url):
            await route.abort("blockedbyclient")
            return
        own = [(name, value) for name, value in asked.headers.items()
               if name.lower() not in CREDENTIALS]  # fmt: skip
        if origin(asked.url) == self._origin:
            names = {name.lower() for name, _ in own}  # the page's own win
            own += [(name, value) for name, value in self._headers if name.lower() not in names]
        sent = make_headers(own)
        try:
            request = Request(asked.url.partition("#")[0], method=asked.method, headers=sent,
                              body=asked.post_data_buffer,
                              timeouts=Timeouts(total=max(self._remaining(), 0.001)),
                              max_bytes=self._document.request.max_bytes)  # fmt: skip
        except ValueError:
            await route.abort("failed")
            return
        fetch = asyncio.ensure_future(self._shared.fetch(request))
        self._fetches.add(fetch)
        try:
            response = await fetch
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not fetch.cancelled() or (task is not None and task.cancelling()):
                raise
            await route.abort("aborted")
            return
        except FetchError as exc:
            await route.abort(_abort_code(exc))
            return
        finally:
            self._fetches.discard(fetch)
            del fetch
        await route.fulfill(status=response.status, headers=to_browser(response),
                            body=response.body)  # fmt: skip


def _abort_code(exc: FetchError) -> str:
    if isinstance(exc, BlockedAddress):
        return "blockedbyclient"
    if isinstance(exc, FetchTimeout):
        return "timedout"
    if isinstance(exc, ConnectError):
        return "connectionrefused"
    return "failed"
