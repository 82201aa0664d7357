"""The ``browser`` engine: the document fetched over HTTP, then rendered in headless
Chromium when it is HTML (always, or only when it looks like a shell)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from crawler.engines.base import EngineOptions
from crawler.engines.browser._chromium import Chromium
from crawler.engines.browser._page_requests import (
    CREDENTIALS,
    PageRequests,
    RequestsOfOnePage,
    refuse_websocket,
)
from crawler.engines.browser.options import BrowserOptions
from crawler.engines.browser.shell import looks_like_shell
from crawler.errors import BodyTooLarge, ConfigError, FetchTimeout, ProtocolError
from crawler.models import (
    AsyncResource,
    Request,
    Response,
    Timeouts,
    make_headers,
    outside_deadline,
)

if TYPE_CHECKING:
    from playwright.async_api import Page

__all__ = ["BrowserEngine"]

_HTML = ("text/html", "application/xhtml+xml")
_DEFAULT_TIMEOUTS = Timeouts()
_NOT_FOR_PAGE = CREDENTIALS | {"user-agent", "host", "content-type", "content-length"}


class BrowserEngine(AsyncResource):
    """One exchange, as every engine: the document comes from the HTTP engine ``http``
    (a 3xx, an error status, a HEAD or a PDF come back as they are); a 200 HTML
    document that ``render`` selects is rendered, and the response carries the DOM as
    UTF-8 with the document's status and headers, the document in ``rendered_from``.

    The request's ``total`` covers the fetch and the render; waiting for one of the
    ``browser.pages`` pages does not count against it. A page whose scripts never
    settle is ``FetchTimeout``; a browser that crashes is ``ProtocolError`` for its
    pages, and the next page starts a new one.
    """

    def __init__(
        self,
        options: EngineOptions,
        *,
        browser: BrowserOptions | None = None,
        render: str = "always",
        http: str = "aiohttp",
        per_host_concurrency: int = 8,
    ) -> None:
        from crawler.engines import create_engine

        if render not in ("always", "auto"):
            raise ValueError(f"render must be 'always' or 'auto', got {render!r}")
        if http == "browser":
            raise ValueError("the browser engine fetches documents with an HTTP engine")
        self.options = browser or BrowserOptions()
        self.render = render
        self._documents = create_engine(http, options)
        # The page's own requests never carry the crawl's cookies.
        self._resources = create_engine(http, dataclasses.replace(options, cookies={}))
        self._requests = PageRequests(self._resources, per_host=per_host_concurrency)
        self._chromium = Chromium(self.options)
        self._pages = asyncio.Semaphore(self.options.pages)
        self._block = frozenset(self.options.block)

    @property
    def launches(self) -> int:
        """Browsers started since the engine opened (a restart or a crash adds one)."""
        return self._chromium.launches

    async def open(self) -> None:
        await self._chromium.open()
        try:
            await self._documents.__aenter__()
            await self._resources.__aenter__()
        except BaseException:
            await self.aclose()
            raise
        self._pages = asyncio.Semaphore(self.options.pages)

    async def aclose(self) -> None:
        try:
            await self._chromium.aclose()
        finally:
            await self._resources.aclose()
            await self._documents.aclose()

    async def send(self, request: Request) -> Response:
        started = time.monotonic()
        document = await self._documents.send(request)
        if not await self._renders(document):
            return document
        waited = time.monotonic()
        async with outside_deadline():
            await self._pages.acquire()
        try:
            total = (request.timeouts or _DEFAULT_TIMEOUTS).total
            deadline = time.monotonic() + total - (waited - started)
            return await self._render(request, document, deadline, started)
        finally:
            self._pages.release()

    async def _renders(self, document: Response) -> bool:
        if document.request.method != "GET" or document.status != 200:
            return False
        if document.content_type not in _HTML:
            return False
        if self.render == "always":
            return True
        return await asyncio.to_thread(looks_like_shell, document.body, self.options)

    async def _render(
        self, request: Request, document: Response, deadline: float, started: float
    ) -> Response:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        def remaining() -> float:
            return deadline - time.monotonic()

        def ms() -> float:
            left = remaining()
            if left <= 0:
                raise FetchTimeout(_too_long(request), phase="total", request=request)
            return left * 1000

        page_requests = RequestsOfOnePage(self._requests, document, block=self._block,
                                          headers=page_headers(request),
                                          remaining=remaining)  # fmt: skip
        try:
            async with self._chromium.page(request.headers.get("user-agent")) as page:
                html = await self._rendered_html(page, page_requests, document, ms)
        except PlaywrightTimeout as exc:
            raise FetchTimeout(_too_long(request), phase="total", request=request) from exc
        except (PlaywrightError, ConfigError) as exc:  # a crash, a browser that won't start
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ProtocolError(f"the browser failed to render the page: {first}",
                                request=request) from exc  # fmt: skip
        body = html.encode("utf-8")
        if len(body) > request.max_bytes:
            raise BodyTooLarge(f"the rendered page is over max_bytes={request.max_bytes}",
                               request=request)  # fmt: skip
        # The document's headers, as every engine gives them, but for the body's type.
        kept = [item for item in document.headers.items() if item[0].lower() != "content-type"]
        headers = make_headers([*kept, ("Content-Type", "text/html; charset=utf-8")])
        return Response(request, document.status, headers, body, reason=document.reason,
                        url=document.url, elapsed=time.monotonic() - started,
                        rendered_from=document)  # fmt: skip

    async def _rendered_html(
        self,
        page: Page,
        page_requests: RequestsOfOnePage,
        document: Response,
        ms: Callable[[], float],
    ) -> str:
        try:
            await page.route("**/*", page_requests.route)
            await page.route_web_socket("**/*", refuse_websocket)
            await page.goto(document.url, wait_until=self.options.wait_until,  # type: ignore[arg-type]
                            timeout=ms())  # fmt: skip
            if self.options.wait_for:
                await page.wait_for_selector(self.options.wait_for, state="attached",
                                             timeout=ms())  # fmt: skip
            ms()  # settled after the deadline: as late as not at all
            return await page.content()
        finally:
            await page_requests.stop()
            await page.unroute_all(behavior="ignoreErrors")


def page_headers(request: Request) -> dict[str, str]:
    """The headers of the document's request that the page's requests carry too (an
    ``Accept-Language``, say): not credentials, validators or the body's."""
    kept = {}
    for name, value in request.headers.items():
        key = name.lower()
        if key not in _NOT_FOR_PAGE and not key.startswith("if-"):
            kept[name] = value
    return kept


def _too_long(request: Request) -> str:
    total = (request.timeouts or _DEFAULT_TIMEOUTS).total
    return f"total timeout after {total:g}s (rendering the page)"
