"""The ``browser`` engine: the document fetched over HTTP, then rendered in headless
Chromium when it is HTML (always, or only when it looks like a shell)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from crawler.engines.base import EngineOptions
from crawler.engines.browser._chromium import BrowserClosed, Chromium, Claim
from crawler.engines.browser._page_requests import (
    CREDENTIALS,
    PageRequests,
    RequestsOfOnePage,
    refuse_websocket,
)
from crawler.engines.browser.options import BrowserOptions
from crawler.engines.browser.shell import looks_like_shell
from crawler.errors import BodyTooLarge, FetchError, FetchTimeout, ProtocolError
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
        spent = time.monotonic() - started
        # Queues, not work: a page of `pages`, the browser's (re)start, a context.
        async with outside_deadline():
            await self._pages.acquire()
            try:
                claim = await self._claim(request)
            except BaseException:
                self._pages.release()
                raise
        try:
            total = (request.timeouts or _DEFAULT_TIMEOUTS).total
            deadline = time.monotonic() + total - spent
            html = await self._render(request, document, claim, deadline)
        finally:
            await self._chromium.release(claim)
            self._pages.release()
        # Lone surrogates a script put in the DOM have no UTF-8: replaced, not fatal.
        body = html.encode("utf-8", "replace")
        if len(body) > request.max_bytes:
            raise BodyTooLarge(f"the rendered page is over max_bytes={request.max_bytes}",
                               request=request, received=len(body))  # fmt: skip
        # The document's headers, as every engine gives them, but for the body's type.
        kept = [item for item in document.headers.items() if item[0].lower() != "content-type"]
        headers = make_headers([*kept, ("Content-Type", "text/html; charset=utf-8")])
        return Response(request, document.status, headers, body, reason=document.reason,
                        url=document.url, elapsed=time.monotonic() - started,
                        rendered_from=document)  # fmt: skip

    async def _renders(self, document: Response) -> bool:
        if document.request.method != "GET" or document.status != 200:
            return False
        if document.content_type not in _HTML:
            return False
        if self.render == "always":
            return True
        return await asyncio.to_thread(looks_like_shell, document.body, self.options)

    async def _claim(self, request: Request) -> Claim:
        try:
            return await self._chromium.claim(request.headers.get("user-agent"))
        except BrowserClosed as exc:
            raise FetchError("the engine closed", request=request) from exc
        except Exception as exc:  # Playwright's errors, a browser that won't start again
            raise ProtocolError(f"the browser could not start: {_first_line(exc)}",
                                request=request) from exc  # fmt: skip

    async def _render(
        self, request: Request, document: Response, claim: Claim, deadline: float
    ) -> str:
        """The DOM, once the page settled, within ``deadline`` whatever the page does
        (a script spinning in a loop holds ``content()`` as long as it spins)."""
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        def ms() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            return left * 1000

        page_requests = RequestsOfOnePage(
            self._requests, document, block=self._block, headers=page_headers(request),
            remaining=lambda: deadline - time.monotonic(),
        )  # fmt: skip
        try:
            async with asyncio.timeout(max(deadline - time.monotonic(), 0)):
                page = await claim.context.new_page()
                try:
                    return await self._rendered_html(page, page_requests, document, ms)
                finally:
                    with contextlib.suppress(PlaywrightError):  # a crashed browser
                        await page.close()
        except (TimeoutError, PlaywrightTimeout) as exc:
            raise FetchTimeout(_too_long(request), phase="total", request=request) from exc
        except PlaywrightError as exc:  # a renderer or the browser crashed
            raise ProtocolError(f"the browser failed to render the page: {_first_line(exc)}",
                                request=request) from exc  # fmt: skip

    async def _rendered_html(
        self,
        page: Page,
        page_requests: RequestsOfOnePage,
        document: Response,
        ms: Callable[[], float],
    ) -> str:
        from playwright.async_api import Error as PlaywrightError

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
            # No new requests first, then those in flight cut short.
            with contextlib.suppress(PlaywrightError):
                await page.unroute_all(behavior="ignoreErrors")
            await page_requests.stop()


def page_headers(request: Request) -> dict[str, str]:
    """The headers of the document's request that the page's requests carry too (an
    ``Accept-Language``, say): not credentials, validators or the body's."""
    kept = {}
    for name, value in request.headers.items():
        key = name.lower()
        if key not in _NOT_FOR_PAGE and not key.startswith("if-"):
            kept[name] = value
    return kept


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _too_long(request: Request) -> str:
    total = (request.timeouts or _DEFAULT_TIMEOUTS).total
    return f"total timeout after {total:g}s (rendering the page)"
