"""A loopback site that changes between rounds of a crawl, with real validators.

``/`` links to ``/p/0.html`` .. ``/p/<pages-1>.html``; each page links to the next
few. Every page has a version: ``change(n)`` bumps it (new body, new ``ETag`` and
``Last-Modified``), ``delete(n)`` makes it a 404, ``add(parent)`` creates a page
linked from ``parent`` (whose body changes). With ``validators`` the server sends
``ETag`` and ``Last-Modified`` and answers matching conditional requests with 304;
without, it always answers 200. It records every request's validators and the
body bytes it sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from aiohttp import web

from tests.server import LoopbackServer

FILLER = "<p>" + "A page that says the same thing every round, at some length. " * 40 + "</p>"


@dataclass
class Seen:
    path: str
    if_none_match: str | None
    if_modified_since: str | None
    status: int
    sent: int  # body bytes


class RoundsSite(LoopbackServer):
    def __init__(self, pages: int = 200, *, validators: bool = True) -> None:
        super().__init__()
        self.validators = validators
        self.pages = pages
        self.versions = dict.fromkeys(range(pages), 1)
        self.extra_links: dict[int, list[int]] = {}
        self.deleted: set[int] = set()
        self.failing: set[int] = set()  # answer 500
        self.seen: list[Seen] = []

    def change(self, number: int) -> None:
        self.versions[number] += 1

    def delete(self, number: int) -> None:
        self.deleted.add(number)

    def add(self, parent: int) -> int:
        number = max(self.versions) + 1
        self.versions[number] = 1
        self.extra_links.setdefault(parent, []).append(number)
        self.change(parent)
        return number

    def links_of(self, number: int) -> list[int]:
        base = [n for n in range(number + 1, number + 4) if n < self.pages]
        return base + self.extra_links.get(number, [])

    def body(self, number: int) -> str:
        version = self.versions[number]
        links = "".join(f'<a href="/p/{n}.html">page {n}</a> ' for n in self.links_of(number))
        return (f"<!doctype html><html><head><title>Page {number} v{version}</title></head>"
                f"<body><h1>Page {number}</h1><p>version {version}</p>{FILLER}{links}"
                "</body></html>")  # fmt: skip

    def record(self, request: web.Request, status: int, sent: int) -> None:
        with self._lock:
            self.seen.append(Seen(request.path, request.headers.get("If-None-Match"),
                                  request.headers.get("If-Modified-Since"), status, sent))  # fmt: skip

    def take(self) -> list[Seen]:
        """What was requested since the last take."""
        with self._lock:
            seen, self.seen = self.seen, []
        return seen

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/robots.txt":
            return web.Response(text="User-agent: *\nAllow: /\n")
        if path == "/":
            links = "".join(f'<a href="/p/{n}.html">{n}</a> ' for n in range(0, self.pages, 10))
            text = f"<html><body><h1>Home</h1>{links}</body></html>"
            return self._answer(request, text, "home", 1)
        number = path.removeprefix("/p/").removesuffix(".html")
        if not (path.startswith("/p/") and number.isdigit()):
            raise web.HTTPNotFound()
        n = int(number)
        if n in self.failing:
            self.record(request, 500, 0)
            raise web.HTTPInternalServerError()
        if n not in self.versions or n in self.deleted:
            self.record(request, 404, 0)
            raise web.HTTPNotFound()
        return self._answer(request, self.body(n), f"p{n}", self.versions[n])

    def _answer(self, request: web.Request, text: str, key: str, version: int) -> web.Response:
        headers = {}
        if self.validators:
            etag = f'"{key}-v{version}"'
            modified = format_datetime(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=version),
                                       usegmt=True)  # fmt: skip
            headers = {"ETag": etag, "Last-Modified": modified}
            if request.headers.get("If-None-Match") == etag:
                self.record(request, 304, 0)
                return web.Response(status=304, headers=headers)
        body = text.encode()
        self.record(request, 200, len(body))
        return web.Response(body=body, content_type="text/html", headers=headers)


def slow_crawl_config(site: RoundsSite, folder: Path) -> Path:
    """``folder/crawl.toml``: a crawl of ``site`` at 20 requests/s, long enough (about
    six seconds for 120 pages) to be looked at while it runs."""
    config = folder / "crawl.toml"
    config.write_text(
        f'[crawl]\nstart_urls = ["{site.url("/")}"]\nsitemaps = false\n'
        '[rate_limit]\nper_host = "20/s"\n'
        f'[output]\ndir = "{folder / "out"}"\n', encoding="utf-8",
    )  # fmt: skip
    return config
