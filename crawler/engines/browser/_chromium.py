"""One headless Chromium through Playwright: found, started, fenced off from the
network, started afresh after a crash or every ``restart_every`` pages.

The browser makes no connection of its own: every request of a page is routed
to the engine (see ``_page_requests.py``). As a second fence, Chromium's proxy is
a loopback port this process holds bound and never listens on, loopback
included (``<-loopback>``), so anything that escaped interception is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crawler.engines.browser.options import BrowserOptions
from crawler.errors import ConfigError

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Playwright, Route

__all__ = ["BrowserClosed", "Chromium", "Claim", "find_executable"]

_NAMES = ("chromium", "chromium-browser")
_INSTALL = "install Debian's chromium package (apt-get install chromium)"


def find_executable(configured: str) -> str:
    """The Chromium to start: ``configured`` (a path or a name on PATH), else the system's."""
    if configured:
        found = shutil.which(configured) or (configured if os.access(configured, os.X_OK) else None)
        if found is None:
            raise ConfigError("browser.executable", configured, "a Chromium or Chrome binary",
                              problem=f"{configured!r} is not an executable file; {_INSTALL} "
                                      "or name one that is")  # fmt: skip
        return found
    for name in _NAMES:
        if found := shutil.which(name):
            return found
    raise ConfigError("fetch.engine", "browser", "a browser", problem=(
        f"the browser engine needs Chromium and there is none on PATH: {_INSTALL}, "
        "or set browser.executable"))  # fmt: skip


async def _start_playwright() -> Playwright:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        raise ConfigError("fetch.engine", "browser", "Playwright", problem=(
            "the browser engine needs Playwright: pip install 'crawlwell[browser]'"
        )) from None  # fmt: skip
    return await async_playwright().start()


_CONTEXTS = 8  # user agents one browser serves before it is started afresh


@dataclass(slots=True, eq=False)
class _Instance:
    browser: Browser
    contexts: dict[str | None, BrowserContext] = field(default_factory=dict)  # by user agent
    open: int = 0  # pages open now
    started: int = 0  # pages opened in all
    retired: bool = False  # takes no new pages; closed when its last page closes
    closed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True, slots=True)
class Claim:
    """One page's share of a browser: its context, and the instance to release."""

    instance: _Instance
    context: BrowserContext


class BrowserClosed(Exception):
    """The engine closed while a page waited for its browser."""


class Chromium:
    """Pages of one browser context per user agent, as a visitor's browser has one
    session: a context per page would cost a renderer process each, three times the
    time of a page. A new browser (every ``restart_every`` pages) starts a new session,
    once the old one's pages are done: two browsers at once would double the peak."""

    def __init__(self, options: BrowserOptions) -> None:
        self._options = options
        self._playwright: Playwright | None = None
        self._current: _Instance | None = None
        self._launching = asyncio.Lock()
        self._refuser: socket.socket | None = None
        self.launches = 0  # browsers started, for the tests

    async def open(self) -> None:
        """Start Playwright and the browser now, so a missing one fails at start."""
        executable = find_executable(self._options.executable)
        self._launching = asyncio.Lock()
        self._refuser = socket.socket()
        self._refuser.bind(("127.0.0.1", 0))  # bound, never listening: connects are refused
        try:
            self._playwright = await _start_playwright()
            await self._launch(executable)
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        current, self._current = self._current, None
        if current is not None:
            await self._close(current)
        playwright, self._playwright = self._playwright, None
        if playwright is not None:
            with contextlib.suppress(Exception):
                await playwright.stop()
        if self._refuser is not None:
            self._refuser.close()
            self._refuser = None

    async def claim(self, user_agent: str | None) -> Claim:
        """The browser and context for one more page, counted as open until ``release``;
        the browser is started again first when it died or has had its
        ``restart_every`` pages (after the old one's pages are done)."""
        async with self._launching:
            if self._playwright is None:
                raise BrowserClosed("the browser engine is closed")
            return await self._claim(user_agent)

    async def release(self, claim: Claim) -> None:
        instance = claim.instance
        instance.open -= 1
        if instance.retired and instance.open == 0:
            await self._close(instance)

    async def _claim(self, user_agent: str | None) -> Claim:
        """Under ``self._launching``."""
        current = self._current
        if current is not None and user_agent not in current.contexts:
            current.retired |= len(current.contexts) >= _CONTEXTS
        if current is not None and (current.retired or not current.browser.is_connected()):
            current.retired = True
            if current.open and current.browser.is_connected():
                await current.closed.wait()
            elif not current.open:
                await self._close(current)
            self._current = None
        if self._current is None:
            await self._launch(find_executable(self._options.executable))
        instance = self._current
        assert instance is not None
        context = instance.contexts.get(user_agent)
        if context is None:
            context = await instance.browser.new_context(
                user_agent=user_agent, service_workers="block", accept_downloads=False
            )
            # Pages answer their own requests (page.route); anything no page claims,
            # a worker's say, is refused here. No pop-ups: pages the engine never sees.
            await context.route("**/*", _refuse)
            await context.add_init_script("window.open = () => null;")
            instance.contexts[user_agent] = context
        instance.open += 1
        instance.started += 1
        instance.retired |= instance.started >= self._options.restart_every
        return Claim(instance, context)

    async def _launch(self, executable: str) -> None:
        if self._playwright is None or self._refuser is None:
            raise BrowserClosed("the browser engine is not open: use `async with`")
        port = self._refuser.getsockname()[1]
        try:
            browser = await self._playwright.chromium.launch(
                executable_path=executable, headless=True, args=[
                    f"--proxy-server=http://127.0.0.1:{port}",
                    "--proxy-bypass-list=<-loopback>",
                    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
                    "--dns-prefetch-disable",
                    "--no-pings",
                ],
            )  # fmt: skip
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError("browser.executable", executable, "a Chromium that starts",
                              problem=f"{executable} did not start: {first}") from exc  # fmt: skip
        self.launches += 1
        self._current = _Instance(browser)

    async def _close(self, instance: _Instance) -> None:
        if self._current is instance:
            self._current = None
        instance.contexts.clear()
        try:
            with contextlib.suppress(Exception):  # already gone after a crash
                await instance.browser.close()
        finally:
            instance.closed.set()


async def _refuse(route: Route) -> None:
    with contextlib.suppress(Exception):  # the page or the browser is gone
        await route.abort("blockedbyclient")
