"""A generated site for crawl tests: N linked product pages with every kind of
link a crawler must get right, and the exact set a correct crawl must visit.

- ``/p/{i}.html``: page i links to its children 2i+1 and 2i+2 (so every page is
  reachable), plus a few other pages, written relative, root-relative, absolute
  with a fragment, and on another host name (``localhost``: offsite);
- ``/q?a={i}&b=2`` and ``/q?b=2&a={i}``: one page under two query orders;
- ``/private/{i}.html``: linked, but disallowed by robots.txt;
- a product block (name, SKU, price) on every page, for the ``shop`` site.
"""

from __future__ import annotations

import gzip
import random

from aiohttp import web

from crawler.urls import canonicalize
from tests.server import LoopbackServer

ROBOTS = "User-agent: *\nDisallow: /private/\n"
NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
SITEMAPS = ("/sitemap.xml", "/sitemap_index.xml", "/sitemap-pages.xml.gz")


class GeneratedSite(LoopbackServer):
    def __init__(self, pages: int = 2000, *, seed: int = 7, sitemaps: bool = False) -> None:
        super().__init__()
        self.pages = pages
        self.seed = seed
        self.sitemaps = sitemaps  # serve sitemaps listing pages no link reaches

    def links_of(self, i: int) -> list[str]:
        rng = random.Random(self.seed * 1_000_003 + i)
        n = self.pages
        children = [c for c in (2 * i + 1, 2 * i + 2) if c < n]
        others = [rng.randrange(n) for _ in range(4)]
        links = [f"{c}.html" for c in children]  # relative to /p/
        links += [f"/p/{o}.html" for o in others[:2]]
        links += [f"http://127.0.0.1:{self.port}/p/{o}.html#section-{i}" for o in others[2:]]
        links += [f"/p/{children[0]}.html#top"] if children else []
        links.append(f"http://localhost:{self.port}/p/{others[0]}.html")  # offsite
        links.append("https://elsewhere.invalid/page")  # offsite, never resolved
        if i % 50 == 0:
            links.append(f"/private/{i}.html")
        if i % 10 == 0:
            links += [f"/q?a={i}&b=2", f"/q?b=2&a={i}#x"]
        links.append("mailto:shop@example.org")
        return links

    def expected_urls(self) -> set[str]:
        """Canonical URLs of every page a correct crawl fetches and parses."""
        base = f"http://127.0.0.1:{self.port}"
        pages = {canonicalize(f"{base}/p/{i}.html") for i in range(self.pages)}
        queries = {canonicalize(f"{base}/q?a={i}&b=2") for i in range(0, self.pages, 10)}
        orphans = (
            {canonicalize(f"{base}/orphan/{k}.html") for k in range(4)} if self.sitemaps else set()
        )
        return pages | queries | orphans | {canonicalize(f"{base}/")}

    def page(self, title: str, number: int, links: list[str]) -> web.Response:
        anchors = "".join(f'<li><a href="{href}">link {k}</a></li>' for k, href in
                          enumerate(links))  # fmt: skip
        filler = "<p>" + "Lorem ipsum dolor sit amet. " * 12 + "</p>"
        body = (
            f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
            "<meta name='description' content='A generated page'></head><body>"
            f"<h1>{title}</h1><div class='product'><span class='name'>Item {number}</span>"
            f"<span class='sku'>SKU-{number:05d}</span><span class='price'>${number}.99</span>"
            f"</div>{filler}<ul>{anchors}</ul></body></html>"
        )
        return web.Response(text=body, content_type="text/html")

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/robots.txt":
            extra = f"Sitemap: {self.url('/sitemap_index.xml')}\n" if self.sitemaps else ""
            return web.Response(text=ROBOTS + extra)
        if self.sitemaps and path in SITEMAPS:
            return self.sitemap(path)
        if self.sitemaps and path.startswith("/orphan/"):
            return self.page("Orphan", 0, [])
        if path == "/":
            return self.page("Home", 0, ["/p/0.html"])
        if path.startswith("/p/") and path.endswith(".html"):
            number = path[3:-5]
            if number.isdigit() and int(number) < self.pages:
                return self.page(f"Page {number}", int(number), self.links_of(int(number)))
        if path == "/q" and request.query.get("a", "").isdigit():
            number = int(request.query["a"])
            return self.page(f"Query {number}", number, [f"/p/{number}.html"])
        if path.startswith("/private/"):
            return self.page("Private", 0, [])
        raise web.HTTPNotFound()

    def sitemap(self, path: str) -> web.Response:
        """/sitemap.xml: one orphan; the robots.txt index: a gzipped urlset of three more."""

        def urlset(paths: list[str]) -> bytes:
            locs = "".join(f"<url><loc>{self.url(p)}</loc></url>" for p in paths)
            return (f'<?xml version="1.0"?><urlset xmlns="{NS}">{locs}</urlset>').encode()

        if path == "/sitemap.xml":
            return web.Response(body=urlset(["/orphan/0.html", "/p/1.html"]),
                                content_type="application/xml")  # fmt: skip
        if path == "/sitemap_index.xml":
            body = (f'<?xml version="1.0"?><sitemapindex xmlns="{NS}"><sitemap><loc>'
                    f"{self.url('/sitemap-pages.xml.gz')}</loc></sitemap></sitemapindex>")  # fmt: skip
            return web.Response(text=body, content_type="application/xml")
        body = gzip.compress(urlset([f"/orphan/{k}.html" for k in (1, 2, 3)]))
        return web.Response(body=body, content_type="application/gzip")

    def fetched(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(r["host"], r["path"]) for r in self.requests]
